using System.Diagnostics;
using AttentionSharp.Autograd;
using AttentionSharp.Distributed;
using AttentionSharp.Models;

namespace AttentionSharp.Training;

/// <summary>The knobs of a training run; every field is a command-line option of <c>attn train</c>.</summary>
public sealed record TrainOptions
{
    /// <summary>Optimizer steps to take (the schedule's length).</summary>
    public int Steps { get; init; } = 2000;

    /// <summary>If set, stop after this many minutes of training even if steps remain.</summary>
    public double? Minutes { get; init; }

    /// <summary>B: sequences per micro-batch on each rank (the global batch is B × ranks).</summary>
    public int Batch { get; init; } = 32;

    /// <summary>Micro-batches whose gradients are summed before each step (effective batch = Batch × this).</summary>
    public int GradAccumulation { get; init; } = 1;

    /// <summary>Peak learning rate, reached after warmup.</summary>
    public float LearningRate { get; init; } = 3e-3f;

    /// <summary>Steps of linear warmup.</summary>
    public int WarmupSteps { get; init; } = 100;

    /// <summary>The rate the cosine decays to, as a fraction of the peak.</summary>
    public float MinLearningRateRatio { get; init; } = 0.1f;

    /// <summary>AdamW's decoupled weight decay, on matrices only.</summary>
    public float WeightDecay { get; init; } = 0.1f;

    /// <summary>Global gradient-norm limit.</summary>
    public float GradClip { get; init; } = 1f;

    /// <summary>Steps between validation passes (0 = only at the end).</summary>
    public int EvalInterval { get; init; } = 250;

    /// <summary>Validation batches per pass.</summary>
    public int EvalBatches { get; init; } = 16;

    /// <summary>Seed of everything random in the run.</summary>
    public ulong Seed { get; init; } = 1337;

    /// <summary>What to do when a step's loss or a gradient is NaN or ±∞: stop (the default) or skip the step.</summary>
    public NonFiniteAction OnNonFinite { get; init; } = NonFiniteAction.Stop;

    /// <summary>Check every operation's output in the forward pass and name the first that is not finite (slower).</summary>
    public bool DetectAnomaly { get; init; }

    public TrainOptions Validate()
    {
        if (Steps <= 0) throw new ArgumentException($"Steps must be positive; got {Steps}.");
        if (Minutes is { } m && !(m > 0)) throw new ArgumentException($"Minutes must be positive; got {m}.");
        if (Batch <= 0) throw new ArgumentException($"Batch must be positive; got {Batch}.");
        if (GradAccumulation <= 0) throw new ArgumentException($"Gradient accumulation must be positive; got {GradAccumulation}.");
        if (!(LearningRate > 0) || float.IsInfinity(LearningRate)) throw new ArgumentException($"The learning rate must be a positive number; got {LearningRate}.");
        if (WarmupSteps < 0) throw new ArgumentException($"Warmup steps cannot be negative; got {WarmupSteps}.");
        if (!(MinLearningRateRatio >= 0 && MinLearningRateRatio <= 1)) throw new ArgumentException($"The minimum learning-rate ratio must be in [0, 1]; got {MinLearningRateRatio}.");
        if (!(WeightDecay >= 0)) throw new ArgumentException($"Weight decay cannot be negative; got {WeightDecay}.");
        if (!(GradClip > 0)) throw new ArgumentException($"The gradient clip must be positive; got {GradClip}.");
        if (EvalInterval < 0) throw new ArgumentException($"The evaluation interval cannot be negative; got {EvalInterval}.");
        if (EvalBatches <= 0) throw new ArgumentException($"Evaluation batches must be positive; got {EvalBatches}.");
        return this;
    }
}

/// <summary>One optimizer step's figures.</summary>
public sealed record StepReport(int Step, int TotalSteps, float Loss, float LearningRate, float GradNorm, double TokensPerSecond, TimeSpan Elapsed, TimeSpan Remaining)
{
    /// <summary>Set when the step was skipped under <see cref="NonFiniteAction.Skip"/>: what was not finite, and where.</summary>
    public string? Skipped { get; init; }
}

/// <summary>
/// Trains a <see cref="Gpt"/> on next-token prediction: AdamW with decay on matrices, warmup then cosine decay, global
/// clipping, gradient accumulation, periodic validation. Batches come from the caller; the trainer owns the loop.
/// <para>
/// Data parallel over a <see cref="ICommunicator"/> of N ranks: the caller hands every rank the same global batch of
/// N·B rows (drawn as one process would draw it); rank r trains on rows [r·B, (r+1)·B), gradients are averaged with a
/// bucketed all-reduce before clipping (so the clip sees the global norm), and losses are averaged for reporting. Rank
/// 0's clock decides when a time limit ends training, and every rank follows it, so all take the same steps.
/// </para>
/// </summary>
public sealed class LanguageModelTrainer
{
    readonly Gpt _model;
    readonly TrainOptions _options;
    readonly ICommunicator _communicator;
    readonly GradientAllReducer _reducer;
    readonly float[] _scalars = new float[2];
    readonly int[] _control = new int[3];
    readonly Stopwatch _stepWatch = new();

