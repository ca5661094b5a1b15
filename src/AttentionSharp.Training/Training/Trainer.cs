using System.Diagnostics;
using AttentionSharp.Autograd;
using AttentionSharp.Distributed;
using AttentionSharp.Nn;

namespace AttentionSharp.Training;

/// <summary>
/// Where a trainer's batches and losses come from. A batch is global: under data parallelism every rank draws the same
/// batch of ranks × B rows (as one process would draw it) and scores only its own rows.
/// </summary>
public interface ILossSource
{
    /// <summary>Draws the next global batch; returns its rows.</summary>
    int NextBatch();

    /// <summary>The items the loss averages over (tokens, labelled words, images) in rows [first, first + rows).</summary>
    long Items(int firstRow, int rows);

    /// <summary>The mean loss over the items of rows [first, first + rows) of the current batch (training mode).</summary>
    Tensor Loss(int firstRow, int rows);
}

/// <summary>One optimizer step's figures.</summary>
public sealed record StepReport(int Step, int TotalSteps, float Loss, float LearningRate, float GradNorm, double ItemsPerSecond,
    TimeSpan Elapsed, TimeSpan Remaining)
{
    /// <summary>Set when the step was skipped under <see cref="NonFiniteAction.Skip"/>: what was not finite, and where.</summary>
    public string? Skipped { get; init; }
}

/// <summary>
/// The optimization step every task trains with: gradient accumulation over micro-batches, gradients averaged over the
/// ranks, one global-norm clip folded into AdamW (decay on the parameters the model marks), the learning rate from a
/// warmup + cosine schedule, and the NaN/Inf policy.
/// <para>
/// Data parallel over a <see cref="ICommunicator"/> of N ranks: rank r scores rows [r·⌈R/N⌉, …) of each global batch
/// of R rows. Its loss is weighted by N·(its items)/(the batch's items) before backward, so the gradients' average over
/// the ranks is the gradient of the whole batch's mean loss — also when rows hold different numbers of items (padded
/// sentences). Gradients are averaged with a bucketed all-reduce before clipping, so the clip sees the global norm.
/// </para>
/// </summary>
public sealed class Trainer
{
    readonly Module _model;
    readonly ILossSource _source;
    readonly TrainOptions _options;
    readonly ICommunicator _communicator;
    readonly GradientAllReducer _reducer;
    readonly Action<Tensor> _gradientReady;
    readonly float[] _scalar = new float[1];
    readonly int[] _control = new int[3];
    readonly Stopwatch _stepWatch = new();
    IStepEngine _engine;

    /// <param name="model">The module whose parameters are trained.</param>
    /// <param name="parameterGroups">Its parameters with their weight-decay flag.</param>
    /// <param name="source">The batches and the loss.</param>
    /// <param name="options">Batch, accumulation, learning rate and schedule, β₂, weight decay, clip, NaN policy.</param>
    /// <param name="communicator">
    /// The ranks training together; null trains in this process alone. With several ranks construction is a collective:
    /// rank 0's weights are broadcast so that every rank starts from them.
    /// </param>
    public Trainer(Module model, IEnumerable<(Tensor Param, bool Decay)> parameterGroups, ILossSource source,
        TrainOptions options, ICommunicator? communicator = null)
    {
        _model = model;
        _source = source;
        _options = options.Validate();
        _communicator = communicator ?? new SingleProcessCommunicator();
        DataParallel.BroadcastParameters(_communicator, model.Parameters());
        _reducer = new GradientAllReducer(_communicator, model.Parameters());
        _gradientReady = _reducer.GradientReady;
        Optimizer = new AdamW(parameterGroups, options.LearningRate, 0.9f, options.Beta2, 1e-8f, options.WeightDecay);
        Schedule = new CosineSchedule(options.LearningRate, options.WarmupSteps, options.Steps,
            options.LearningRate * options.MinLearningRateRatio);
        _engine = new HostStepEngine(model, source, Optimizer, _options);
        if (options.Ema > 0) Average = new WeightAverage(model.NamedParameters().Select(p => p.Parameter), options.Ema);
    }

