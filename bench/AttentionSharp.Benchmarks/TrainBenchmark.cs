using System.Diagnostics;
using AttentionSharp.Autograd;
using AttentionSharp.Models;
using AttentionSharp.Training;
using TorchSharp;

namespace AttentionSharp.Benchmarks;

/// <summary>What <see cref="TrainBenchmark.Run"/> measures and where it reports.</summary>
public sealed record TrainBenchOptions
{
    /// <summary>The configurations, by name (see <see cref="TrainBenchConfig.All"/>).</summary>
    public IReadOnlyList<string> Configs { get; init; } = TrainBenchConfig.CpuDefault;

    /// <summary>Threads for both libraries.</summary>
    public int Threads { get; init; } = 2;

    /// <summary>Timed steps per library and configuration; the median counts.</summary>
    public int Steps { get; init; } = 10;

    /// <summary>
    /// Untimed steps first (JIT, pools, caches): at least this many, and at least <see cref="WarmupSeconds"/> of them.
    /// </summary>
    public int Warmups { get; init; } = 2;

    /// <summary>
    /// Warm-up lasts at least this long, and then until the JIT is quiet (<see cref="BenchReport.WarmUp"/>), so that
    /// the JIT's optimised code (compiled in the background after a method's first calls) is in place before timing
    /// starts, even for configurations whose steps take milliseconds.
    /// </summary>
    public double WarmupSeconds { get; init; } = 2;

    /// <summary>Also print our time per operation kind (forward and backward) over the timed steps.</summary>
    public bool Profile { get; init; }

    /// <summary>Also time TorchSharp; off, or unloadable, leaves its columns empty.</summary>
    public bool Peer { get; init; } = true;

    /// <summary>Where to write the JSON report, if anywhere.</summary>
    public string? JsonPath { get; init; }

    public string? Validate() =>
        Threads < 1 ? $"--threads must be at least 1, got {Threads}."
        : Steps < 1 ? $"--steps must be at least 1, got {Steps}."
        : Warmups < 0 ? $"--warmups must be non-negative, got {Warmups}."
        : Configs.Count == 0 ? "At least one configuration is needed."
        : Configs.FirstOrDefault(n => TrainBenchConfig.All.All(c => c.Name != n)) is { } bad
            ? $"Unknown configuration '{bad}'; expected one of {string.Join(", ", TrainBenchConfig.All.Select(c => c.Name))}."
        : null;
}

/// <summary>One row of the report.</summary>
/// <param name="Ms">Our median ms per step.</param>
/// <param name="StepFlops">Model FLOPs of one step (<see cref="TrainBenchConfig.StepFlops"/>).</param>
/// <param name="PeakGflops">The measured FMA peak that <see cref="Mfu"/> divides by.</param>
/// <param name="PeakMb">
/// Peak resident-set growth while building the model and optimizer and running the warm-up steps, MiB.
/// </param>
/// <param name="LossDifference">|our loss − TorchSharp's| on the first step (same weights, same batch).</param>
/// <param name="Ms1Thread">Our median ms per step on one thread (the same steps), for the thread-scaling column.</param>
/// <param name="TensorPeakMb">
/// <see cref="MemoryMeter"/>'s high-water mark over the same span as <paramref name="PeakMb"/>, MiB: the tensors held at
/// once (parameters, gradients, activations, kernel scratch; AdamW's moments are arrays of their own), the same from run
/// to run where the resident set moves with what the allocators kept.
/// </param>
public sealed record TrainBenchResult(string Config, int Tokens, double Ms, double? PeerMs, double StepFlops,
    double PeakGflops, double PeakMb, double? PeerPeakMb, double LossDifference, double Ms1Thread, double TensorPeakMb)
{
    /// <summary>Model-FLOPs utilisation of our step against the measured FMA peak.</summary>
    public double Mfu => StepFlops / (Ms / 1e3) / (PeakGflops * 1e9);
    public double? PeerMfu => PeerMs is { } p ? StepFlops / (p / 1e3) / (PeakGflops * 1e9) : null;

    public double? Ratio => PeerMs is { } p ? p / Ms : null;

    /// <summary>How many times faster a step is on the run's threads than on one.</summary>
    public double Speedup => Ms1Thread / Ms;
    public double TokensPerSecond => Tokens / (Ms / 1e3);
    public double? PeerTokensPerSecond => PeerMs is { } p ? Tokens / (p / 1e3) : null;
}

