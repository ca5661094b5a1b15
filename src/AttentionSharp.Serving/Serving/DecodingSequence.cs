using System.Runtime.InteropServices;
using AttentionSharp.Generation;
using AttentionSharp.Nn;

namespace AttentionSharp.Serving;

/// <summary>
/// One request being decoded: its own K/V cache, the logits of its next position, its own generator (seeded by the
/// request, so its tokens do not depend on the other sequences) and its text as it grows. Used by the engine's thread
/// alone.
/// </summary>
sealed class DecodingSequence(CompletionJob job, KvCache cache, float[] logits, IReadOnlyList<int> endOfText,
                              TokenDecoder decode) : IDisposable
{
    readonly List<int> _tokens = [.. job.Request.PromptIds];          // the prompt, then the generated tokens
    readonly Generator _rng = new(job.Request.Seed);
    readonly TextStream _text = new(decode, job.Request.Stop);

    public CompletionJob Job { get; } = job;

    public KvCache Cache { get; } = cache;

    /// <summary>The logits (V) of the position after the cached ones.</summary>
    public float[] Logits { get; } = logits;

    public int Generated => _tokens.Count - Job.Request.PromptIds.Length;

    /// <summary>The newest token: the one the next decoding step feeds.</summary>
    public int Last => _tokens[^1];

    /// <summary>
    /// Draws the next token from <see cref="Logits"/>, shows the text it settles and says why the sequence ends
    /// (<see cref="FinishReason"/>), or null when it goes on.
    /// </summary>
    public string? Advance()
    {
        var request = Job.Request;
        int next = Sampler.Sample(Logits, request.Sampling, _rng, CollectionsMarshal.AsSpan(_tokens));
        _tokens.Add(next);
        if (endOfText.Contains(next)) return FinishReason.Stop;
        Job.Emit(_text.Push(next));
        if (_text.Stop is not null) return FinishReason.Stop;
        return Generated >= request.MaxTokens ? FinishReason.Length : null;
    }

    /// <summary>Shows the text held back (it could have begun a stop string) and ends the job.</summary>
    public void Finish(string reason, string? failure = null)
    {
        Job.Emit(_text.Finish());
        Job.Finish(new CompletionResult(_text.Text, reason, Job.Request.PromptIds.Length, Generated, failure));
    }

    public void Dispose() => Cache.Dispose();
}
