using System.Diagnostics;
using AttentionSharp.Autograd;
using TorchSharp;

namespace AttentionSharp.Benchmarks;

/// <summary>What <see cref="AttentionBenchmark.Run"/> measures and where it reports.</summary>
public sealed record AttentionBenchOptions
{
    /// <summary>Sequence lengths T (Tq = Tk).</summary>
    public IReadOnlyList<int> Lengths { get; init; } = [256, 1024, 4096];

    /// <summary>B.</summary>
    public int Batch { get; init; } = 1;

    /// <summary>NH.</summary>
    public int Heads { get; init; } = 12;

    /// <summary>HS.</summary>
    public int HeadSize { get; init; } = 64;

    /// <summary>Threads for both libraries; default <see cref="Kernels.Parallel.ThreadCount"/>.</summary>
    public int Threads { get; init; } = Kernels.Parallel.ThreadCount;

    /// <summary>Each case is timed at least this many times (more while under a second in all); the median counts.</summary>
    public int Repetitions { get; init; } = 3;

    /// <summary>Also time TorchSharp; off, or unloadable, leaves its columns empty.</summary>
    public bool Peer { get; init; } = true;

    /// <summary>Where to write the JSON report, if anywhere.</summary>
    public string? JsonPath { get; init; }

    /// <summary>Checks the options; returns a message naming the first bad one, or null.</summary>
    public string? Validate() =>
        Threads < 1 ? $"--threads must be at least 1, got {Threads}."
        : Repetitions < 1 ? $"Repetitions must be at least 1, got {Repetitions}."
        : Lengths.Count == 0 || Lengths.Any(t => t < 1) ? "Every sequence length must be positive."
        : Batch < 1 || Heads < 1 || HeadSize < 1
            ? $"--batch, --heads and --head-size must be positive; got {Batch}, {Heads} and {HeadSize}."
        : null;
}

/// <summary>One row of the report: one length, mask and pass.</summary>
/// <param name="Ms">Flash, median milliseconds.</param>
/// <param name="PeakMb">Peak resident-memory growth of one run, in MiB: flash, plain, TorchSharp.</param>
public sealed record AttentionBenchResult(int T, bool Causal, string Pass, double Ms, double PlainMs, double? PeerMs,
    double FlashPeakMb, double PlainPeakMb, double? PeerPeakMb, double MaxDifference)
{
    public double? Ratio => PeerMs is { } p ? p / Ms : null;
}

