using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using AttentionSharp.Distributed;
using AttentionSharp.IO;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Training;

/// <summary>Draws a run's loss curve: (path, training losses, validation losses, title).</summary>
public delegate void LossCurveWriter(string path, IReadOnlyList<(int Step, float Loss)> train,
    IReadOnlyList<(int Step, float Loss)> validation, string title);

/// <summary>
/// One training run, for every task: the loop with gradient accumulation, the schedule fitted to the time limit,
/// validation every <see cref="TrainOptions.EvalInterval"/> steps on a fixed sample of the whole validation split (all of
/// it at the end), the latest and best checkpoints (written atomically), <c>log.jsonl</c>, <c>loss.png</c>, exact
/// <c>--resume</c>, the NaN/Inf policy, Ctrl-C saving, and data parallelism over MPI. The task
/// (<see cref="ITrainingTask"/>) brings only its model, batches, loss, metric and closing figures.
/// <para>
/// Under MPI every rank runs this with the same options; rank 0 alone prints, logs and writes checkpoints and the loss
/// curve (errors still go to stderr), and rank 0's clock and Ctrl-C decide for all ranks.
/// </para>
/// </summary>
public sealed class TrainingRun
{
    readonly TrainOptions _options;
    readonly ICommunicator _communicator;
    readonly TextWriter _output;

    /// <param name="options">The run's options (a task's preset with the user's choices bound onto it).</param>
    /// <param name="communicator">The ranks training together; a single-process group without MPI.</param>
    /// <param name="output">Where rank 0 prints; the other ranks print nothing.</param>
    public TrainingRun(TrainOptions options, ICommunicator communicator, TextWriter output)
    {
        _options = TaskPresets.Refuse(options.Validate());
        _communicator = communicator;
        _output = communicator.Rank == 0 ? output : TextWriter.Null;
    }

    /// <summary>Draws <c>loss.png</c> at the end (the library's core has no plotting); null draws nothing.</summary>
    public LossCurveWriter? LossCurve { get; init; }

    /// <summary>Called after every step with its figures (for hosts that show progress their own way), or null.</summary>
    public Action<StepReport>? StepObserver { get; init; }

    /// <summary>
    /// Makes the step engine of <see cref="TrainOptions.Device"/> = Cuda for the task and its trainer (after a resumed
    /// run's weights and moments are restored); hosts that can open a GPU set it (the library has no GPU code). The
    /// engine's description is printed with the run's header.
    /// </summary>
    public Func<ITrainingTask, Trainer, (IStepEngine Engine, string Description)>? DeviceEngine { get; init; }

    /// <summary>
    /// The directory that `attn train --resume` continues, named when the run is interrupted: the run directory unless
    /// the run is part of a larger one (an ensemble's member).
    /// </summary>
    public string? ContinueWith { get; set; }

    /// <summary>Ends the run after the current step, as Ctrl-C does (for hosts, ensembles and tests); set before
    /// <see cref="Execute"/>.</summary>
    public CancellationToken Cancellation { get; set; }

    /// <summary>
    /// After <see cref="Execute"/> has finished a run: its last log record (the final validation pass with the best
    /// weights, and the task's closing figures, such as test accuracy); null until then, and after an interrupted run.
    /// </summary>
    public JsonObject? Closing { get; private set; }

    /// <summary>The optimizer steps the last <see cref="Execute"/> took (including those of a resumed run before it).</summary>
    public int Steps { get; private set; }

    bool Leader => _communicator.Rank == 0;

