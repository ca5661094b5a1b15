namespace AttentionSharp.Generation;

/// <summary>Turns token ids back into text (a tokenizer's Decode); the core library has no tokenizer.</summary>
public delegate string TokenDecoder(ReadOnlySpan<int> ids);

/// <summary>What, besides the token budget, ends a row of generation early.</summary>
public sealed record StopConditions
{
    /// <summary>
    /// A row ends as soon as its decoded continuation contains one of these strings (matched in the text, so a stop
    /// may take several tokens or begin in the middle of one); the text from the stop string on is not part of the
    /// result. Needs <see cref="Decode"/>.
    /// </summary>
    public IReadOnlyList<string> Strings { get; init; } = [];

    /// <summary>Token ids that end a row when generated (end-of-text); the id stays in the tokens, not the text.</summary>
    public IReadOnlyList<int> EndOfText { get; init; } = [];

    /// <summary>Decodes a row's continuation, for stop strings and the text of the result; null: tokens only.</summary>
    public TokenDecoder? Decode { get; init; }

    public StopConditions Validate()
    {
        foreach (var s in Strings)
            if (string.IsNullOrEmpty(s))
                throw new ArgumentException("A stop string must contain at least one character.");
        if (Strings.Count > 0 && Decode is null)
            throw new ArgumentException("Stop strings need a decoder to turn the generated tokens into text.");
        return this;
    }
}

/// <summary>Why a row of generation ended.</summary>
public enum StopReason
{
    /// <summary>It reached the number of tokens asked for.</summary>
    Length,

    /// <summary>Its text came to contain a stop string.</summary>
    StopString,

    /// <summary>It generated an end-of-text token.</summary>
    EndOfText,
}

/// <summary>
/// One row's continuation: the generated <paramref name="Tokens"/> (the prompt not included; an end-of-text token that
/// ended the row is the last one), its <paramref name="Text"/> without the stop string or end-of-text (null without a
/// decoder), why it ended, and the stop string that ended it.
/// </summary>
public sealed record GeneratedSequence(int[] Tokens, string? Text, StopReason Reason, string? Stop = null);
