using AttentionSharp.Models;

namespace AttentionSharp.Data;

/// <summary>
/// Masked-word modelling batches from tagging batches: BERT's corruption (<see cref="MlmMasking"/>) over word ids, where
/// padding, unknown words and the mask itself are never chosen, and only the chosen positions are scored.
/// </summary>
public static class MaskedWords
{
    /// <summary>The ids never chosen nor drawn as replacements.</summary>
    static readonly int[] Special = [WordVocabulary.Pad, WordVocabulary.Unknown, WordVocabulary.Mask];

    /// <summary>
    /// A copy of <paramref name="batch"/> with 15 % of its words chosen (at least one; draws repeat until one is): their
    /// ids corrupted (80 % mask, 10 % a random word, 10 % kept), <see cref="TaggingBatch.Positions"/> listing them and
    /// <see cref="TaggingBatch.Labels"/> holding their original ids. Spelling features are dropped: the model must
    /// recover the word from its context alone.
    /// </summary>
    public static TaggingBatch Mask(TaggingBatch batch, int vocabSize, Generator rng, float probability = 0.15f)
    {
        if (vocabSize <= WordVocabulary.Mask + 1)
            throw new ArgumentException($"A masked-word vocabulary needs words beside its {WordVocabulary.Mask + 1} special ids; it has {vocabSize} ids.", nameof(vocabSize));
        if (!batch.Ids.Any(id => id > WordVocabulary.Mask))
            throw new ArgumentException("The batch holds no word to mask: every id is padding, unknown or the mask.", nameof(batch));
        while (true)
        {
            var masked = MlmMasking.Mask(batch.Ids, vocabSize, WordVocabulary.Mask, rng, Special, probability);
            var positions = Enumerable.Range(0, masked.Labels.Length).Where(i => masked.Labels[i] != Bert.IgnoreIndex).ToArray();
            if (positions.Length == 0) continue;
            return new TaggingBatch(masked.Inputs, [.. positions.Select(i => masked.Labels[i])], new bool[positions.Length], batch.Batch, batch.Time)
            {
                Positions = positions,
            };
        }
    }

    /// <summary>
    /// Hidden states (B, T, C) at <see cref="TaggingBatch.Positions"/> → (N, C), rows in the listed order; the gradient
    /// flows back to the chosen positions.
    /// </summary>
    public static Tensor Gather(Tensor hidden, TaggingBatch batch)
    {
        if (batch.Positions.Length == 0) throw new ArgumentException("The batch lists no masked positions.", nameof(batch));
        return Gather(hidden, batch.Positions);
    }

    /// <summary>Hidden states (B, T, C) at the flat positions b·T + t → (N, C), rows in the listed order.</summary>
    public static Tensor Gather(Tensor hidden, int[] positions)
    {
        int c = hidden.Size(-1), rows = hidden.Count / c;
        return Tensor.Embedding(hidden.Reshape(rows, c), positions, positions.Length);   // (N, C)
    }
}
