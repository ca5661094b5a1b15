using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Models;

namespace AttentionSharp.Training;

/// <summary>
/// Scores a masked-language-model BERT that reads WordPiece tokens (one imported from a Hugging Face folder) on a text:
/// the text's tokens cut into sequences of up to 126, each framed by [CLS] … [SEP], 15 % of the tokens corrupted as BERT
/// does (80 % [MASK], 10 % a random token, 10 % kept) with draws from a fixed seed, and the loss and accuracy of
/// recovering them.
/// </summary>
public static class MaskedTokenEvaluation
{
    /// <summary>The longest sequence scored, [CLS] and [SEP] included: short enough for a CPU, long enough for context.</summary>
    public const int MaxSequence = 128;

    /// <summary>Mean loss (nats) over the masked tokens, the share recovered, and how many were masked.</summary>
    public static (float Loss, double Accuracy, long Masked) Evaluate(Bert model, WordPieceTokenizer tokenizer, string text,
        int batchSize = 16, ulong seed = 0x6D6C6D)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (tokenizer.VocabSize != model.Config.VocabSize)
            throw new ArgumentException($"The tokenizer has {tokenizer.VocabSize} tokens but the model's vocabulary is {model.Config.VocabSize}.");
        int length = Math.Min(MaxSequence, model.Config.MaxPositions) - 2;
        var ids = tokenizer.Encode(text);
        if (ids.Length == 0) throw new ArgumentException("The text holds no token to score.");
        var pieces = Enumerable.Range(0, (ids.Length + length - 1) / length)
            .Select(i => ids.AsSpan(i * length, Math.Min(length, ids.Length - i * length)).ToArray()).ToList();
        int[] special = [tokenizer.ClsId, tokenizer.SepId, tokenizer.PadId, tokenizer.MaskId];
        var rng = new Generator(seed);
        double lossSum = 0;
        long masked = 0, correct = 0;
        bool wasTraining = model.Training;
        model.Eval();
        using (GradMode.NoGrad())
        {
            foreach (var group in pieces.Chunk(batchSize))
            {
                using var scope = TensorScope.Begin();
                int batch = group.Length, time = group.Max(p => p.Length) + 2;
                var input = new int[batch * time];                                          // (B, T), padded on the right
                Array.Fill(input, tokenizer.PadId);
                for (int b = 0; b < batch; b++)
                {
                    input[b * time] = tokenizer.ClsId;
                    group[b].CopyTo(input, b * time + 1);
                    input[b * time + 1 + group[b].Length] = tokenizer.SepId;
                }
                var corrupted = MlmMasking.Mask(input, tokenizer.VocabSize, tokenizer.MaskId, rng, special);
                var positions = Enumerable.Range(0, input.Length).Where(i => corrupted.Labels[i] != Bert.IgnoreIndex).ToArray();
                if (positions.Length == 0) continue;
                var hidden = model.Forward(corrupted.Inputs, batch, time);                   // (B, T, C)
                var logits = model.MlmLogits(MaskedWords.Gather(hidden, positions));          // (N, V)
                int[] labels = [.. positions.Select(i => corrupted.Labels[i])];
                lossSum += model.MlmLoss(logits, labels).Item() * (double)positions.Length;
                masked += positions.Length;
                correct += Accuracy.Correct(logits.ToArray(), model.Config.VocabSize, labels);
            }
        }
        model.Train(wasTraining);
        return masked == 0 ? (float.NaN, double.NaN, 0) : ((float)(lossSum / masked), (double)correct / masked, masked);
    }
}