    /// <param name="communicator">
    /// The ranks training together; null trains in this process alone. With several ranks construction is a collective:
    /// rank 0's weights are broadcast so that every rank starts from them.
    /// </param>
    public LanguageModelTrainer(Gpt model, TrainOptions options, ICommunicator? communicator = null)
    {
        _model = model;
        _options = options.Validate();
        _communicator = communicator ?? new SingleProcessCommunicator();
        DataParallel.BroadcastParameters(_communicator, model.Parameters());
        _reducer = new GradientAllReducer(_communicator, model.Parameters());
        Optimizer = new AdamW(model.ParameterGroups(), options.LearningRate, 0.9f, 0.95f, 1e-8f, options.WeightDecay);
        Schedule = new CosineSchedule(options.LearningRate, options.WarmupSteps, options.Steps, options.LearningRate * options.MinLearningRateRatio);
    }

    public AdamW Optimizer { get; }
    /// <summary>The learning-rate schedule; its length is fitted to the time limit when one is set.</summary>
    public CosineSchedule Schedule { get; set; }

    /// <summary>Steps completed so far (set when resuming).</summary>
    public int Step { get; set; }

    /// <summary>The ranks training together (a group of one without MPI).</summary>
    public ICommunicator Communicator => _communicator;

    /// <summary>Time spent averaging gradients across ranks so far (zero for a single process).</summary>
    public TimeSpan AllReduceTime => _reducer.Elapsed;

    /// <summary>Time spent in <see cref="TrainStep"/> so far (forward, backward, all-reduce, optimizer).</summary>
    public TimeSpan StepTime => _stepWatch.Elapsed;

    /// <summary>What the last step found not finite and skipped (<see cref="NonFiniteAction.Skip"/>), or null.</summary>
    public string? LastSkipped { get; private set; }

    /// <summary>
    /// Runs one optimizer step on <see cref="TrainOptions.GradAccumulation"/> micro-batches; returns the mean loss (over
    /// all ranks) and the global gradient norm. <paramref name="nextBatch"/> returns global batches of ranks × B rows.
    /// A NaN or ±∞ in the loss or a gradient throws <see cref="NonFiniteException"/> ("step N: gradient of NAME is +Inf")
    /// before the weights or the optimizer are touched, or with <see cref="NonFiniteAction.Skip"/> drops the step (the
    /// batch is consumed and the step counted, nothing else changes) and sets <see cref="LastSkipped"/>. With several
    /// ranks a NaN reaches every rank through the all-reduce, so all of them stop or skip together.
    /// </summary>
    public (float Loss, float GradNorm) TrainStep(Func<(int[] X, int[] Y)> nextBatch, int time)
    {
        _stepWatch.Start();
        try { return TrainStepTimed(nextBatch, time); }
        finally { _stepWatch.Stop(); }
    }

    (float Loss, float GradNorm) TrainStepTimed(Func<(int[] X, int[] Y)> nextBatch, int time)
    {
        _model.Train();
        Optimizer.ZeroGrad();
        LastSkipped = null;
        using var scope = TensorScope.Begin(); // every activation of the step goes back to the pool at the end
        float lossSum = 0;
        string? problem = null;
        for (int micro = 0; micro < _options.GradAccumulation; micro++)
        {
            var (globalX, globalY) = nextBatch();
            if (problem is not null) continue; // the rest of the step's batches are still drawn, so the data order stays the same
            int globalRows = globalX.Length / time;
            if (globalRows * time != globalX.Length || globalY.Length != globalX.Length || globalRows % _communicator.Size != 0)
                throw new ArgumentException($"A training batch must hold ranks × B × T = {_communicator.Size} × B × {time} ids in x and y; got {globalX.Length} and {globalY.Length}.");
            var (first, batch) = DataParallel.Shard(globalRows, _communicator.Rank, _communicator.Size);
            try
            {
                using var anomaly = _options.DetectAnomaly ? GradMode.DetectAnomaly() : default(GradMode.AnomalyScope?);
                var x = globalX.AsSpan(first * time, batch * time);
                var y = globalY.AsSpan(first * time, batch * time);
                _model.DropoutGenerator.FirstRow = first;                     // dropout masks as for rows first… of the global batch
                var logits = _model.Forward(x, batch, time);                  // (B, T, V)
                var loss = _model.Loss(logits, y);
                var scaled = _options.GradAccumulation == 1 ? loss : loss * (1f / _options.GradAccumulation);
                scaled.Backward();
                lossSum += loss.Item();
            }
            catch (NonFiniteException e) when (e.Operation is not null)
            {
                problem = $"step {Step + 1}: {e.Message}";
                lossSum = float.NaN;
            }
        }
        if (_communicator.Size > 1)
        {
            _reducer.AverageGradients();  // g ← (1/N)·Σ_ranks g: every rank now holds the global batch's gradient
            _scalars[0] = lossSum;
            _communicator.AllReduceSum(_scalars.AsSpan(0, 1));
            lossSum = _scalars[0] / _communicator.Size;
        }
        float meanLoss = lossSum / _options.GradAccumulation;
        // Clipping (on the global gradient) is folded into the AdamW pass: it reads each gradient times the factor.
        var (norm, clip) = GradientClipping.ClipCoefficient(_model.Parameters(), _options.GradClip);
        problem ??= NonFiniteCheck.Describe(Step + 1, meanLoss, norm, _model);
        if (problem is not null)
        {
            if (_options.OnNonFinite == NonFiniteAction.Stop)
                throw new NonFiniteException($"{problem}; training stopped (lower the learning rate, now {Optimizer.LearningRate:G3}, check the data, or skip such steps).");
            Optimizer.ZeroGrad();
            LastSkipped = problem;
            Step++;
            return (meanLoss, norm);
        }
        Optimizer.LearningRate = Schedule.RateAt(Step);
        Optimizer.Step(clip);
        Step++;
        return (meanLoss, norm);
    }

