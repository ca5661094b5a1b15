namespace AttentionSharp.Data;

/// <summary>The check every tokenizer's Decode makes before it looks an id up.</summary>
internal static class TokenIds
{
    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first id outside [0, <paramref name="vocabSize"/>).</summary>
    public static void CheckRange(ReadOnlySpan<int> ids, int vocabSize)
    {
        foreach (int id in ids)
            if ((uint)id >= (uint)vocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token ids must lie in [0, {vocabSize}).");
    }
}