/// <summary>
/// The attention benchmark: our flash and plain paths and TorchSharp's
/// <c>torch.nn.functional.scaled_dot_product_attention</c>, forward (no gradients kept) and forward + backward, on
/// (B, NH, T, HS) inputs, timed alternately so that noise from other processes hits all alike.
/// </summary>
/// <remarks>
/// Memory is the growth of the process's peak resident set (VmHWM, reset through /proc/self/clear_refs) during one run
/// after our tensor pool has been emptied and the GC and the C heap have returned what they could: what the run itself had to touch,
/// native and managed, for either library. It reads 0 where the kernel reused memory that stayed mapped.
/// </remarks>
public static partial class AttentionBenchmark
{
    /// <summary>Runs the benchmark, prints the table to <paramref name="output"/>; returns the process exit code.</summary>
    public static int Run(AttentionBenchOptions options, TextWriter output)
    {
        if (options.Validate() is { } problem) { Console.Error.WriteLine(problem); return 2; }
        int previousThreads = Kernels.Parallel.ThreadCount;
        Kernels.Parallel.ThreadCount = options.Threads;
        try
        {
            string? peerMissing = "not requested";
            bool peer = options.Peer && TorchPeer.TryLoad(options.Threads, out peerMissing);
            output.WriteLine($"Attention fp32, B={options.Batch} NH={options.Heads} HS={options.HeadSize}, {options.Threads} thread(s); median ms; ratio = TorchSharp / flash");
            output.WriteLine(peer ? $"Peer: {TorchPeer.Description}, scaled_dot_product_attention" : $"Peer: none. {peerMissing}");
            output.WriteLine("Peak: growth of the peak resident set during one run, MiB (flash / plain / TorchSharp)");
            output.WriteLine();
            output.WriteLine($"{"T",6}{"causal",8}{"pass",8}{"flash ms",11}{"plain ms",11}{"torch ms",11}{"ratio",8}{"peak MiB f/p/t",22}{"max |Δ|",10}");
            var results = new List<AttentionBenchResult>();
            foreach (int t in options.Lengths)
                foreach (bool causal in new[] { true, false })
                    foreach (var r in Measure(t, causal, options, peer))
                    {
                        results.Add(r);
                        string peak = $"{r.FlashPeakMb:F0}/{r.PlainPeakMb:F0}/{BenchReport.Format(r.PeerPeakMb, "F0")}";
                        output.WriteLine($"{r.T,6}{(r.Causal ? "yes" : "no"),8}{r.Pass,8}{r.Ms,11:F2}{r.PlainMs,11:F2}{BenchReport.Format(r.PeerMs, "F2"),11}{BenchReport.Format(r.Ratio, "F2"),8}{peak,22}{BenchReport.Format(peer ? r.MaxDifference : null, "E1"),10}");
                    }
            if (options.JsonPath is { } path)
            {
                WriteJson(path, options, peer ? TorchPeer.Description : null, peerMissing, results);
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

    /// <summary>The forward and the forward + backward rows for one length and mask.</summary>
    static IEnumerable<AttentionBenchResult> Measure(int t, bool causal, AttentionBenchOptions options, bool peer)
    {
        int b = options.Batch, nh = options.Heads, hs = options.HeadSize;
        var rng = new Generator((ulong)t * 2 + (causal ? 1UL : 0));
        var q = Tensor.Normal(rng, 0f, 1f, b, nh, t, hs).DetachFromScope();
        var k = Tensor.Normal(rng, 0f, 1f, b, nh, t, hs).DetachFromScope();
        var v = Tensor.Normal(rng, 0f, 1f, b, nh, t, hs).DetachFromScope();
        var dy = Tensor.Normal(rng, 0f, 1f, b, nh, t, hs).DetachFromScope();
        foreach (var x in new[] { q, k, v }) x.RequiresGrad = true;
        torch.Tensor? tq = null, tk = null, tv = null, tdy = null;
        if (peer)
        {
            long[] shape = [b, nh, t, hs];
            tq = torch.tensor(q.ToArray(), shape).requires_grad_(true);
            tk = torch.tensor(k.ToArray(), shape).requires_grad_(true);
            tv = torch.tensor(v.ToArray(), shape).requires_grad_(true);
            tdy = torch.tensor(dy.ToArray(), shape);
        }
        try
        {
            var flashOptions = new AttentionOptions { Causal = causal, Implementation = AttentionImplementation.Flash };
            var plainOptions = flashOptions with { Implementation = AttentionImplementation.Plain };
            foreach (bool backward in new[] { false, true })
            {
                Action flash = () => Ours(q, k, v, dy, flashOptions, backward);
                Action plain = () => Ours(q, k, v, dy, plainOptions, backward);
                Action? theirs = peer ? () => Theirs(tq!, tk!, tv!, tdy!, causal, backward) : null;
                var (ms, plainMs, peerMs) = Time(flash, plain, theirs, options.Repetitions);
                double difference = peer ? Difference(q, k, v, flashOptions, tq!, tk!, tv!, causal) : 0;
                yield return new AttentionBenchResult(t, causal, backward ? "fwdbwd" : "fwd", ms, plainMs, peerMs,
                    ResidentMemory.PeakGrowthMb(flash), ResidentMemory.PeakGrowthMb(plain), theirs is null ? null : ResidentMemory.PeakGrowthMb(theirs), difference);
            }
        }
        finally
        {
            q.Dispose(); k.Dispose(); v.Dispose(); dy.Dispose();
            foreach (var x in new[] { q, k, v }) x.Grad?.Dispose();
            tq?.Dispose(); tk?.Dispose(); tv?.Dispose(); tdy?.Dispose();
        }
    }

    internal static void Ours(Tensor q, Tensor k, Tensor v, Tensor dy, AttentionOptions options, bool backward) =>
        RunAttention(() => Tensor.ScaledDotProductAttention(q, k, v, options), [q, k, v], dy, backward);

    /// <summary>
    /// One call of <paramref name="attention"/> in a tensor scope: under NoGrad (forward), or with the gradients of
    /// <paramref name="inputs"/> zeroed and <paramref name="dy"/> sent back through it (forward + backward).
    /// </summary>
    internal static void RunAttention(Func<Tensor> attention, Tensor[] inputs, Tensor dy, bool backward)
    {
        if (!backward)
        {
            using (GradMode.NoGrad())
            using (TensorScope.Begin())
                attention();
            return;
        }
        foreach (var x in inputs) x.ZeroGrad();
        using (TensorScope.Begin())
            attention().Backward(dy);
    }

    static void Theirs(torch.Tensor q, torch.Tensor k, torch.Tensor v, torch.Tensor dy, bool causal, bool backward)
    {
        using var scope = torch.NewDisposeScope();
        if (!backward)
        {
            using (torch.no_grad()) torch.nn.functional.scaled_dot_product_attention(q, k, v, is_casual: causal);
            return;
        }
        foreach (var x in new[] { q, k, v }) x.grad?.zero_();
        // TorchSharp 0.107 spells the causal flag is_casual.
        torch.nn.functional.scaled_dot_product_attention(q, k, v, is_casual: causal).backward([dy]);
    }

    /// <summary>
    /// Median seconds → ms of each, run alternately: each warmed up (<see cref="BenchReport.WarmUp"/>), then rounds until
    /// enough time has passed.
    /// </summary>
    static (double Flash, double Plain, double? Peer) Time(Action flash, Action plain, Action? peer, int minRounds)
    {
        BenchReport.WarmUp(flash, 1); BenchReport.WarmUp(plain, 1);
        if (peer != null) BenchReport.WarmUp(peer, 1);
        var f = new List<double>(); var p = new List<double>(); var t = new List<double>();
        var total = Stopwatch.StartNew();
        for (int round = 0; round < minRounds || (total.Elapsed.TotalSeconds < 1.0 && round < 50); round++)
        {
            f.Add(BenchReport.SecondsAfterPause(flash));
            p.Add(BenchReport.SecondsAfterPause(plain));
            if (peer != null) t.Add(BenchReport.SecondsAfterPause(peer));
        }
        return (BenchReport.Median(f) * 1e3, BenchReport.Median(p) * 1e3, peer != null ? BenchReport.Median(t) * 1e3 : null);
    }

    /// <summary>max |ours − theirs| of the forward outputs: a check that both computed the same attention.</summary>
    static double Difference(Tensor q, Tensor k, Tensor v, AttentionOptions options, torch.Tensor tq, torch.Tensor tk,
        torch.Tensor tv, bool causal)
    {
        using var scope = torch.NewDisposeScope();
        using (GradMode.NoGrad())
        using (TensorScope.Begin())
        using (torch.no_grad())
        {
            var ours = Tensor.ScaledDotProductAttention(q, k, v, options).ToArray();
            var theirs = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_casual: causal).data<float>().ToArray();
            double max = 0;
            for (int i = 0; i < ours.Length; i++) max = Math.Max(max, Math.Abs((double)ours[i] - theirs[i]));
            return max;
        }
    }

    static void WriteJson(string path, AttentionBenchOptions options, string? peer, string? peerMissing, List<AttentionBenchResult> results)
    {
        var report = new Dictionary<string, object?>
        {
            ["batch"] = options.Batch,
            ["heads"] = options.Heads,
            ["head_size"] = options.HeadSize,
            ["threads"] = options.Threads,
            ["peer"] = peer,
            ["peer_missing"] = peer == null ? peerMissing : null,
            ["memory"] = "peak resident-set growth of one run, MiB",
            ["results"] = results.Select(r => new Dictionary<string, object?>
            {
                ["T"] = r.T,
                ["causal"] = r.Causal,
                ["pass"] = r.Pass,
                ["ms"] = Math.Round(r.Ms, 3),
                ["plain_ms"] = Math.Round(r.PlainMs, 3),
                ["peer_ms"] = r.PeerMs is { } p ? Math.Round(p, 3) : null,
                ["ratio"] = r.Ratio is { } q ? Math.Round(q, 3) : null,
                ["peak_mib"] = Math.Round(r.FlashPeakMb, 1),
                ["plain_peak_mib"] = Math.Round(r.PlainPeakMb, 1),
                ["peer_peak_mib"] = r.PeerPeakMb is { } m ? Math.Round(m, 1) : null,
            }).ToList(),
        };
        BenchReport.WriteJson(path, report);
    }
}
