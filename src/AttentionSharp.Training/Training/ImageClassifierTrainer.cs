using System.Diagnostics;
using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Models;

namespace AttentionSharp.Training;

/// <summary>
/// Trains an <see cref="ImageClassifier"/> (a Vision Transformer, a recurrent baseline) on an <see cref="ImageSet"/>:
/// shuffled mini-batches (a fresh order every epoch), optional random crops and horizontal flips
/// (<see cref="ImageAugmentation"/>), optional label smoothing, AdamW with decay on matrices only, warmup then cosine decay, global
/// gradient clipping, and periodic validation. <see cref="TrainOptions.GradAccumulation"/> is not used.
/// </summary>
public sealed class ImageClassifierTrainer
{
    /// <summary>
    /// Steps after which the schedule is fitted to a time limit: early, so a slow machine never overshoots, and again with
    /// the pace measured since the first fit, once one-off costs (JIT, pool warm-up) are behind. It is fitted again after
    /// every validation pass, counting the time the remaining passes will take.
    /// </summary>
    static readonly int[] FitTimeAfterSteps = [20, 100];

    readonly ImageClassifier _model;
    readonly TrainOptions _options;
    readonly float[] _batchPixels;
    readonly int[] _batchLabels;
    int[] _order = [];
    int _cursor;

    public ImageClassifierTrainer(ImageClassifier model, TrainOptions options)
    {
        _model = model;
        _options = options.Validate();
        _batchPixels = new float[options.Batch * model.Channels * model.ImageSize * model.ImageSize];
        _batchLabels = new int[options.Batch];
        Optimizer = new AdamW(model.Parameters().Select(p => (p, p.Rank >= 2)), options.LearningRate, 0.9f, 0.999f, 1e-8f, options.WeightDecay);
        Schedule = new CosineSchedule(options.LearningRate, options.WarmupSteps, options.Steps, options.LearningRate * options.MinLearningRateRatio);
    }

    public AdamW Optimizer { get; }

    /// <summary>The learning-rate schedule; its length is fitted to the time limit when one is set.</summary>
    public CosineSchedule Schedule { get; private set; }

    /// <summary>Steps completed so far.</summary>
    public int Step { get; private set; }

    /// <summary>Mirror each training image left to right with probability ½ (clothing looks the same mirrored).</summary>
    public bool RandomFlips { get; init; }

    /// <summary>P: shift each training image by up to ±P pixels each way (a random crop of the image padded by P); 0 for none.</summary>
    public int CropPadding { get; init; }

    /// <summary>The value of the padding a shift brings in: the background, in the images' normalised units.</summary>
    public float CropFill { get; init; }

    /// <summary>ε of label smoothing in the training loss (0 for none); evaluation always scores the plain loss.</summary>
    public float LabelSmoothing { get; init; }

    /// <summary>One optimizer step on the next <see cref="TrainOptions.Batch"/> images; returns the loss and the gradient norm before clipping.</summary>
    public (float Loss, float GradNorm) TrainStep(ImageSet data, Generator rng)
    {
        NextBatch(data, rng);
        _model.Train();
        Optimizer.ZeroGrad();
        using var scope = TensorScope.Begin(); // every activation of the step goes back to the pool at the end
        var images = Tensor.FromArray(_batchPixels, _options.Batch, _model.Channels, _model.ImageSize, _model.ImageSize);   // (B, Ch, H, W)
        var loss = _model.Loss(_model.Forward(images), _batchLabels, LabelSmoothing);
        loss.Backward();
        float lossValue = loss.Item();
        var (norm, clip) = GradientClipping.ClipCoefficient(_model.Parameters(), _options.GradClip); // applied by AdamW as it reads the gradients
        Optimizer.LearningRate = Schedule.RateAt(Step);
        Optimizer.Step(clip);
        Step++;
        return (lossValue, norm);
    }

    /// <summary>Mean loss and accuracy over every image of <paramref name="data"/>, without recording gradients.</summary>
    public (float Loss, double Accuracy) Evaluate(ImageSet data) => Evaluate(_model, data, _options.Batch);

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

    /// <summary>
    /// Trains until <see cref="TrainOptions.Steps"/> or the time limit, calling <paramref name="onStep"/> after every step
    /// (<see cref="StepReport.TokensPerSecond"/> counts images) and <paramref name="onEval"/> every
    /// <see cref="TrainOptions.EvalInterval"/> steps and at the end. Stops after the current step when <paramref name="cancel"/> is signalled.
    /// </summary>
    public void Run(ImageSet train, Generator rng, Action<StepReport> onStep, Action<int> onEval, CancellationToken cancel)
    {
        var budget = new TimeBudget(_options.Minutes, _options.Steps, _options.EvalInterval, Step, FitTimeAfterSteps, refitAfterEval: true);
        while (Step < Schedule.TotalSteps && !cancel.IsCancellationRequested)
        {
            var (loss, norm) = TrainStep(train, rng);
            if (!float.IsFinite(loss))
                throw new InvalidOperationException($"The loss became {loss} at step {Step}; lower the learning rate (now {Optimizer.LearningRate:G3}) or check the data.");
            Schedule = budget.AfterStep(Step, Schedule);
            double perStep = budget.SecondsPerStep(Step);
            var remaining = TimeSpan.FromSeconds(perStep * (Schedule.TotalSteps - Step));
            onStep(new StepReport(Step, Schedule.TotalSteps, loss, Optimizer.LearningRate, norm, _options.Batch / perStep, budget.Elapsed, remaining));
            bool outOfTime = budget.OutOfTime;
            if ((_options.EvalInterval > 0 && Step % _options.EvalInterval == 0) || Step == Schedule.TotalSteps || outOfTime)
                Schedule = budget.Evaluate(Step, Schedule, () => onEval(Step));
            if (outOfTime) break;
        }
    }

    /// <summary>Copies the next batch (in an order reshuffled every epoch) into the batch buffers, cropping and flipping images if asked.</summary>
    void NextBatch(ImageSet data, Generator rng)
    {
        if (data.Count < _options.Batch)
            throw new ArgumentException($"The training set has {data.Count} images, fewer than one batch of {_options.Batch}.");
        if (data.ImageLength * _options.Batch != _batchPixels.Length)
            throw new ArgumentException($"The images are {data.Channels}×{data.Side}×{data.Side}, but the model reads {_model.Channels}×{_model.ImageSize}×{_model.ImageSize}.");
        int side = data.Side, length = data.ImageLength;
        for (int b = 0; b < _options.Batch; b++)
        {
            if (_cursor == _order.Length)
            {
                if (_order.Length != data.Count) _order = Enumerable.Range(0, data.Count).ToArray();
                for (int i = _order.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (_order[i], _order[j]) = (_order[j], _order[i]); }
                _cursor = 0;
            }
            int index = _order[_cursor++];
            var target = _batchPixels.AsSpan(b * length, length);
            if (CropPadding > 0) ImageAugmentation.RandomCrop(data.Image(index), target, data.Channels, side, CropPadding, CropFill, rng);
            else data.Image(index).CopyTo(target);
            if (RandomFlips && rng.NextFloat() < 0.5f) ImageAugmentation.FlipHorizontal(target, side);
            _batchLabels[b] = data.Labels[index];
        }
    }
}
