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
    readonly GrowingSequence _sequence = new(job.Request.PromptIds, new Generator(job.Request.Seed),
        new StopConditions { Strings = job.Request.Stop, EndOfText = endOfText, Decode = decode })
    { Logits = logits };

    public CompletionJob Job { get; } = job;

    public KvCache Cache { get; } = cache;

    /// <summary>The logits (V) of the position after the cached ones.</summary>
    public float[] Logits => _sequence.Logits;

    /// <summary>The newest token: the one the next decoding step feeds.</summary>
    public int Last => _sequence.Last;

    /// <summary>Completion tokens drawn so far.</summary>
    public int Generated => _sequence.Generated;

    /// <summary>
    /// Draws the next token from <see cref="Logits"/>, shows the text it settles and says why the sequence ends
    /// (<see cref="FinishReason"/>), or null when it goes on.
    /// </summary>
    public string? Advance()
    {
        _sequence.Advance(Job.Request.Sampling, Job.Request.MaxTokens, out string shown);
        Job.Emit(shown);
        return _sequence.Reason switch
        {
            null => null,
            StopReason.Length => FinishReason.Length,
            _ => FinishReason.Stop,                                   // end-of-text or a stop string
        };
    }

    /// <summary>Shows the text held back (it could have begun a stop string) and ends the job.</summary>
    public void Finish(string reason, string? failure = null)
    {
        Job.Emit(_sequence.FinishText());
        Job.Finish(new CompletionResult(_sequence.Text!.Text, reason, _sequence.PromptLength, _sequence.Generated, failure));
    }

    public void Dispose() => Cache.Dispose();
}