    /// <summary>Trains; returns 0, or 130 when interrupted (the latest checkpoint saved).</summary>
    public int Execute()
    {
        var total = Stopwatch.StartNew();
        var o = _options;
        var runDir = o.RunDirectory;
        if (Leader) CheckWritable(runDir);
        Checkpoint.Contents? resumed =
            o.Resume is null ? null : Checkpoint.ReadContents(o.Resume, preferBest: false, optimizer: true);
        var task = LeaderFirst(() => TrainingTasks.Create(o, resumed, _communicator, _output));
        var model = task.Model;
        var trainer = new Trainer(model, task.ParameterGroups(), task, o, _communicator);
        double bestObjective = double.PositiveInfinity;
        if (resumed is not null)
        {
            Checkpoint.LoadWeights(o.Resume!, model, preferBest: false, trained: true);
            (bestObjective, var taskState) = TrainingState.Restore(resumed, trainer, model);
            task.RestoreState(taskState);
            DataParallel.BroadcastParameters(_communicator, model.Parameters()); // any number of ranks resumes rank 0's
            _output.WriteLine($"Resuming from {o.Resume} (step {trainer.Step}).");
            // A different --steps than the run was started with moves the schedule's end there (the rest is kept).
            if (resumed.State["options"]?["steps"] is JsonValue kept && kept.TryGetValue<int>(out int keptSteps)
                && keptSteps != o.Steps)
            {
                trainer.Schedule = trainer.Schedule with { TotalSteps = o.Steps };
                _output.WriteLine($"The schedule now ends at step {o.Steps} (the run was started for {keptSteps}).");
            }
        }
        if (o.Device != TrainDevice.Cpu && _communicator.Size > 1)
            throw new ArgumentException($"--device {o.Device.ToString().ToLowerInvariant()} trains in one process; this " +
                                        $"run has {_communicator.Size} MPI ranks (run it without mpirun).");
        string? deviceLine = null;
        if (o.Device != TrainDevice.Cpu)
        {
            var create = DeviceEngine ?? throw new InvalidOperationException(
                $"This host cannot train on --device {o.Device.ToString().ToLowerInvariant()}.");
            (trainer.Engine, deviceLine) = create(task, trainer);
        }
        using var deviceEngine = o.Device == TrainDevice.Cpu ? null : trainer.Engine;
        foreach (var line in task.Header) _output.WriteLine(line);
        if (deviceLine is not null) _output.WriteLine($"Device: {deviceLine}.");
        _output.WriteLine($"Parameters: {model.ParameterCount():N0}. Threads: {Kernels.Parallel.ThreadCount}" +
                          (_communicator.Size > 1 ? $" per rank, {_communicator.Size} ranks (MPI)." : "."));
        _output.WriteLine($"Training: {o.Steps} steps of {(_communicator.Size > 1 ? $"{_communicator.Size} ranks × " : "")}" +
                          $"{o.Batch} {task.RowUnit}" + (o.GradAccumulation > 1 ? $" × {o.GradAccumulation} accumulated" : "") +
                          (o.Minutes is { } m ? $", at most {m.ToString(CultureInfo.InvariantCulture)} minutes" : "") +
                          $"; lr {o.LearningRate:G3}, warmup {o.WarmupSteps}, weight decay {o.WeightDecay:G3}, " +
                          (o.Ema > 0 ? $"weight average (EMA) {o.Ema:G4}, " : "") +
                          $"dropout {o.Dropout ?? 0:G3}" +
                          (o.AttentionDropout is { } attention ? $" ({attention:G3} on the attention weights)" : "") +
                          (o.DropoutFrom > 0 ? $" after the first {100 * o.DropoutFrom:G3} % of the steps" : "") +
                          (o.WordDropout is > 0 ? $", word dropout {o.WordDropout:G3}" : "") +
                          (o.RareWordDropout is > 0 ? $", rare-word dropout α = {o.RareWordDropout:G3}" : "") +
                          (o.LabelSmoothing is { } smoothing ? $", label smoothing {smoothing:G3}" : "") +
                          (o.LossAverage is "token" ? ", loss averaged per token" : "") +
                          (o.Pronunciations is "first" ? ", first pronunciations only" : "") +
                          (o.Batching is "mixed" ? ", batches of mixed lengths" : "") +
                          $"; checkpoints in {runDir}.");

        if (Leader) Directory.CreateDirectory(runDir);
        var latestDir = Path.Combine(runDir, Checkpoint.LatestSubdirectory);
        var bestDir = Path.Combine(runDir, Checkpoint.BestSubdirectory);
        var logPath = Path.Combine(runDir, "log.jsonl");
        // On resume the log keeps what was written up to the checkpoint's step; later lines (written before a crash)
        // are dropped because those steps run again.
        using var log = !Leader ? null
                      : resumed is null ? new MetricsLog(logPath, append: false) : MetricsLog.ResumeAt(logPath, trainer.Step);
        var trainCurve = new List<(int, float)>();
        var validCurve = new List<(int, float)>();
        // A live line redraws every step; under MPI (whose launcher forwards the output, and stops reading it when
        // interrupted) and when redirected, a plain line every few seconds instead.
        bool plain = Console.IsOutputRedirected || _output != Console.Out || _communicator.Size > 1;
        var progress = new ProgressLine(_output, plain, task.ItemUnit);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Cancellation);
        int savedStep = resumed is null ? -1 : trainer.Step;

