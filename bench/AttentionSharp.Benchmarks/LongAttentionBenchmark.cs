namespace AttentionSharp.Benchmarks;

/// <summary>What <see cref="LongAttentionBenchmark.Run"/> measures and where it reports.</summary>
public sealed record LongAttentionBenchOptions
{
    /// <summary>Sequence lengths T (Tq = Tk): 1k, 2k, … 64k.</summary>
    public IReadOnlyList<int> Lengths { get; init; } = [1024, 2048, 4096, 8192, 16384, 32768, 65536];

    /// <summary>B.</summary>
    public int Batch { get; init; } = 1;

    /// <summary>NH.</summary>
    public int Heads { get; init; } = 4;

    /// <summary>HS.</summary>
    public int HeadSize { get; init; } = 64;

    /// <summary>w of the sliding window.</summary>
    public int Window { get; init; } = 512;

    /// <summary>
    /// The plain path runs while the (B, NH, T, T) weights it keeps fit in this many bytes; beyond, its rows read "does not
    /// fit". 1 GiB: with the backward pass's T² scratch per thread that is about 2 GiB of resident memory at the cap.
    /// </summary>
    public long PlainCapBytes { get; init; } = 1L << 30;

    /// <summary>Threads; default <see cref="Kernels.Parallel.ThreadCount"/>.</summary>
    public int Threads { get; init; } = Kernels.Parallel.ThreadCount;

    /// <summary>
    /// A case whose first run takes longer than this is timed by one more run (warm); longer than ten times this, by the
    /// first run alone (warming up no longer matters next to it).
    /// </summary>
    public double SingleRunSeconds { get; init; } = 1.0;

    /// <summary>Where to write the JSON report, if anywhere.</summary>
    public string? JsonPath { get; init; }

    /// <summary>Checks the options; returns a message naming the first bad one, or null.</summary>
    public string? Validate() =>
        Threads < 1 ? $"--threads must be at least 1, got {Threads}."
        : Lengths.Count == 0 || Lengths.Any(t => t < 1) ? "Every sequence length must be positive."
        : Batch < 1 || Heads < 1 || HeadSize < 1 || Window < 1 ? "B, NH, HS and the window must be positive."
        : null;
}

/// <summary>One method at one length; null figures where the method does not fit.</summary>
public sealed record LongAttentionResult(string Method, int T, double? ForwardMs, double? BothMs, double? ForwardPeakMb,
    double? BothPeakMb);

/// <summary>A least-squares fit of log y = k·log T + c: the exponent k and the number of points it rests on.</summary>
public sealed record ScalingFit(double? Exponent, int Points);

/// <summary>
/// The long-context benchmark: causal attention over T = 1k … 64k for the plain path (while its T×T weights fit),
/// FlashAttention, the sliding window (flash tiles inside the band only) and linear attention; forward and forward +
/// backward time and peak memory, and the exponent k of time ∝ T^k and memory ∝ T^k fitted over the lengths measured.
/// </summary>
/// <remarks>
/// Memory is <see cref="MemoryMeter"/>'s high-water mark during one run above what was held before it: every tensor the
/// run creates (outputs, the state saved for backward, the input gradients, which are dropped before the run) and the
/// attention kernels' native scratch; the inputs themselves are not counted. Unlike the resident set it does not depend on
/// what the allocators kept mapped from earlier runs, so small figures are exact too.
/// </remarks>
public static class LongAttentionBenchmark
{
    static readonly string[] Methods = ["plain", "flash", "sliding", "linear"];

