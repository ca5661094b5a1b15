using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Training;

/// <summary>
/// Trains a sequence-to-sequence model (<see cref="EncoderDecoder"/> or <see cref="RecurrentSeq2Seq"/>) with teacher
/// forcing on grapheme-to-phoneme batches: the model's loss over the non-padding targets, AdamW (decay on matrices),
/// linear warmup then cosine decay fitted to the time limit, global gradient clipping; the batches are reshuffled every
/// epoch. Also decodes a dataset and scores phoneme and word error rates.
/// </summary>
public sealed class Seq2SeqTrainer
{
    readonly Module _module;
    readonly ISequenceToSequence _model;
    readonly TrainOptions _options;

    /// <param name="model">The model; it must be a <see cref="Module"/> (its parameters are trained).</param>
    /// <param name="options">Steps, minutes, batch size, learning rate, warmup, weight decay, clipping, seed.</param>
    public Seq2SeqTrainer(ISequenceToSequence model, TrainOptions options)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _module = model as Module ?? throw new ArgumentException($"The model must be a Module; got {model.GetType().Name}.", nameof(model));
        _options = options.Validate();
        Optimizer = new AdamW(_module.Parameters().Select(p => (p, p.Rank >= 2)), options.LearningRate, 0.9f, 0.999f, 1e-8f, options.WeightDecay);
        Schedule = new CosineSchedule(options.LearningRate, options.WarmupSteps, options.Steps, options.LearningRate * options.MinLearningRateRatio);
    }

    public AdamW Optimizer { get; }

    /// <summary>The learning-rate schedule; its length is fitted to the time limit when one is set.</summary>
    public CosineSchedule Schedule { get; private set; }

    /// <summary>Steps completed so far.</summary>
    public int Step { get; private set; }

    /// <summary>One optimizer step on one batch; returns the mean loss over its targets and the gradient norm (before clipping).</summary>
    public (float Loss, float GradNorm) TrainStep(G2pBatch batch)
    {
        _module.Train();
        Optimizer.ZeroGrad();
        using var scope = TensorScope.Begin();
        var loss = _model.Loss(_model.Forward(batch.Source, batch.SourceLength, batch.DecoderInput, batch.TargetLength, batch.Batch), batch.Labels);
        loss.Backward();
        float value = loss.Item();
        float norm = GradientClipping.ClipGradNorm(_module.Parameters(), _options.GradClip);
        Optimizer.LearningRate = Schedule.RateAt(Step);
        Optimizer.Step();
        Step++;
        return (value, norm);
    }

    /// <summary>Mean teacher-forced loss per target token over <paramref name="batches"/>, without recording gradients.</summary>
    public float EvaluateLoss(IEnumerable<G2pBatch> batches)
    {
        bool wasTraining = _module.Training;
        _module.Eval();
        double sum = 0;
        long tokens = 0;
        using (GradMode.NoGrad())
        {
            foreach (var batch in batches)
            {
                using var scope = TensorScope.Begin();
                int count = batch.Labels.Count(l => l != _model.PadId);
                sum += _model.Loss(_model.Forward(batch.Source, batch.SourceLength, batch.DecoderInput, batch.TargetLength, batch.Batch), batch.Labels).Item() * (double)count;
                tokens += count;
            }
        }
        _module.Train(wasTraining);
        return tokens == 0 ? float.NaN : (float)(sum / tokens);
    }

    /// <summary>
    /// Pronounces every word of <paramref name="words"/> and scores the predictions: greedy decoding in batches of words of
    /// one length when <paramref name="beamWidth"/> is 1, else beam search over the same batches (the best hypothesis by score).
    /// Outputs are cut at <paramref name="maxLength"/> phonemes.
    /// </summary>
    public static G2pErrorRates Score(ISequenceToSequence model, G2pDataset words, int beamWidth, int maxLength, double lengthPenalty = 0, int batchSize = 128)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(words);
        if (beamWidth <= 0) throw new ArgumentOutOfRangeException(nameof(beamWidth), beamWidth, "The beam width must be positive.");
        var rates = new G2pErrorRates();
        foreach (var group in words.WordBatches(batchSize))
        {
            int length = group[0].Source.Length;
            if (beamWidth == 1)
            {
                var result = model.Greedy(group.SelectMany(w => w.Source).ToArray(), group.Count, length, maxLength);
                for (int i = 0; i < group.Count; i++) rates.Add<int>(WithoutEos(result.Tokens[i], model.EosId), group[i].References);
            }
            else
            {
                var beams = model.BeamSearchBatch(group.SelectMany(w => w.Source).ToArray(), group.Count, length, beamWidth, maxLength, lengthPenalty);
                for (int i = 0; i < group.Count; i++) rates.Add<int>(WithoutEos(beams[i][0].Tokens, model.EosId), group[i].References);
            }
        }
        return rates;
    }

    static int[] WithoutEos(int[] tokens, int eos) => tokens.Length > 0 && tokens[^1] == eos ? tokens[..^1] : tokens;

    /// <summary>
    /// Trains until <see cref="TrainOptions.Steps"/> or the time limit, drawing batches from <paramref name="train"/> in a
    /// new random order each epoch; calls <paramref name="onStep"/> after every step and <paramref name="onEval"/> every
    /// <see cref="TrainOptions.EvalInterval"/> steps and at the end.
    /// </summary>
    public void Run(G2pDataset train, Action<StepReport> onStep, Action<int> onEval, CancellationToken cancel)
    {
        if (train.Words.Count == 0) throw new ArgumentException("The training set holds no words.", nameof(train));
        EpochLoop.Run(_options, refitAfterEval: true, shuffle => train.Batches(_options.Batch, shuffle),
            batch => TrainStep(batch), batch => batch.Labels.Count(l => l != _model.PadId), new Scheduled(this), onStep, onEval, cancel);
    }

    /// <summary>This trainer as the loop sees it.</summary>
    sealed class Scheduled(Seq2SeqTrainer trainer) : IScheduledTrainer
    {
        public int Step => trainer.Step;
        public CosineSchedule Schedule { get => trainer.Schedule; set => trainer.Schedule = value; }
        public float LearningRate => trainer.Optimizer.LearningRate;
    }
}
