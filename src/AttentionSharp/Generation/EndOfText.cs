namespace AttentionSharp.Generation;

/// <summary>
/// Finds a tokenizer's end-of-text tokens by their spelling: a known end-of-text marker that encodes to exactly one id
/// which decodes back to the marker is a special token of that vocabulary (tiktoken's <c>&lt;|endoftext|&gt;</c>, for
/// instance). A tokenizer without one (characters, a byte-level BPE trained here) spells it with several ids.
/// </summary>
public static class EndOfText
{
    /// <summary>End-of-text markers of common vocabularies: GPT-2 and tiktoken, Llama 3, Llama 2 / T5, Gemma.</summary>
    public static IReadOnlyList<string> KnownMarkers { get; } = ["<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"];

    /// <summary>The ids among <see cref="KnownMarkers"/> that <paramref name="encode"/> turns into a single token.</summary>
    public static int[] Find(Func<string, int[]> encode, TokenDecoder decode)
    {
        ArgumentNullException.ThrowIfNull(encode);
        ArgumentNullException.ThrowIfNull(decode);
        var ids = new List<int>();
        foreach (var marker in KnownMarkers)
            if (encode(marker) is [int id] && decode([id]) == marker && !ids.Contains(id)) ids.Add(id);
        return [.. ids];
    }
}
