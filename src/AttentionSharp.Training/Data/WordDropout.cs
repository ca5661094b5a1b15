// Source: rare-word dropout as in Kiperwasser & Goldberg, "Simple and Accurate Dependency Parsing Using Bidirectional
// LSTM Feature Representations" (2016): a word seen n times is replaced by the unknown word with probability α / (α + n).
namespace AttentionSharp.Data;

/// <summary>
/// Word dropout for tagging: each word of a training batch is read as &lt;unk&gt; with a given probability, its spelling
/// features and tag kept. A word never seen in training reaches the tagger in exactly that form, so the tagger learns
/// to tag such words from their spelling and their neighbours instead of leaning on the word's identity alone. The
/// probability can be the same for every word, or depend on how often the word occurs in training (rare-word dropout):
/// then &lt;unk&gt; stands in mostly for rare words, which resemble the unseen ones (nouns, names, adjectives), rather
/// than for "the" and "of".
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
        return Drop(batch, _ => probability, rng);
    }

    /// <summary>
    /// As <see cref="Apply(TaggingBatch, float, Generator)"/> with a probability per word id
    /// (<see cref="Probabilities"/>); the draws are the same, one per word, so equal probabilities drop the same words.
    /// </summary>
    public static TaggingBatch Apply(TaggingBatch batch, float[] probabilityOfId, Generator rng)
    {
        ArgumentNullException.ThrowIfNull(probabilityOfId);
        foreach (int id in batch.Ids)
            if ((uint)id >= (uint)probabilityOfId.Length)
                throw new ArgumentException(
                    $"The batch holds word id {id}, outside the {probabilityOfId.Length} probabilities given.",
                    nameof(probabilityOfId));
        return Drop(batch, id => probabilityOfId[id], rng);
    }

    static TaggingBatch Drop(TaggingBatch batch, Func<int, float> probability, Generator rng)
    {
        var ids = (int[])batch.Ids.Clone();
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] > WordVocabulary.Mask && rng.NextFloat() < probability(ids[i])) ids[i] = WordVocabulary.Unknown;
        return batch with { Ids = ids };
    }

    /// <summary>
    /// The probability of reading each of the <paramref name="vocabularySize"/> word ids as &lt;unk&gt;: every word with
    /// probability <paramref name="uniform"/>, and besides that a word seen n times in <paramref name="train"/> with
    /// probability α / (α + n) (<paramref name="rareAlpha"/> = α; 0 turns it off), the two drawn as one. The special ids
    /// are never dropped. Null when both are 0: nothing to drop.
    /// </summary>
    public static float[]? Probabilities(TaggingDataset train, int vocabularySize, float uniform, float rareAlpha)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (!(uniform >= 0 && uniform < 1))
            throw new ArgumentOutOfRangeException(nameof(uniform), uniform, "The word dropout probability must be in [0, 1).");
        if (!(rareAlpha >= 0 && float.IsFinite(rareAlpha)))
            throw new ArgumentOutOfRangeException(nameof(rareAlpha), rareAlpha,
                "The rare-word dropout α must be finite and at least 0.");
        if (uniform == 0 && rareAlpha == 0) return null;
        var counts = new long[vocabularySize];
        foreach (var sentence in train.Sentences)
            foreach (int id in sentence.Words)
                if ((uint)id < (uint)vocabularySize) counts[id]++;
                else
                    throw new ArgumentException(
                        $"The training data holds word id {id}, outside the vocabulary's {vocabularySize}.", nameof(train));
        var p = new float[vocabularySize];
        for (int id = WordVocabulary.Mask + 1; id < vocabularySize; id++)
        {
            // p = u + (1 − u)·r: exactly u when r is 0, so a uniform rate drops the same words as Apply(batch, u, rng)
            float rare = rareAlpha == 0 ? 0f : rareAlpha / (rareAlpha + counts[id]);
            p[id] = uniform + (1 - uniform) * rare;
        }
        return p;
    }
}
