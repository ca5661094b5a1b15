using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Nn;

namespace AttentionSharp.Training;

/// <summary>Scores a tagger (or a masked-word model): the loss per labelled word and the accuracy.</summary>
public static class TaggerEvaluation
{
    /// <summary>Mean loss per labelled word and the accuracy over <paramref name="batches"/>, without recording gradients.</summary>
    public static (float Loss, TagAccuracy Accuracy) Evaluate(Module model, Func<TaggingBatch, Tensor> logits, IEnumerable<TaggingBatch> batches)
    {
        bool wasTraining = model.Training;
        model.Eval();
        var accuracy = new TagAccuracy();
        double lossSum = 0;
        long words = 0;
        using (GradMode.NoGrad())
        {
            foreach (var batch in batches)
            {
                using var scope = TensorScope.Begin();
                var z = logits(batch);                                                           // (B, T, K)
                int labelled = batch.Labels.Count(l => l != TaggingDataset.IgnoreLabel);
                if (labelled == 0) continue;
                lossSum += Tensor.CrossEntropy(z, batch.Labels, TaggingDataset.IgnoreLabel).Item() * (double)labelled;
                words += labelled;
                accuracy.Add(z.ToArray(), batch.Labels, batch.Unseen);
            }
        }
        model.Train(wasTraining);
        return (words == 0 ? float.NaN : (float)(lossSum / words), accuracy);
    }

}