    /// <summary>
    /// The engine that runs this trainer's steps through the model's own modules on <paramref name="device"/> (see
    /// <see cref="HostStepEngine"/>), for <see cref="Engine"/>; <paramref name="owned"/> is disposed with it.
    /// </summary>
    public IStepEngine EngineOn(Device device, IDisposable? owned = null) =>
        new HostStepEngine(_model, _source, Optimizer, _options, device, owned);

    /// <summary>The moving average of the weights (<see cref="TrainOptions.Ema"/>), updated after every step; or null.</summary>
    public WeightAverage? Average { get; }

    /// <summary>The model's AdamW: its hyperparameters, learning rate, moments and step count (what checkpoints keep).</summary>
    public AdamW Optimizer { get; }

    /// <summary>
    /// Where the steps compute: the CPU engine by default, or a device's (<see cref="IStepEngine"/>), which must be set
    /// before training and in one process only (a device engine does not average gradients across ranks).
    /// </summary>
    public IStepEngine Engine
    {
        get => _engine;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (_communicator.Size > 1 && value is not HostStepEngine)
                throw new ArgumentException($"A device trains in one process; this run has {_communicator.Size} MPI ranks.");
            _engine = value;
        }
    }

    /// <summary>The learning-rate schedule; its length is fitted to the time limit when one is set.</summary>
    public CosineSchedule Schedule { get; set; }

    /// <summary>
    /// The first step with dropout (<see cref="TrainOptions.DropoutFrom"/> of the schedule's length): the steps before
    /// it run the model in evaluation mode.
    /// </summary>
    public int DropoutStart => (int)Math.Ceiling((double)_options.DropoutFrom * Schedule.TotalSteps);

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

    /// <summary>Items (tokens, words, images) the last step trained on, over all ranks and micro-batches.</summary>
    public long LastItems { get; private set; }

    /// <summary>
    /// Runs one optimizer step on <see cref="TrainOptions.GradAccumulation"/> micro-batches; returns the mean loss (over
    /// all ranks) and the global gradient norm. A NaN or ±∞ in the loss or a gradient throws
    /// <see cref="NonFiniteException"/> ("step N: gradient of NAME is +Inf") before the weights or the optimizer are
    /// touched, or with <see cref="NonFiniteAction.Skip"/> drops the step (its batches are consumed and the step counted,
    /// nothing else changes) and sets <see cref="LastSkipped"/>. With several ranks a NaN reaches every rank through the
    /// all-reduce, so all of them stop or skip together.
    /// </summary>
    public (float Loss, float GradNorm) TrainStep()
    {
        _stepWatch.Start();
        try { return TrainStepTimed(); }
        finally { _stepWatch.Stop(); }
    }

    (float Loss, float GradNorm) TrainStepTimed()
    {
        _model.Train(Step >= DropoutStart);
        _engine.ZeroGrad();
        LastSkipped = null;
        LastItems = 0;
        using var scope = TensorScope.Begin(); // every activation of the step goes back to the pool at the end
        float lossSum = 0;
        string? problem = null;
        int accumulate = _options.GradAccumulation;
        for (int micro = 0; micro < accumulate; micro++)
        {
            int globalRows = _source.NextBatch();
            if (problem is not null) continue; // the step's other batches are still drawn, so the data order stays the same
            var (first, rows) = DataParallel.Shard(globalRows, _communicator.Rank, _communicator.Size);
            long items = _source.Items(first, rows);
            long allItems = _communicator.Size == 1 ? items : _source.Items(0, globalRows);
            LastItems += allItems;
            if (items == 0) continue;   // rows with nothing to score (no masked word) add nothing to the gradient
            // N·(mine)/(all): exactly 1 in one process, and for any N when every row holds as many items.
            float share = _communicator.Size == 1 ? 1f : (float)((double)_communicator.Size * items / allItems);
            try
            {
                // The step's last backward reports finished gradients, so their all-reduce overlaps the rest of it.
                var ready = _communicator.Size > 1 && micro == accumulate - 1 ? _gradientReady : null;
                float loss = _engine.ForwardBackward(first, rows, accumulate == 1 && share == 1f ? 1f : share / accumulate,
                                                     ready);
                lossSum += share == 1f ? loss : loss * share;
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
            _scalar[0] = lossSum;
            _communicator.AllReduceSum(_scalar);
            lossSum = _scalar[0] / _communicator.Size;
        }
        float meanLoss = lossSum / accumulate;
        // Clipping (on the global gradient) is folded into the AdamW pass: it reads each gradient times the factor.
        var (norm, clip) = _engine.ClipCoefficient(_options.GradClip);
        problem ??= _engine.DescribeNonFinite(Step + 1, meanLoss, norm);
        if (problem is not null)
        {
            if (_options.OnNonFinite == NonFiniteAction.Stop)
                throw new NonFiniteException($"{problem}; training stopped (lower the learning rate, now " +
                                             $"{Optimizer.LearningRate:G3}, check the data, or skip such steps).");
            _engine.ZeroGrad();
            LastSkipped = problem;
            Step++;
            return (meanLoss, norm);
        }
        Optimizer.LearningRate = Schedule.RateAt(Step);
        _engine.Step(clip);
        Average?.Update();
        Step++;
        return (meanLoss, norm);
    }

    /// <summary>
    /// Trains until the schedule's last step or the time limit (the schedule fitted to it), calling
    /// <paramref name="onStep"/> after every step and <paramref name="onEval"/> every <see cref="TrainOptions.EvalInterval"/>
    /// steps and at the end; stops after the current step when <paramref name="cancel"/> is signalled. Under data
    /// parallelism rank 0's clock and cancellation decide for every rank.
    /// </summary>
    public void Run(Action<StepReport> onStep, Action<int> onEval, CancellationToken cancel)
    {
        var o = _options;
        var budget = new TimeBudget(o.Minutes, o.Steps, o.EvalInterval, Step, fitAfter: [10, 60], refitAfterEval: true);
        bool stop = cancel.IsCancellationRequested;
        if (_communicator.Size > 1) (Schedule, _, stop) = AgreeWithRankZero(Schedule, false, stop);
        while (Step < Schedule.TotalSteps && !stop)
        {
            var (loss, norm) = TrainStep();
            Schedule = budget.AfterStep(Step, Schedule);
            bool outOfTime = budget.OutOfTime;
            stop = cancel.IsCancellationRequested;
            if (_communicator.Size > 1) (Schedule, outOfTime, stop) = AgreeWithRankZero(Schedule, outOfTime, stop);
            double perStep = budget.SecondsPerStep(Step);
            var remaining = TimeSpan.FromSeconds(perStep * (Schedule.TotalSteps - Step));
#pragma warning disable format
            onStep(new StepReport(Step, Schedule.TotalSteps, loss, Optimizer.LearningRate, norm,
                LastItems / perStep, budget.Elapsed, remaining) { Skipped = LastSkipped });
#pragma warning restore format
            int step = Step;
            if ((o.EvalInterval > 0 && step % o.EvalInterval == 0) || step == Schedule.TotalSteps || outOfTime)
            {
                Schedule = budget.Evaluate(step, Schedule, () =>
                {
                    _engine.CopyToHost();   // evaluation and checkpoints read the host model and optimizer
                    onEval(step);
                });
                if (_communicator.Size > 1) (Schedule, _, _) = AgreeWithRankZero(Schedule, outOfTime, stop);
            }
            if (outOfTime) break;
        }
        _engine.CopyToHost();
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

    /// <summary>The moving average of the weights by parameter name, for checkpoints; null without one.</summary>
    public IReadOnlyList<(string Name, float[] Values)>? Averages() => Average is not { } average ? null
        : [.. _model.NamedParameters().Select((p, i) => (p.Name, average.Values(i)))];

    /// <summary>The AdamW moments by parameter name, for checkpoints.</summary>
    public IReadOnlyList<(string Name, float[] M, float[] V)> Moments() =>
        [.. _model.NamedParameters().Select((p, i) => { var (m, v) = Optimizer.Moments(i); return (p.Name, m, v); })];
}
