using System.Diagnostics;
using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Models;

namespace AttentionSharp.Training;

/// <summary>Scores an image classifier: the mean loss and the accuracy over a set of images.</summary>
public static class ImageEvaluation
{
    /// <summary>Mean loss and accuracy of <paramref name="model"/> over every image of <paramref name="data"/>, in batches of <paramref name="batch"/>.</summary>
    public static (float Loss, double Accuracy) Evaluate(ImageClassifier model, ImageSet data, int batch)
    {
        if (batch <= 0) throw new ArgumentException($"The evaluation batch must be positive; got {batch}.");
        if (data.Count == 0) return (float.NaN, double.NaN);
        bool wasTraining = model.Training;
        model.Eval();
        double lossSum = 0; long correct = 0;
        using (GradMode.NoGrad())
        {
            for (int start = 0; start < data.Count; start += batch)
            {
                int n = Math.Min(batch, data.Count - start);
                using var scope = TensorScope.Begin();
                var images = Tensor.FromArray(data.Pixels.AsSpan(start * data.ImageLength, n * data.ImageLength), n, model.Channels, model.ImageSize, model.ImageSize);
                var labels = data.Labels.AsSpan(start, n);
                var logits = model.Forward(images);                                  // (n, Classes)
                lossSum += model.Loss(logits, labels).Item() * (double)n;
                correct += Accuracy.Correct(logits.ToArray(), model.Classes, labels);
            }
        }
        model.Train(wasTraining);
        return ((float)(lossSum / data.Count), (double)correct / data.Count);
    }

}
