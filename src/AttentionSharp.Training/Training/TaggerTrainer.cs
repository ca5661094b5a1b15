using System.Diagnostics;
using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Nn;

namespace AttentionSharp.Training;

/// <summary>
/// Trains a tagger on token-level cross-entropy: AdamW (decay on matrices), linear warmup then cosine decay, global
/// gradient clipping; the batches are the training set's, reshuffled every epoch. The model is any module with a
/// function from a batch to tag logits (B, T, K).
/// </summary>
public sealed class TaggerTrainer
{
    readonly Module _model;
    readonly Func<TaggingBatch, Tensor> _logits;
    readonly TrainOptions _options;

    /// <param name="model">The module whose parameters are trained.</param>
    /// <param name="logits">A batch → tag logits (B, T, K), computed with <paramref name="model"/>.</param>
    /// <param name="options">Steps, minutes, batch size, learning rate, warmup, weight decay, clipping, seed.</param>
    public TaggerTrainer(Module model, Func<TaggingBatch, Tensor> logits, TrainOptions options)
    {
        _model = model;
        _logits = logits;
        _options = options.Validate();
        Optimizer = new AdamW(model.Parameters().Select(p => (p, p.Rank >= 2)), options.LearningRate, 0.9f, 0.999f, 1e-8f, options.WeightDecay);
        Schedule = new CosineSchedule(options.LearningRate, options.WarmupSteps, options.Steps, options.LearningRate * options.MinLearningRateRatio);
    }

    public AdamW Optimizer { get; }

    /// <summary>The learning-rate schedule; its length is fitted to the time limit when one is set.</summary>
    public CosineSchedule Schedule { get; private set; }

    /// <summary>Steps completed so far.</summary>
    public int Step { get; private set; }

    /// <summary>
    /// Turns each training batch into the one trained on, drawn afresh every step (masked-word modelling corrupts the
    /// words here, <see cref="MaskedWords.Mask"/>); null trains on the batches as they are.
    /// </summary>
    public Func<TaggingBatch, TaggingBatch>? Prepare { get; init; }

    /// <summary>One optimizer step on one batch; returns the mean loss over its labelled words and the gradient norm.</summary>
    public (float Loss, float GradNorm) TrainStep(TaggingBatch batch)
    {
        _model.Train();
        Optimizer.ZeroGrad();
        using var scope = TensorScope.Begin();
        var loss = Tensor.CrossEntropy(_logits(batch), batch.Labels, TaggingDataset.IgnoreLabel);
        loss.Backward();
        float value = loss.Item();
        var (norm, clip) = GradientClipping.ClipCoefficient(_model.Parameters(), _options.GradClip); // applied by AdamW as it reads the gradients
        Optimizer.LearningRate = Schedule.RateAt(Step);
        Optimizer.Step(clip);
        Step++;
        return (value, norm);
    }

    /// <summary>Mean loss per labelled word and the accuracy over <paramref name="batches"/>, without recording gradients.</summary>
    public (float Loss, TagAccuracy Accuracy) Evaluate(IEnumerable<TaggingBatch> batches) => Evaluate(_model, _logits, batches);

    /// <summary>As the instance method, for a model that is not being trained (e.g. loaded from a checkpoint).</summary>
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

    /// <summary>
    /// Trains until <see cref="TrainOptions.Steps"/> or the time limit, drawing batches from <paramref name="train"/> in a
    /// new random order each epoch; calls <paramref name="onStep"/> after every step and <paramref name="onEval"/> every
    /// <see cref="TrainOptions.EvalInterval"/> steps and at the end.
    /// </summary>
    public void Run(TaggingDataset train, Action<StepReport> onStep, Action<int> onEval, CancellationToken cancel)
    {
        if (train.Sentences.Count == 0) throw new ArgumentException("The training set holds no sentences.", nameof(train));
        // Prepare (e.g. masking words) runs as each batch is drawn, so the words counted are the prepared batch's.
        EpochLoop.Run(_options, refitAfterEval: false,
            shuffle => train.Batches(_options.Batch, shuffle).Select(b => Prepare is null ? b : Prepare(b)),
            TrainStep, batch => batch.Labels.Count(l => l != TaggingDataset.IgnoreLabel), new Scheduled(this), onStep, onEval, cancel);
    }

    /// <summary>This trainer as the loop sees it.</summary>
    sealed class Scheduled(TaggerTrainer trainer) : IScheduledTrainer
    {
        public int Step => trainer.Step;
        public CosineSchedule Schedule { get => trainer.Schedule; set => trainer.Schedule = value; }
        public float LearningRate => trainer.Optimizer.LearningRate;
    }
}
