using System.Numerics.Tensors;
using AttentionSharp.Autograd;
using AttentionSharp.Models;

namespace AttentionSharp.Generation;

/// <summary>One filling of a masked position: a token id and its probability under the model.</summary>
public readonly record struct MaskCandidate(int Id, float Probability);

/// <summary>
/// What a masked language model puts in the masked positions of one sequence: BERT's pre-training task run forward
/// (HF's fill-mask pipeline). The probabilities are the softmax over the whole vocabulary at each position, so ids left
/// out of the candidates still take their share.
/// </summary>
public static class MaskFilling
{
    /// <summary>
    /// The <paramref name="k"/> most probable ids at each of <paramref name="positions"/> of <paramref name="ids"/> (one
    /// sequence, already holding the mask id there), most probable first (equal logits by id), among the ids
    /// <paramref name="candidate"/> accepts (all when null). The model is put in evaluation mode.
    /// </summary>
    public static MaskCandidate[][] Fill(Bert model, int[] ids, IReadOnlyList<int> positions, int k,
        Func<int, bool>? candidate = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(positions);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        if (ids.Length == 0) throw new ArgumentException("The sequence holds no tokens.", nameof(ids));
        if (positions.Count == 0) throw new ArgumentException("No masked position is given.", nameof(positions));
        foreach (int p in positions)
            if ((uint)p >= (uint)ids.Length)
                throw new ArgumentOutOfRangeException(nameof(positions), $"Position {p} is outside the {ids.Length} tokens.");
        int vocab = model.Config.VocabSize;
        model.Eval();
        float[] logits;
        using (GradMode.NoGrad())
        using (TensorScope.Begin())
        {
            var hidden = model.Forward(ids, 1, ids.Length);                                // (1, T, C)
            int c = hidden.Size(-1);
            var rows = Tensor.Embedding(hidden.Reshape(ids.Length, c), [.. positions], positions.Count);   // (N, C)
            logits = model.MlmLogits(rows).ToArray();                                      // (N, V)
        }
        var result = new MaskCandidate[positions.Count][];
        var row = new float[vocab];
        var probabilities = new float[vocab];
        for (int n = 0; n < positions.Count; n++)
        {
            logits.AsSpan(n * vocab, vocab).CopyTo(row);
            TensorPrimitives.SoftMax(row, probabilities);
            // Ordered by logit, as sampling orders them: the probabilities' order, without their rounding's ties.
            result[n] = [.. Sampler.MostLikely(row, k, candidate).Select(id => new MaskCandidate(id, probabilities[id]))];
        }
        return result;
    }
}