/// <summary>
/// The training benchmark: one GPT training step (forward, cross-entropy, backward, gradient clipping to norm 1, AdamW)
/// in AttentionSharp and in TorchSharp with the same weights and batches, steps of the two timed alternately so that
/// noise from other processes hits both alike.
/// </summary>
/// <remarks>
/// <para>FLOPs per step: <see cref="TrainBenchConfig.StepFlops"/> (PaLM's model-FLOPs count, shared with the GPU
/// benchmark); MFU divides it by the step time and the measured FMA peak on the same threads.</para>
/// <para>Peak memory is the growth of the process's peak resident set from just before a library builds its model and
/// optimizer until its warm-up steps end (parameters, gradients, AdamW moments, activations, workspace), measured the
/// same way for both (see <see cref="ResidentMemory"/>).</para>
/// </remarks>
public static class TrainBenchmark
{
    const float LearningRate = 1e-4f, WeightDecay = 0.1f;

    public static int Run(TrainBenchOptions options, TextWriter output)
    {
        if (options.Validate() is { } problem) { Console.Error.WriteLine(problem); return 2; }
        int previousThreads = Kernels.Parallel.ThreadCount;
        Kernels.Parallel.ThreadCount = options.Threads;
        try
        {
            string? peerMissing = "not requested";
            bool peer = options.Peer && TorchPeer.TryLoad(options.Threads, out peerMissing);
            // The peak is measured around every configuration and the highest counts (PeakSeries), so the table is printed
            // once every configuration has run; a line after each one shows the progress.
            var peaks = new PeakSeries(options.Threads);
            var measured = peaks.Between(TrainBenchConfig.All.Where(c => options.Configs.Contains(c.Name)), config =>
            {
                var r = Measure(config, options, peer, output);
                output.WriteLine($"-- {r.Config}: {r.Ms:F1} ms a step{(r.PeerMs is { } pm ? $", TorchSharp {pm:F1} ms" : "")}");
                return r;
            });
            double peak = peaks.Highest;
            var results = measured.Select(r => r with { PeakGflops = peak }).ToList();
            output.WriteLine();
            output.WriteLine($"GPT training step (forward, backward, clip, AdamW), fp32, {options.Threads} thread(s); " +
                             $"median of {options.Steps} steps after ≥ {options.Warmups} warm-up steps and " +
                             $"≥ {options.WarmupSeconds:0.#} s; ratio = TorchSharp / ours");
            output.WriteLine($"Measured FMA peak: {peak:F1} GFLOPS, {peaks.Describe()}. " +
                             "MFU: (6·N + 12·L·C·T) FLOPs per token (N without wpe) / step time / peak");
            output.WriteLine(peer ? $"Peer: {TorchPeer.Description}" : $"Peer: none. {peerMissing}");
            output.WriteLine("Peak: growth of the peak resident set while building model + optimizer and running the warm-up " +
                             "steps, MiB");
            output.WriteLine($"Thread scaling: our median ms per step on 1 thread, and speedup = that / ms on {options.Threads}");
            output.WriteLine();
            output.WriteLine($"{"config",-12}{"ms",9}{"torch ms",10}{"ratio",7}{"tok/s",9}{"torch tok/s",12}{"MFU",7}" +
                             $"{"torch MFU",10}{"peak MiB",10}{"torch MiB",10}{"|Δloss|",9}{"1-thr ms",10}{"speedup",8}");
            foreach (var r in results)
                output.WriteLine($"{r.Config,-12}{r.Ms,9:F1}{BenchReport.Format(r.PeerMs, "F1"),10}" +
                                 $"{BenchReport.Format(r.Ratio, "F2"),7}{r.TokensPerSecond,9:F0}" +
                                 $"{BenchReport.Format(r.PeerTokensPerSecond, "F0"),12}{r.Mfu,7:P0}" +
                                 $"{BenchReport.Format(r.PeerMfu, "P0"),10}{r.PeakMb,10:F0}" +
                                 $"{BenchReport.Format(r.PeerPeakMb, "F0"),10}" +
                                 $"{BenchReport.Format(peer ? r.LossDifference : null, "E1"),9}" +
                                 $"{r.Ms1Thread,10:F1}{r.Speedup,8:F2}");
            output.WriteLine("Tensors held at once over the same span (the memory meter; AdamW's moments are arrays of " +
                             "their own), MiB: " + string.Join(", ", results.Select(r => $"{r.Config} {r.TensorPeakMb:F0}")));
            if (options.JsonPath is { } path)
            {
                BenchReport.WriteJson(path, new Dictionary<string, object?>
                {
                    ["peak_gflops"] = Math.Round(peak, 2),
                    ["peak_gflops_samples"] = peaks.Samples.Select(g => Math.Round(g, 2)).ToList(),
                    ["threads"] = options.Threads,
                    ["steps"] = options.Steps,
                    ["peer"] = peer ? TorchPeer.Description : null,
                    ["peer_missing"] = peer ? null : peerMissing,
                    ["flops"] = "(6*N + 12*L*C*T) per token, N = parameters without wpe",
                    ["memory"] = "peak resident-set growth over model + optimizer build and warm-up steps, MiB",
                    ["tensor_memory"] = "the most bytes of tensors held at once over the same span (MemoryMeter), MiB",
                    ["results"] = results.Select(r => new Dictionary<string, object?>
                    {
                        ["config"] = r.Config,
                        ["ms"] = Math.Round(r.Ms, 3),
                        ["peer_ms"] = r.PeerMs is { } p ? Math.Round(p, 3) : null,
                        ["ratio"] = r.Ratio is { } q ? Math.Round(q, 3) : null,
                        ["tokens_per_s"] = Math.Round(r.TokensPerSecond, 1),
                        ["peer_tokens_per_s"] = r.PeerTokensPerSecond is { } pt ? Math.Round(pt, 1) : null,
                        ["mfu"] = Math.Round(r.Mfu, 4),
                        ["peer_mfu"] = r.PeerMfu is { } pm ? Math.Round(pm, 4) : null,
                        ["peak_mb"] = Math.Round(r.PeakMb, 1),
                        ["tensor_peak_mb"] = Math.Round(r.TensorPeakMb, 1),
                        ["peer_peak_mb"] = r.PeerPeakMb is { } m ? Math.Round(m, 1) : null,
                        ["ms_1_thread"] = Math.Round(r.Ms1Thread, 3),
                        ["speedup"] = Math.Round(r.Speedup, 3),
                    }).ToList(),
                });
                output.WriteLine();
                output.WriteLine($"Wrote {path}");
            }
            return 0;
        }
        finally
        {
            Kernels.Parallel.ThreadCount = previousThreads;
        }
    }


