namespace AttentionSharp.Experiments;

/// <summary>
/// A long-range dependency made to measure: recall the first token after a gap of d distractors. A sequence is
/// [key, d fillers, ?]; the answer at the last position is the key, one of <see cref="Keys"/> symbols, so the answer
/// depends on a token d + 1 positions back and chance is 1/<see cref="Keys"/>. Keys and fillers are disjoint symbol
/// sets, so a model that can look back directly (attention) finds the key by content at any distance, while a
/// recurrent model must carry it through d state updates.
/// </summary>
public static class RecallTask
{
    /// <summary>Distinct key symbols: ids 0 … Keys − 1, and the classes of the answer.</summary>
    public const int Keys = 8;

    /// <summary>Distinct filler symbols: ids Keys … Keys + Fillers − 1.</summary>
    public const int Fillers = 16;

    /// <summary>The query marker closing each sequence.</summary>
    public const int Query = Keys + Fillers;

    /// <summary>Vocabulary size: keys, fillers and the query marker.</summary>
    public const int VocabSize = Keys + Fillers + 1;

    /// <summary>The sequence length for a gap of <paramref name="distance"/> fillers: the key, the fillers, the query.</summary>
    public static int Length(int distance) => distance + 2;

    /// <summary>Fills <paramref name="ids"/> (batch × Length(distance)) and <paramref name="labels"/> (batch) with fresh examples.</summary>
    public static void Sample(Generator rng, int batch, int distance, Span<int> ids, Span<int> labels)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(distance);
        int t = Length(distance);
        if (ids.Length != batch * t || labels.Length != batch)
            throw new ArgumentException($"Expected {batch}×{t} ids and {batch} labels; got {ids.Length} and {labels.Length}.");
        for (int b = 0; b < batch; b++)
        {
            var row = ids.Slice(b * t, t);
            int key = (int)(rng.NextUInt64() % Keys);
            row[0] = key;
            for (int i = 1; i <= distance; i++) row[i] = Keys + (int)(rng.NextUInt64() % Fillers);
            row[t - 1] = Query;
            labels[b] = key;
        }
    }
}