        void Save(string dir)
        {
            if (Leader)
                Checkpoint.Save(dir, model, new Checkpoint.Contents(task.Config, task.TokenizerJson,
                    TrainingState.Capture(trainer, model, task.CaptureState(), bestObjective, _options), trainer.Moments())
                {
                    WeightAverage = trainer.Averages(),
                });
            savedStep = trainer.Step;
        }

        void OnStep(StepReport report)
        {
            if (report.Skipped is { } skipped) progress.Line($"{skipped}; step skipped.");
            progress.Update(report);
            trainCurve.Add((report.Step, report.Loss));
            var record = new JsonObject
            {
                ["step"] = report.Step, ["loss"] = Finite(report.Loss), ["lr"] = report.LearningRate,
                ["grad_norm"] = Finite(report.GradNorm), [$"{task.ItemUnit}_per_s"] = Math.Round(report.ItemsPerSecond),
                ["elapsed_s"] = Math.Round(report.Elapsed.TotalSeconds, 2),
            };
            if (report.Skipped is not null) record["skipped"] = report.Skipped;
            if (_communicator.Size > 1)
            {
                record["ranks"] = _communicator.Size;
                record["allreduce_s"] = Math.Round(trainer.AllReduceTime.TotalSeconds, 3);
                record["train_s"] = Math.Round(trainer.StepTime.TotalSeconds, 3);
            }
            log?.Write(record);
            StepObserver?.Invoke(report);
        }

        // With --ema, validation and the best checkpoint read the average of the weights; the latest checkpoint keeps
        // the trained weights (and the average beside them).
        void OnEval(int step)
        {
            bool best;
            using (trainer.Average?.SwappedIn())
            {
                var eval = task.Evaluate(full: false);
                validCurve.Add((step, eval.Loss));
                best = eval.Objective < bestObjective;
                if (best) bestObjective = eval.Objective;
                progress.Line($"step {step}: {eval.Summary}{(best ? " (best so far)" : "")}");
                var record = new JsonObject { ["step"] = step, ["val_loss"] = eval.Loss };
                foreach (var (key, value) in eval.Record) record[key] = value?.DeepClone();
                log?.Write(record);
                if (best) Save(bestDir);
            }
            Save(latestDir);
        }

        // mpirun forwards its own Ctrl-C as SIGTERM, and sends SIGTERM (then SIGKILL) when any rank fails: say which.
        void OnTerminate() => Console.Error.WriteLine(
            $"error: rank {_communicator.Rank} of {_communicator.Size} was stopped by the MPI launcher, which ends the " +
            "job when it is interrupted or when any rank fails (its report names the rank, as 'process rank R' or " +
            "'Process name: [[job,1],R]'). " +
            (savedStep >= 0
                ? $"The last checkpoint, step {savedStep}, is in {latestDir}; continue with any number of ranks: " +
                  $"attn train --resume {ContinueWith ?? runDir}"
                : "No checkpoint was written yet."));
        using (new InterruptHandlers(cancel, _communicator.Size > 1 ? OnTerminate : null))
            trainer.Run(OnStep, OnEval, cancel.Token);
        Steps = trainer.Step;

        // Interrupted: the checkpoint and its message first, since under MPI the launcher's SIGKILL follows its SIGTERM
        // within a second; the loss curve after them.
        var curvePath = Path.Combine(runDir, "loss.png");
        if (cancel.IsCancellationRequested)
        {
            Save(latestDir);
            progress.Line($"Interrupted at step {trainer.Step}; checkpoint saved to {latestDir}. " +
                          $"Continue with: attn train --resume {ContinueWith ?? runDir}");
            if (Leader && trainCurve.Count > 0) LossCurve?.Invoke(curvePath, trainCurve, validCurve, task.Title);
            return 130;
        }
        if (Leader && trainCurve.Count > 0) LossCurve?.Invoke(curvePath, trainCurve, validCurve, task.Title);
        if (_communicator.Size > 1)
            _output.WriteLine($"All-reduce: {trainer.AllReduceTime.TotalSeconds:F1} s of {trainer.StepTime.TotalSeconds:F1} s " +
                              $"in training steps ({100 * trainer.AllReduceTime / trainer.StepTime:F1}%, waiting for the " +
                              "slowest rank included).");

