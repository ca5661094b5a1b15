using System.Diagnostics;
using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Models;

namespace AttentionSharp.Training;

/// <summary>Scores an image classifier: the mean loss and the accuracy over a set of images.</summary>
public static class ImageEvaluation
{
    /// <summary>
    /// Mean loss and accuracy of <paramref name="model"/> over every image of <paramref name="data"/>, in batches of
    /// <paramref name="batch"/>. With more than one of <paramref name="views"/>, each image's class is the largest of
    /// its views' mean probabilities, and its loss −log of that mean at its label.
    /// </summary>
    public static (float Loss, double Accuracy) Evaluate(ImageClassifier model, ImageSet data, int batch,
        TestViews? views = null)
    {
        if (batch <= 0) throw new ArgumentException($"The evaluation batch must be positive; got {batch}.");
        if (data.Count == 0) return (float.NaN, double.NaN);
        views ??= TestViews.None;
        bool wasTraining = model.Training;
        model.Eval();
        double lossSum = 0; long correct = 0;
        using (GradMode.NoGrad())
        {
            for (int start = 0; start < data.Count; start += batch)
            {
                int n = Math.Min(batch, data.Count - start);
                var labels = data.Labels.AsSpan(start, n);
                var pixels = data.Pixels.AsSpan(start * data.ImageLength, n * data.ImageLength);
                if (views.IsIdentity)
                {
                    using var scope = TensorScope.Begin();
                    var logits = model.Forward(Images(model, pixels, n)); // (n, Classes)
                    lossSum += model.Loss(logits, labels).Item() * (double)n;
                    correct += Accuracy.Correct(logits.ToArray(), model.Classes, labels);
                    continue;
                }
                var mean = MeanProbabilities(model, pixels, n, views);
                for (int i = 0; i < n; i++) lossSum -= Math.Log(mean[i * model.Classes + labels[i]]);
                correct += Accuracy.Correct(mean, model.Classes, labels);
            }
        }
        model.Train(wasTraining);
        return ((float)(lossSum / data.Count), (double)correct / data.Count);
    }

    /// <summary>
    /// The (n, Classes) class probabilities of the <paramref name="n"/> images in <paramref name="pixels"/>, averaged over
    /// <paramref name="views"/>. Runs the model as it is (call it in eval mode, without gradients).
    /// </summary>
    public static float[] MeanProbabilities(ImageClassifier model, ReadOnlySpan<float> pixels, int n, TestViews views)
    {
        int length = model.Channels * model.ImageSize * model.ImageSize;
        if (n < 0 || pixels.Length != n * length)
            throw new ArgumentException($"{n} images of {model.Channels}×{model.ImageSize}×{model.ImageSize} need " +
                                        $"{n * length} values; got {pixels.Length}.");
        var sum = new float[n * model.Classes];
        var viewPixels = new float[n * length];
        foreach (var view in views.Views)
        {
            for (int i = 0; i < n; i++)
                views.Write(pixels.Slice(i * length, length), viewPixels.AsSpan(i * length, length), model.Channels,
                    model.ImageSize, view);
            using var scope = TensorScope.Begin();
            var probabilities = model.Forward(Images(model, viewPixels, n)).Softmax().Data;
            Debug.Assert(probabilities.Length == sum.Length);
            for (int i = 0; i < sum.Length; i++) sum[i] += probabilities[i];
        }
        for (int i = 0; i < sum.Length; i++) sum[i] /= views.Views.Count;
        return sum;
    }

    static Tensor Images(ImageClassifier model, ReadOnlySpan<float> pixels, int n) =>
        Tensor.FromArray(pixels, n, model.Channels, model.ImageSize, model.ImageSize);
}
