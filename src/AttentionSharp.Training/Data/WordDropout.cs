namespace AttentionSharp.Data;

/// <summary>
/// Word dropout for tagging: each word of a training batch is read as &lt;unk&gt; with a given probability, its spelling
/// features and tag kept. A word never seen in training reaches the tagger in exactly that form, so the tagger learns
/// to tag such words from their spelling and their neighbours instead of leaning on the word's identity alone.
/// </summary>
public static class WordDropout
{
    /// <summary>
    /// A copy of <paramref name="batch"/> whose word ids (padding and the special ids aside) are replaced by
    /// <see cref="WordVocabulary.Unknown"/> each with probability <paramref name="probability"/>, drawn from
    /// <paramref name="rng"/> in row-major order; labels, features and the unseen flags are shared with the original.
    /// </summary>
    public static TaggingBatch Apply(TaggingBatch batch, float probability, Generator rng)
    {
        if (!(probability >= 0 && probability < 1))
            throw new ArgumentOutOfRangeException(nameof(probability), probability,
                "The word dropout probability must be in [0, 1).");
        if (probability == 0) return batch;
        var ids = (int[])batch.Ids.Clone();
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] > WordVocabulary.Mask && rng.NextFloat() < probability) ids[i] = WordVocabulary.Unknown;
        return batch with { Ids = ids };
    }
}