    /// <summary>Runs the benchmark, prints the table and the fits to <paramref name="output"/>; returns the exit code.</summary>
    public static int Run(LongAttentionBenchOptions options, TextWriter output)
    {
        if (options.Validate() is { } problem) { Console.Error.WriteLine(problem); return 2; }
        int previousThreads = Kernels.Parallel.ThreadCount;
        Kernels.Parallel.ThreadCount = options.Threads;
        try
        {
            output.WriteLine($"Long-context attention, fp32, causal, B={options.Batch} NH={options.Heads} " +
                             $"HS={options.HeadSize}, {options.Threads} thread(s); sliding window w={options.Window}; plain " +
                             $"runs while its (B, NH, T, T) weights fit in {options.PlainCapBytes >> 20} MiB.");
            output.WriteLine("ms: median of warm runs (one warm run when a run takes over a second; the first run alone " +
                             "past ten). Peak: most MiB held at once by the run's tensors and kernel scratch, inputs excluded.");
            output.WriteLine();
            output.WriteLine($"{"method",-9}{"T",7}{"fwd ms",12}{"fwd+bwd ms",13}{"peak fwd",11}{"peak f+b",11}");
            var results = new List<LongAttentionResult>();
            foreach (int t in options.Lengths)
                foreach (var method in Methods)
                {
                    var r = Measure(method, t, options);
                    results.Add(r);
                    output.WriteLine(r.ForwardMs is null
                        ? $"{r.Method,-9}{r.T,7}   does not fit: its weights would take {WeightBytes(t, options) >> 20} MiB"
                        : $"{r.Method,-9}{r.T,7}{r.ForwardMs,12:F1}{r.BothMs,13:F1}{r.ForwardPeakMb,11:F0}{r.BothPeakMb,11:F0}");
                }
            var fits = Methods.ToDictionary(m => m, m => Fits(results.Where(r => r.Method == m).ToList()));
            output.WriteLine();
            output.WriteLine("Scaling exponent k (least squares of log y = k·log T + c over the lengths measured):");
            output.WriteLine($"{"method",-9}{"time fwd",10}{"time f+b",10}{"mem fwd",10}{"mem f+b",10}   lengths");
            foreach (var m in Methods)
            {
                var f = fits[m];
                var lengths = results.Where(r => r.Method == m && r.ForwardMs is not null).Select(r => r.T).ToList();
                string span = lengths.Count == 0 ? "none" : $"{lengths.Min()}–{lengths.Max()}";
                output.WriteLine($"{m,-9}{Cell(f.TimeForward),10}{Cell(f.TimeBoth),10}{Cell(f.MemoryForward),10}" +
                                 $"{Cell(f.MemoryBoth),10}   {span}");
            }
            if (options.JsonPath is { } path)
            {
                WriteJson(path, options, results, fits);
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

    static long WeightBytes(int t, LongAttentionBenchOptions o) => (long)o.Batch * o.Heads * t * t * sizeof(float);

    static string Cell(ScalingFit f) => f.Exponent is { } k ? $"{k:F2}" : "-";

    /// <summary>The forward and forward + backward figures of one method at one length.</summary>
    static LongAttentionResult Measure(string method, int t, LongAttentionBenchOptions options)
    {
        if (method == "plain" && WeightBytes(t, options) > options.PlainCapBytes) return new(method, t, null, null, null, null);
        int b = options.Batch, nh = options.Heads, hs = options.HeadSize;
        var rng = new Generator((ulong)t);
        var q = Tensor.Normal(rng, 0f, 1f, b, nh, t, hs).DetachFromScope();
        var k = Tensor.Normal(rng, 0f, 1f, b, nh, t, hs).DetachFromScope();
        var v = Tensor.Normal(rng, 0f, 1f, b, nh, t, hs).DetachFromScope();
        var dy = Tensor.Normal(rng, 0f, 1f, b, nh, t, hs).DetachFromScope();
        Tensor[] inputs = [q, k, v];
        foreach (var x in inputs) x.RequiresGrad = true;
        Func<Tensor> attention = method switch
        {
            "linear" => () => Tensor.LinearAttention(q, k, v, causal: true),
            _ => () => Tensor.ScaledDotProductAttention(q, k, v, new AttentionOptions
            {
                Causal = true,
                Window = method == "sliding" ? options.Window : 0,
                Implementation = method == "plain" ? AttentionImplementation.Plain : AttentionImplementation.Flash,
            }),
        };
        try
        {
            var (forwardMs, forwardMb) = TimeAndPeak(
                () => AttentionBenchmark.RunAttention(attention, inputs, dy, backward: false), inputs, options);
            var (bothMs, bothMb) = TimeAndPeak(
                () => AttentionBenchmark.RunAttention(attention, inputs, dy, backward: true), inputs, options);
            return new(method, t, forwardMs, bothMs, forwardMb, bothMb);
        }
        finally
        {
            foreach (var x in inputs) { x.Grad?.Dispose(); x.Grad = null; x.Dispose(); }
            dy.Dispose();
        }
    }

    /// <summary>
    /// Median ms and peak MiB of <paramref name="run"/>. The first run starts without gradient buffers and gives the peak.
    /// When it took over ten times <see cref="LongAttentionBenchOptions.SingleRunSeconds"/> it gives the time too; over
    /// once that, one warm run gives it; else warm runs follow (at least 3, until a second has passed) and their median is
    /// the time.
    /// </summary>
    static (double Ms, double PeakMb) TimeAndPeak(Action run, Tensor[] inputs, LongAttentionBenchOptions options)
    {
        foreach (var x in inputs) { x.Grad?.Dispose(); x.Grad = null; }
        long before = MemoryMeter.ResetPeak();
        double seconds = BenchReport.Seconds(run);
        double peak = (MemoryMeter.PeakBytes - before) / (double)(1 << 20);
        if (seconds > 10 * options.SingleRunSeconds) return (seconds * 1e3, peak);
        if (seconds > options.SingleRunSeconds) return (BenchReport.Seconds(run) * 1e3, peak);
        var times = new List<double>();
        double total = 0;
        while (times.Count < 3 || (total < 1.0 && times.Count < 50))
        {
            double s = BenchReport.Seconds(run);
            times.Add(s);
            total += s;
        }
        return (BenchReport.Median(times) * 1e3, peak);
    }

    /// <summary>The exponents of one method's forward and forward + backward time and memory.</summary>
    public sealed record MethodFits(ScalingFit TimeForward, ScalingFit TimeBoth, ScalingFit MemoryForward, ScalingFit MemoryBoth);

    static MethodFits Fits(List<LongAttentionResult> rows) => new(
        Fit(rows.Select(r => (r.T, r.ForwardMs))),
        Fit(rows.Select(r => (r.T, r.BothMs))),
        Fit(rows.Select(r => (r.T, r.ForwardPeakMb))),
        Fit(rows.Select(r => (r.T, r.BothPeakMb))));

    /// <summary>Least squares of log y on log T over the points with a positive finite y; needs at least two lengths.</summary>
    public static ScalingFit Fit(IEnumerable<(int T, double? Y)> points)
    {
        var xy = points.Where(p => p.Y is { } y && y > 0 && double.IsFinite(y))
            .Select(p => (X: Math.Log(p.T), Y: Math.Log(p.Y!.Value))).ToList();
        if (xy.Select(p => p.X).Distinct().Count() < 2) return new ScalingFit(null, xy.Count);
        double mx = xy.Average(p => p.X), my = xy.Average(p => p.Y);
        double sxy = xy.Sum(p => (p.X - mx) * (p.Y - my)), sxx = xy.Sum(p => (p.X - mx) * (p.X - mx));
        return new ScalingFit(sxy / sxx, xy.Count);
    }

    static double? Round(double? x, int digits) => x is { } v && double.IsFinite(v) ? Math.Round(v, digits) : null;

    static void WriteJson(string path, LongAttentionBenchOptions options, List<LongAttentionResult> results,
        Dictionary<string, MethodFits> fits)
    {
        static object FitJson(ScalingFit f) =>
            new Dictionary<string, object?> { ["exponent"] = Round(f.Exponent, 3), ["points"] = f.Points };
        var report = new Dictionary<string, object?>
        {
            ["batch"] = options.Batch,
            ["heads"] = options.Heads,
            ["head_size"] = options.HeadSize,
            ["causal"] = true,
            ["window"] = options.Window,
            ["threads"] = options.Threads,
            ["plain_cap_mib"] = options.PlainCapBytes >> 20,
            ["memory"] =
                "most MiB held at once by one run's tensors and attention-kernel scratch (inputs excluded, gradients included)",
            ["results"] = results.Select(r => new Dictionary<string, object?>
            {
                ["method"] = r.Method,
                ["T"] = r.T,
                ["fits"] = r.ForwardMs is not null,
                ["fwd_ms"] = Round(r.ForwardMs, 3),
                ["fwdbwd_ms"] = Round(r.BothMs, 3),
                ["fwd_peak_mib"] = Round(r.ForwardPeakMb, 1),
                ["fwdbwd_peak_mib"] = Round(r.BothPeakMb, 1),
            }).ToList(),
            ["scaling"] = fits.ToDictionary(f => f.Key, f => new Dictionary<string, object?>
            {
                ["time_fwd"] = FitJson(f.Value.TimeForward),
                ["time_fwdbwd"] = FitJson(f.Value.TimeBoth),
                ["memory_fwd"] = FitJson(f.Value.MemoryForward),
                ["memory_fwdbwd"] = FitJson(f.Value.MemoryBoth),
            }),
        };
        BenchReport.WriteJson(path, report);
    }
}