    /// <summary>
    /// Mean loss (nats per token) over the given evaluation batches, without recording gradients. With several ranks
    /// (a collective) each scores its share of every batch's rows and the batch's loss is the row-weighted mean.
    /// </summary>
    public float Evaluate(IEnumerable<(int[] X, int[] Y)> batches, int time)
    {
        _model.Eval();
        double total = 0; int count = 0;
        using (GradMode.NoGrad())
        {
            foreach (var (x, y) in batches)
            {
                using var scope = TensorScope.Begin();
                int rows = x.Length / time;
                if (_communicator.Size == 1)
                {
                    total += _model.Loss(_model.Forward(x, rows, time), y).Item();
                    count++;
                    continue;
                }
                var (first, mine) = DataParallel.Shard(rows, _communicator.Rank, _communicator.Size);
                _scalars[0] = mine == 0 ? 0f : mine * _model.Loss(_model.Forward(x.AsSpan(first * time, mine * time), mine, time), y.AsSpan(first * time, mine * time)).Item();
                _scalars[1] = mine;
                _communicator.AllReduceSum(_scalars);
                total += _scalars[0] / _scalars[1];
                count++;
            }
        }
        _model.Train();
        return count == 0 ? float.NaN : (float)(total / count);
    }

    /// <summary>
    /// Trains until <see cref="TrainOptions.Steps"/> or the time limit, calling <paramref name="onStep"/> after every step
    /// and <paramref name="onEval"/> every <see cref="TrainOptions.EvalInterval"/> steps and at the end. Stops early
    /// (after the current step) when <paramref name="cancel"/> is signalled.
    /// </summary>
    public void Run(Func<(int[] X, int[] Y)> nextBatch, int time, Action<StepReport> onStep, Action<int> onEval, CancellationToken cancel)
    {
        var budget = new TimeBudget(_options.Minutes, _options.Steps, _options.EvalInterval, Step, fitAfter: [10, 60], refitAfterEval: false);
        long tokensPerStep = (long)_options.Batch * time * _options.GradAccumulation * _communicator.Size;
        bool stop = cancel.IsCancellationRequested;
        if (_communicator.Size > 1) (Schedule, _, stop) = AgreeWithRankZero(Schedule, false, stop);
        while (Step < Schedule.TotalSteps && !stop)
        {
            var (loss, norm) = TrainStep(nextBatch, time);
            Schedule = budget.AfterStep(Step, Schedule);
            bool outOfTime = budget.OutOfTime;
            stop = cancel.IsCancellationRequested;
            if (_communicator.Size > 1) (Schedule, outOfTime, stop) = AgreeWithRankZero(Schedule, outOfTime, stop);
            double perStep = budget.SecondsPerStep(Step);
            var remaining = TimeSpan.FromSeconds(perStep * (Schedule.TotalSteps - Step));
            onStep(new StepReport(Step, Schedule.TotalSteps, loss, Optimizer.LearningRate, norm, tokensPerStep / perStep, budget.Elapsed, remaining) { Skipped = LastSkipped });
            if ((_options.EvalInterval > 0 && Step % _options.EvalInterval == 0) || Step == Schedule.TotalSteps || outOfTime)
            {
                Schedule = budget.Evaluate(Step, Schedule, () => onEval(Step));
                if (_communicator.Size > 1) (Schedule, _, _) = AgreeWithRankZero(Schedule, outOfTime, stop);
            }
            if (outOfTime) break;
        }
    }

    /// <summary>
    /// Rank 0's schedule length, time-limit and stop decisions, broadcast (a collective): each rank's clock and Ctrl-C
    /// differ, and ranks that disagreed on the step count would wait for each other forever.
    /// </summary>
    (CosineSchedule, bool OutOfTime, bool Stop) AgreeWithRankZero(CosineSchedule schedule, bool outOfTime, bool stop)
    {
        _control[0] = schedule.TotalSteps;
        _control[1] = outOfTime ? 1 : 0;
        _control[2] = stop ? 1 : 0;
        _communicator.Broadcast(_control, root: 0);
        return (schedule with { TotalSteps = _control[0] }, _control[1] != 0, _control[2] != 0);
    }
}
