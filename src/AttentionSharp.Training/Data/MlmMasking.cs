// Source: Devlin et al. (2019), §3.1 "Masked LM" and appendix C.2; selection as Hugging Face's
// DataCollatorForLanguageModeling (an independent draw per token).
using AttentionSharp.Models;

namespace AttentionSharp.Data;

/// <summary>A masked-language-model batch: the corrupted inputs and the labels (the original id where a token was chosen, −100 elsewhere).</summary>
public sealed record MlmBatch(int[] Inputs, int[] Labels)
{
    /// <summary>How many positions carry a label (the loss's denominator).</summary>
    public int Chosen => Labels.Count(l => l != Bert.IgnoreIndex);
}

/// <summary>BERT's corruption for masked-language-model training.</summary>
public static class MlmMasking
{
    /// <summary>
    /// Chooses each token that is not special with probability <paramref name="probability"/> (15 % in BERT); a chosen
    /// token becomes [MASK] 80 % of the time, a random non-special token 10 %, and stays itself 10 %, so the model must
    /// predict every chosen position without knowing which were corrupted. All draws come from <paramref name="rng"/>.
    /// </summary>
    /// <param name="ids">Token ids, any shape flattened.</param>
    /// <param name="vocabSize">V: random replacements are drawn from [0, V) minus the special ids.</param>
    /// <param name="maskTokenId">The [MASK] id.</param>
    /// <param name="rng">The generator of every draw.</param>
    /// <param name="specialIds">Ids never chosen nor drawn as replacements ([PAD], [CLS], [SEP], [MASK], …).</param>
    /// <param name="probability">The chance that a token is chosen.</param>
    public static MlmBatch Mask(ReadOnlySpan<int> ids, int vocabSize, int maskTokenId, Generator rng, ReadOnlySpan<int> specialIds = default, float probability = 0.15f)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (vocabSize <= 0) throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, "The vocabulary size must be positive.");
        if ((uint)maskTokenId >= (uint)vocabSize)
            throw new ArgumentOutOfRangeException(nameof(maskTokenId), maskTokenId, $"The [MASK] id must be in [0, {vocabSize}).");
        if (!(probability > 0 && probability <= 1))
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "The masking probability must be in (0, 1].");
        var special = new HashSet<int>(specialIds.ToArray()) { maskTokenId };
        var replacements = Enumerable.Range(0, vocabSize).Where(v => !special.Contains(v)).ToArray();
        if (replacements.Length == 0)
            throw new ArgumentException($"Every one of the {vocabSize} ids is special, so there is no token to draw as a random replacement.", nameof(specialIds));

        var inputs = ids.ToArray();
        var labels = new int[ids.Length];
        Array.Fill(labels, Bert.IgnoreIndex);
        for (int i = 0; i < inputs.Length; i++)
        {
            if ((uint)inputs[i] >= (uint)vocabSize)
                throw new ArgumentException($"ids[{i}] is {inputs[i]}; expected an id in [0, {vocabSize}).", nameof(ids));
            if (special.Contains(inputs[i]) || rng.NextFloat() >= probability) continue;
            labels[i] = inputs[i];
            float r = rng.NextFloat();
            if (r < 0.8f) inputs[i] = maskTokenId;                                          // 80 %: [MASK]
            else if (r < 0.9f) inputs[i] = replacements[rng.NextInt(replacements.Length)];  // 10 %: a random token
        }                                                                                   // 10 %: unchanged
        return new MlmBatch(inputs, labels);
    }
}
