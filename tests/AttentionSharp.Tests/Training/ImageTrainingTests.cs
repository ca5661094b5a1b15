using AttentionSharp.Data;
using AttentionSharp.Models;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Tests.Training;

/// <summary>The image classifier's training loop on a tiny synthetic set, and the accuracy it reports.</summary>
public class ImageTrainingTests
{
    static readonly VisionTransformerConfig Shape = new()
    {
        ImageSize = 8, PatchSize = 4, Channels = 1, Classes = 2, Layers = 1, Heads = 2, Width = 16, MlpWidth = 32,
    };

    /// <summary>Class 0 is bright on the top half, class 1 on the bottom half, with noise; flips keep the class.</summary>
    static ImageSet Synthetic(int count, ulong seed)
    {
        var rng = new Generator(seed);
        var pixels = new float[count * 64];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = i % 2;
            for (int p = 0; p < 64; p++)
                pixels[i * 64 + p] = ((p < 32) == (labels[i] == 0) ? 1f : -1f) + 0.3f * (float)rng.NextNormal();
        }
        return new ImageSet(pixels, labels, 1, 8);
    }

    static Trainer NewTrainer(ImageClassifier model, ImageBatches batches, TrainOptions options) =>
        new(model, model.Parameters().Select(p => (p, p.Rank >= 2)), batches, options);

    [Fact]
    public void AFewStepsLowerTheLossAndRaiseTheAccuracy()
    {
        var data = Synthetic(64, 3);
        var model = new VisionTransformer(Shape, new Generator(1));
        var trainer = NewTrainer(model, new ImageBatches(model, data, 16, 2, 3) { RandomFlips = true },
            new TrainOptions { Steps = 60, Batch = 16, LearningRate = 3e-3f, WarmupSteps = 3, EvalInterval = 0 });
        var (before, _) = ImageEvaluation.Evaluate(model, data, 16);
        var losses = new List<float>();
        int evals = 0;
        trainer.Run(r => losses.Add(r.Loss), _ => evals++, CancellationToken.None);
        var (after, accuracy) = ImageEvaluation.Evaluate(model, data, 16);
        Assert.Equal(60, losses.Count);
        Assert.Equal(1, evals);
        Assert.True(after < 0.5f * before, $"loss before {before}, after {after}");
        Assert.True(accuracy >= 0.95, $"accuracy {accuracy}");
    }

    [Theory]
    [InlineData("rnn")]
    [InlineData("lstm")]
    [InlineData("gru")]
    public void RecurrentBaselinesLearnWithCropsAndLabelSmoothing(string cell)
    {
        var data = Synthetic(64, 3);
        var model = new RecurrentImageClassifier(
            new RecurrentImageClassifierConfig { Cell = cell, ImageSize = 8, Classes = 2, HiddenSize = 12, Layers = 1 },
            new Generator(1));
        var batches = new ImageBatches(model, data, 16, 2, 3)
        {
            RandomFlips = true, CropPadding = 1, CropFill = -1f, LabelSmoothing = 0.1f,
        };
        var trainer = NewTrainer(model, batches,
            new TrainOptions { Steps = 40, Batch = 16, LearningRate = 1e-2f, WarmupSteps = 3, EvalInterval = 0 });
        var (before, _) = ImageEvaluation.Evaluate(model, data, 16);
        trainer.Run(_ => { }, _ => { }, CancellationToken.None);
        var (after, accuracy) = ImageEvaluation.Evaluate(model, data, 16);
        Assert.True(after < 0.6f * before, $"loss before {before}, after {after}");
        Assert.True(accuracy >= 0.9, $"accuracy {accuracy}");
    }

    [Fact]
    public void RecurrentBaselineReadsRowsAndChecksItsInput()
    {
        var config = new RecurrentImageClassifierConfig
        {
            Cell = "gru", ImageSize = 5, Channels = 2, Classes = 3, HiddenSize = 4, Layers = 2, Dropout = 0.1f,
        };
        var json = (System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(config.ToJson().ToJsonString())!;
        Assert.Equal(config, RecurrentImageClassifierConfig.FromJson(json));
        var model = new RecurrentImageClassifier(config, new Generator(3));
        Assert.Equal([7, 3], model.Forward(Tensor.Zeros(7, 2, 5, 5)).Shape);
        Assert.Contains(model.NamedParameters(),
            p => p.Name == "gru.weight_ih_l0" && p.Parameter.Shape.SequenceEqual([3 * 4, 2 * 5]));
        Assert.Contains("(B, 2, 5, 5)", Assert.Throws<ArgumentException>(() => model.Forward(Tensor.Zeros(1, 1, 5, 5))).Message);
        Assert.Throws<ArgumentException>(() => (config with { Cell = "cnn" }).Validate());
    }

    [Fact]
    public void ATimeLimitShortensTheScheduleAndEndsWithAValidationPass()
    {
        var data = Synthetic(32, 3);
        var model = new VisionTransformer(Shape, new Generator(1));
        var trainer = NewTrainer(model, new ImageBatches(model, data, 8, 2, 3),
            new TrainOptions { Steps = 100_000, Minutes = 0.05, Batch = 8, WarmupSteps = 2, EvalInterval = 0 });
        var evals = new List<int>();
        trainer.Run(_ => { }, evals.Add, CancellationToken.None);
        Assert.InRange(trainer.Step, 1, 99_999);                     // the clock ended the run, not the step count
        Assert.Equal([trainer.Step], evals);                         // with one validation pass at the end
        // The schedule is fitted to the clock after 10 steps; a machine too busy to reach them in 3 s ends on the clock alone.
        if (trainer.Step > 10)
            Assert.True(trainer.Schedule.TotalSteps < 100_000, $"the schedule kept {trainer.Schedule.TotalSteps} steps");
    }

    [Fact]
    public void AccuracyCountsRowsWhoseFirstMaximumIsTheLabel()
    {
        float[] logits = [0.1f, 2f, 0f, /**/ 5f, 5f, 1f, /**/ float.NaN, 1f, 0f, /**/ 0f, 0f, -1f];
        Assert.Equal(3, Accuracy.Correct(logits, 3, [1, 0, 1, 2]));
        Assert.Equal(1, Accuracy.Argmax([1f, 3f, 3f]));
        var e = Assert.Throws<ArgumentException>(() => Accuracy.Correct(logits, 3, [1, 0]));
        Assert.Contains("need 6 logits; got 12", e.Message);
    }

    /// <summary>
    /// With several views an image's class is the largest of its views' mean probabilities and its loss −log of that mean
    /// at the label: checked against each view's probabilities formed by hand, over a partial last batch.
    /// </summary>
    [Fact]
    public void EvaluationWithViewsAveragesEachViewsProbabilities()
    {
        var data = Synthetic(10, 5);
        var model = new VisionTransformer(Shape, new Generator(1));
        model.Eval();
        var views = new TestViews("shifts", -1f);
        var mean = new double[10 * 2];
        foreach (var view in views.Views)
        {
            var pixels = new float[data.Pixels.Length];
            for (int i = 0; i < 10; i++) views.Write(data.Image(i), pixels.AsSpan(i * 64, 64), 1, 8, view);
            float[] p;
            using (AttentionSharp.Autograd.GradMode.NoGrad())
                p = model.Forward(Tensor.FromArray(pixels, 10, 1, 8, 8)).Softmax().ToArray();
            for (int j = 0; j < mean.Length; j++) mean[j] += p[j] / 10.0;
        }
        double loss = Enumerable.Range(0, 10).Average(i => -Math.Log(mean[i * 2 + data.Labels[i]]));
        int correct = Enumerable.Range(0, 10).Count(i => (mean[i * 2 + 1] > mean[i * 2] ? 1 : 0) == data.Labels[i]);

        var (viewLoss, viewAccuracy) = ImageEvaluation.Evaluate(model, data, 4, views);
        Assert.Equal(loss, viewLoss, 4);
        Assert.Equal(correct / 10.0, viewAccuracy);
        float[] one;
        using (AttentionSharp.Autograd.GradMode.NoGrad()) one = ImageEvaluation.MeanProbabilities(model, data.Image(3), 1, views);
        Assert.Equal(mean[6], one[0], 5);
        Assert.Equal(mean[7], one[1], 5);
        // One view is the image itself: the same figures as without views.
        Assert.Equal(ImageEvaluation.Evaluate(model, data, 4), ImageEvaluation.Evaluate(model, data, 4, TestViews.None));
        Assert.Contains("need 128 values; got 64", Assert.Throws<ArgumentException>(
            () => ImageEvaluation.MeanProbabilities(model, data.Image(3), 2, views)).Message);
    }

    [Fact]
    public void EvaluationCoversAPartialLastBatch()
    {
        var data = Synthetic(10, 5);
        var model = new VisionTransformer(Shape, new Generator(1));
        var (loss, accuracy) = ImageEvaluation.Evaluate(model, data, 4);
        var (whole, wholeAccuracy) = ImageEvaluation.Evaluate(model, data, 10);
        Assert.Equal(whole, loss, 4);
        Assert.Equal(wholeAccuracy, accuracy);
    }
}