    static TrainBenchResult Measure(TrainBenchConfig config, TrainBenchOptions options, bool peer, TextWriter output)
    {
        var rng = new Generator(1234);
        var batches = Enumerable.Range(0, 4).Select(_ => Batch(config, rng)).ToArray();
        Gpt? model; AdamW? optimizer = null; List<Tensor>? parameters = null;
        TorchGpt? theirs = null;
        var torchBatches = new List<(torch.Tensor X, torch.Tensor Y)>();
        try
        {
            float ourFirstLoss = 0;
            var baseKb = ResidentMemory.ResetPeak();
            long heldBefore = MemoryMeter.ResetPeak();
            model = new Gpt(config.Gpt, new Generator(42));
            parameters = model.Parameters().ToList();
            optimizer = new AdamW(parameters, LearningRate, weightDecay: WeightDecay);
            Gpt ourModel = model;
            AdamW ourOptimizer = optimizer;
            List<Tensor> ourParameters = parameters;
            int warmed = 0;
            BenchReport.WarmUp(() =>
            {
                float loss = OurStep(ourModel, ourOptimizer, ourParameters, config, batches[warmed % batches.Length]);
                if (warmed++ == 0) ourFirstLoss = loss;
            }, options.Warmups, options.WarmupSeconds);
            double peakMb = ResidentMemory.GrowthMb(baseKb);
            double tensorPeakMb = (MemoryMeter.PeakBytes - heldBefore) / (double)(1 << 20);

            double? peerPeakMb = null;
            float peerFirstLoss = float.NaN;
            if (peer)
            {
                // The peer starts from our weights before our warm-up: rebuild ours' initial state by seed.
                var initial = new Gpt(config.Gpt, new Generator(42));
                foreach (var (x, y) in batches)
                    torchBatches.Add((torch.tensor(x.Select(v => (long)v).ToArray(), [config.Batch, config.Context]),
                                      torch.tensor(y.Select(v => (long)v).ToArray(), [config.Batch, config.Context])));
                baseKb = ResidentMemory.ResetPeak();
                theirs = new TorchGpt(initial, LearningRate, WeightDecay);
                foreach (var w in initial.Parameters()) w.Dispose();
                var peerModel = theirs;
                warmed = 0;
                BenchReport.WarmUp(() =>
                {
                    var (x, y) = torchBatches[warmed % batches.Length];
                    float loss = peerModel.Step(x, y);
                    if (warmed++ == 0) peerFirstLoss = loss;
                }, options.Warmups, options.WarmupSeconds);
                peerPeakMb = ResidentMemory.GrowthMb(baseKb);
            }

            // Thread scaling: the same steps on one thread, timed in the same loop so that whatever else the machine is
            // doing hits both alike; warmed up first (the single-threaded code paths are compiled and tiered up too).
            if (options.Threads > 1)
                OnThreads(1, () =>
                {
                    warmed = 0;
                    BenchReport.WarmUp(() => OurStep(ourModel, ourOptimizer, ourParameters, config,
                        batches[warmed++ % batches.Length]), 1, 1);
                    return 0;
                });
            var ours = new List<double>(); var peers = new List<double>(); var single = new List<double>();
            var phases = new double[3];
            if (options.Profile) OpProfiler.Reset();
            for (int i = 0; i < options.Steps; i++)
            {
                var batch = batches[i % batches.Length];
                OpProfiler.Enabled = options.Profile;
                ours.Add(BenchReport.SecondsAfterPause(
                    () => OurStep(model, optimizer, parameters, config, batch, options.Profile ? phases : null)));
                OpProfiler.Enabled = false;
                if (theirs != null)
                {
                    var tb = torchBatches[i % batches.Length];
                    peers.Add(BenchReport.SecondsAfterPause(() => theirs.Step(tb.X, tb.Y)));
                }
                if (options.Threads > 1)
                    single.Add(OnThreads(1, () => BenchReport.SecondsAfterPause(
                        () => OurStep(model, optimizer, parameters, config, batch))));
            }
            if (options.Profile) PrintProfile(config, options.Steps, phases, BenchReport.Median([.. ours]), output);
            double ms1Thread = BenchReport.Median(options.Threads == 1 ? ours : single) * 1e3;

            long n = model.ParameterCount() - (model.Wpe?.Weight.Count ?? 0);
            double flops = config.StepFlops(n);
            double ms = BenchReport.Median(ours) * 1e3;
            double? peerMs = theirs != null ? BenchReport.Median(peers) * 1e3 : null;
            return new TrainBenchResult(config.Name, config.TokensPerStep, ms, peerMs, flops, PeakGflops: double.NaN,
                peakMb, peerPeakMb, Math.Abs(ourFirstLoss - peerFirstLoss), ms1Thread, tensorPeakMb);
        }
        finally
        {
            OpProfiler.Enabled = false;
            if (parameters != null) foreach (var p in parameters) { p.Grad?.Dispose(); p.Dispose(); }
            theirs?.Dispose();
            foreach (var (x, y) in torchBatches) { x.Dispose(); y.Dispose(); }
        }
    }