        // All of validation with the best weights (rank 0's, sent to every rank), then the task's closing figures.
        if (Leader) Checkpoint.LoadWeights(bestDir, model);
        DataParallel.BroadcastParameters(_communicator, model.Parameters());
        var final = task.Evaluate(full: true);
        var closing = new JsonObject { ["final_val_loss"] = final.Loss };
        foreach (var (key, value) in final.Record) closing["final_" + key] = value?.DeepClone();
        _output.WriteLine();
        _output.WriteLine($"Final pass, best checkpoint: {final.Summary}.");
        task.Finish(_output, closing);
        log?.Write(closing);
        Closing = closing;
        _output.WriteLine($"Checkpoints: {Path.GetFullPath(bestDir)} (best), {Path.GetFullPath(latestDir)} (latest)");
        _output.WriteLine($"Loss curve: {Path.GetFullPath(curvePath)}   Log: {Path.GetFullPath(logPath)}");
        _output.WriteLine($"Time: {Clock(total.Elapsed)}. Try: {task.Try(runDir)}");
        return 0;
    }

    /// <summary>A run's time as m:ss, or h:mm:ss from an hour on.</summary>
    public static string Clock(TimeSpan time) =>
        time.ToString(time.TotalHours >= 1 ? @"h\:mm\:ss" : @"m\:ss", CultureInfo.InvariantCulture);

    /// <summary>Runs <paramref name="create"/> on rank 0 first (it may fetch data), then on the others.</summary>
    T LeaderFirst<T>(Func<T> create)
    {
        if (_communicator.Size == 1) return create();
        var signal = new int[1];
        var made = Leader ? create() : default;
        _communicator.Broadcast(signal, root: 0);
        return Leader ? made! : create();
    }

    static float? Finite(float value) => float.IsFinite(value) ? value : null; // JSON has no NaN

    static void CheckWritable(string dir)
    {
        var full = Path.GetFullPath(dir);
        try
        {
            var parent = Path.GetDirectoryName(full)!;
            Directory.CreateDirectory(parent);
            // the thread too: an ensemble's members start side by side in one directory
            var probe = Path.Combine(parent, $".attn-write-test-{Environment.ProcessId}-{Environment.CurrentManagedThreadId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"The output directory '{dir}' cannot be written: {e.Message}", e);
        }
    }

    /// <summary>
    /// Ctrl-C (SIGINT), and under MPI also SIGTERM (what mpirun forwards when its own Ctrl-C arrives), end the run after
    /// the current step; rank 0's decision reaches every rank, and rank 0 saves the latest checkpoint. (When a rank has
    /// died, the others cannot finish the step's collectives; mpirun then kills them, and the last checkpoint stands.)
    /// </summary>
    sealed class InterruptHandlers : IDisposable
    {
        readonly PosixSignalRegistration _interrupt;
        readonly PosixSignalRegistration? _terminate;

        public InterruptHandlers(CancellationTokenSource cancel, Action? onTerminate)
        {
            _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cancel.Cancel(); });
            if (onTerminate is not null)
                _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
                {
                    onTerminate();
                    c.Cancel = true;
                    cancel.Cancel();
                });
        }

        public void Dispose()
        {
            _interrupt.Dispose();
            _terminate?.Dispose();
        }
    }
}

/// <summary>A generator's state as JSON: its 64-bit words as decimal strings (JSON numbers lose precision past 2⁵³).</summary>
public static class GeneratorState
{
    public static JsonArray ToJson(Generator generator) => ToJson(generator.GetState());

    /// <summary>A generator state captured earlier (<see cref="Generator.GetState"/>) as JSON.</summary>
    public static JsonArray ToJson(ulong[] state) => [.. state.Select(w => (JsonNode)w.ToString(CultureInfo.InvariantCulture))];

    public static ulong[] FromJson(JsonNode? node, string what)
    {
        if (node is not JsonArray array) throw new CheckpointException($"The trainer state has no '{what}'.");
        return [.. array.Select(n => ulong.TryParse(n?.GetValue<string>(), CultureInfo.InvariantCulture, out var v)
            ? v : throw new CheckpointException($"The trainer state's '{what}' holds a value that is not a 64-bit word."))];
    }
}
