using System.Runtime.InteropServices;

namespace AttentionSharp.Generation;

/// <summary>
/// One sequence being continued, the state every decoding loop keeps per row (the batched generator's rows, a server's
/// requests): the prompt and the tokens drawn so far, its own generator, the logits of its next position, and its text
/// as it grows (with a decoder in the stop conditions). <see cref="Advance"/> draws the next token and says whether the
/// sequence ends: end-of-text, a stop string, or the token budget.
/// </summary>
public class GrowingSequence
{
    readonly StopConditions _stop;

    public GrowingSequence(int[] prompt, Generator rng, StopConditions stop)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        Rng = rng ?? throw new ArgumentNullException(nameof(rng));
        _stop = stop ?? throw new ArgumentNullException(nameof(stop));
        Tokens = [.. prompt];
        PromptLength = prompt.Length;
        Text = stop.Decode is { } decode ? new TextStream(decode, stop.Strings) : null;
    }

    /// <summary>The prompt, then the generated tokens.</summary>
    public List<int> Tokens { get; }

    public int PromptLength { get; }

    public Generator Rng { get; }

    /// <summary>The text of the continuation as it grows; null without a decoder.</summary>
    public TextStream? Text { get; }

    /// <summary>The logits (V) of the position after the last token fed.</summary>
    public float[] Logits { get; set; } = [];

    /// <summary>Why the sequence ended; null while it goes on.</summary>
    public StopReason? Reason { get; private set; }

    public int Generated => Tokens.Count - PromptLength;

    /// <summary>The newest token: the one the next decoding step feeds.</summary>
    public int Last => Tokens[^1];

    /// <summary>
    /// Draws the next token from <see cref="Logits"/> with this sequence's generator, adds it, and sets
    /// <see cref="Reason"/> if the sequence ends with it (after at most <paramref name="maxTokens"/> generated).
    /// <paramref name="shown"/> is the text that may now be shown ("" when none, or without a decoder).
    /// </summary>
    public int Advance(SamplingOptions options, int maxTokens, out string shown)
    {
        int next = Sampler.Sample(Logits, options, Rng, CollectionsMarshal.AsSpan(Tokens));
        Tokens.Add(next);
        shown = "";
        if (_stop.EndOfText.Contains(next)) Reason = StopReason.EndOfText;
        else if (Text is { } text)
        {
            shown = text.Push(next);
            if (text.Stop is not null) Reason = StopReason.StopString;
        }
        if (Reason is null && Generated >= maxTokens) Reason = StopReason.Length;
        return next;
    }

    /// <summary>
    /// The text held back because it could have begun a stop string, now that the sequence has ended ("" when none).
    /// </summary>
    public string FinishText() => Text?.Finish() ?? "";

    /// <summary>The continuation as a result.</summary>
    public GeneratedSequence Result() =>
        new([.. Tokens.Skip(PromptLength)], Text?.Text, Reason ?? StopReason.Length, Text?.Stop);
}