    /// <summary>Runs <paramref name="run"/> with the kernels on <paramref name="threads"/> threads.</summary>
    static T OnThreads<T>(int threads, Func<T> run)
    {
        int previous = Kernels.Parallel.ThreadCount;
        Kernels.Parallel.ThreadCount = threads;
        try { return run(); }
        finally { Kernels.Parallel.ThreadCount = previous; }
    }

    /// <summary>Random (x, y) token ids, (B, T) each.</summary>
    static (int[] X, int[] Y) Batch(TrainBenchConfig c, Generator rng)
    {
        var x = new int[c.TokensPerStep]; var y = new int[c.TokensPerStep];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (int)(rng.NextUInt64() % (ulong)c.Vocab);
            y[i] = (int)(rng.NextUInt64() % (ulong)c.Vocab);
        }
        return (x, y);
    }

    /// <summary>
    /// One step as <see cref="Training.Trainer.TrainStep"/> takes it (TorchSharp's peer clips with clip_grad_norm_ before
    /// its AdamW step); <paramref name="phases"/> (when given) adds seconds of forward+backward, clipping and AdamW.
    /// </summary>
    static float OurStep(Gpt model, AdamW optimizer, List<Tensor> parameters, TrainBenchConfig c, (int[] X, int[] Y) batch,
        double[]? phases = null)
    {
        long t0 = Stopwatch.GetTimestamp();
        model.Train();
        optimizer.ZeroGrad();
        float loss;
        using (TensorScope.Begin())
        {
            OpProfiler.Mark();
            var logits = model.Forward(batch.X, c.Batch, c.Context);         // (B, T, V)
            var l = model.Loss(logits, batch.Y);
            l.Backward();
            loss = l.Item();
        }
        long t1 = Stopwatch.GetTimestamp();
        var (_, clip) = GradientClipping.ClipCoefficient(parameters, 1f);
        long t2 = Stopwatch.GetTimestamp();
        optimizer.Step(clip);                                                 // clipping folded into the AdamW pass
        long t3 = Stopwatch.GetTimestamp();
        if (phases != null)
        {
            phases[0] += (t1 - t0) / (double)Stopwatch.Frequency;
            phases[1] += (t2 - t1) / (double)Stopwatch.Frequency;
            phases[2] += (t3 - t2) / (double)Stopwatch.Frequency;
        }
        return loss;
    }

    static void PrintProfile(TrainBenchConfig config, int steps, double[] phases, double medianSeconds, TextWriter output)
    {
        output.WriteLine($"-- {config.Name}: our time per step by operation kind (mean over {steps} steps; " +
                         $"median step {medianSeconds * 1e3:F1} ms)");
        var rows = OpProfiler.Snapshot()
            .Select(e => (Label: $"{e.Name} ({e.Pass})", Ms: e.Seconds / steps * 1e3, Calls: e.Calls / steps)).ToList();
        rows.Add(("gradient norm", phases[1] / steps * 1e3, 1));
        rows.Add(("AdamW (with clipping)", phases[2] / steps * 1e3, 1));
        double sum = rows.Sum(r => r.Ms);
        double total = (phases[0] + phases[1] + phases[2]) / steps * 1e3;
        foreach (var (label, ms, calls) in rows.OrderByDescending(r => r.Ms))
            output.WriteLine($"   {label,-28}{ms,9:F2} ms{ms / total,7:P0}{calls,6} calls");
        output.WriteLine($"   {"(other: views, scope, engine)",-28}{total - sum,9:F2} ms{(total - sum) / total,7:P0}");
    }
}
