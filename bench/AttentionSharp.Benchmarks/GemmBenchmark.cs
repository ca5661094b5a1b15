using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using AttentionSharp.Kernels;
using TorchSharp;

namespace AttentionSharp.Benchmarks;

/// <summary>What <see cref="GemmBenchmark.Run"/> measures and where it reports.</summary>
public sealed record GemmBenchOptions
{
    /// <summary>The shapes, as (M, K, N): C(M×N) = A(M×K) · B(K×N).</summary>
    public IReadOnlyList<(int M, int K, int N)> Shapes { get; init; } =
        [(512, 768, 768), (4096, 768, 3072), (4096, 3072, 768), (2048, 2048, 2048), (256, 768, 50304)];

    /// <summary>
    /// C = Aᵀ·B with A stored (K × M), the layout of a weight gradient dW = dYᵀ·X; otherwise C = A·B.
    /// </summary>
    public bool TransposeA { get; init; }

    /// <summary>
    /// C = A·Bᵀ with B stored (N × K), the layout of a Linear layer's forward pass x·Wᵀ; with <see cref="TransposeA"/>,
    /// C = Aᵀ·Bᵀ.
    /// </summary>
    public bool TransposeB { get; init; }

    /// <summary>Threads for both libraries; default <see cref="Kernels.Parallel.ThreadCount"/>.</summary>
    public int Threads { get; init; } = Kernels.Parallel.ThreadCount;

    /// <summary>
    /// Timed runs per shape and library (more for small shapes, so each is timed for a while); the median counts.
    /// </summary>
    public int Repetitions { get; init; } = 9;

    /// <summary>
    /// Untimed runs first, at least this many and for at least a quarter of a second, until the JIT is quiet
    /// (<see cref="BenchReport.WarmUp"/>), so code is compiled, buffers exist and caches are warm.
    /// </summary>
    public int Warmups { get; init; } = 2;

    /// <summary>Also time TorchSharp; off, or unloadable, leaves its columns empty.</summary>
    public bool Peer { get; init; } = true;

    /// <summary>Where to write the JSON report, if anywhere.</summary>
    public string? JsonPath { get; init; }

    /// <summary>Checks the options; returns a message naming the first bad one, or null.</summary>
    public string? Validate() =>
        Threads < 1 ? $"--threads must be at least 1, got {Threads}."
        : Repetitions < 1 ? $"Repetitions must be at least 1, got {Repetitions}."
        : Warmups < 0 ? $"Warmups must be non-negative, got {Warmups}."
        : Shapes.Count == 0 ? "At least one shape is needed."
        : Shapes.Any(s => s.M < 1 || s.K < 1 || s.N < 1) ? "Every shape needs positive M, K and N."
        : null;
}

/// <summary>One row of the report.</summary>
public sealed record GemmBenchResult(int M, int K, int N, double Gflops, double? PeerGflops, double PeakGflops,
    double MaxRelativeDifference)
{
    public double PercentOfPeak => 100 * Gflops / PeakGflops;

    public string Shape => $"{M}x{K}x{N}";
    public double? Ratio => PeerGflops is > 0 ? Gflops / PeerGflops : null;
}

/// <summary>
/// The GEMM benchmark: for each shape,
/// <see cref="Gemm.Multiply(Transpose, Transpose, int, int, int, float*, int, float*, int, float*, int, bool, float*)"/>
/// against TorchSharp's <c>addmm_</c> (C = A·B into an existing C, so neither side allocates), each timed as the median
/// of several runs after a warm-up, with the machine's measured FMA peak as the yardstick.
/// </summary>
public static unsafe class GemmBenchmark
{
    /// <summary>Runs the benchmark, prints the table to <paramref name="output"/>; returns the process exit code.</summary>
    public static int Run(GemmBenchOptions options, TextWriter output)
    {
        if (options.Validate() is { } problem) { Console.Error.WriteLine(problem); return 2; }
        int previousThreads = Kernels.Parallel.ThreadCount;
        Kernels.Parallel.ThreadCount = options.Threads;
        try
        {
            string? peerMissing = "not requested";
            bool peer = options.Peer && TorchPeer.TryLoad(options.Threads, out peerMissing);
            // The peak is measured around every shape and the highest counts (PeakSeries), so the table follows the runs.
            var peaks = new PeakSeries(options.Threads);
            var measured = peaks.Between(options.Shapes, shape => Measure(shape.M, shape.K, shape.N, options, peer));
            double peak = peaks.Highest;
            var results = measured.Select(r => r with { PeakGflops = peak }).ToList();
            output.WriteLine($"GEMM fp32, C = {Formula(options)}, {options.Threads} thread(s), {KernelName} micro-kernel");
            output.WriteLine($"Measured FMA peak: {peak:F1} GFLOPS ({PeakFlops.WidthName} register loop on {options.Threads} " +
                             $"thread(s); {peaks.Describe()})");
            output.WriteLine(peer ? $"Peer: {TorchPeer.Description}" : $"Peer: none. {peerMissing}");
            output.WriteLine();
            output.WriteLine($"{"shape (MxKxN)",-18}{"ours GFLOPS",12}{"TorchSharp",12}{"ratio",8}{"% of peak",11}" +
                             $"{"max rel diff",14}");
            foreach (var r in results)
                output.WriteLine($"{r.Shape,-18}{r.Gflops,12:F1}{BenchReport.Format(r.PeerGflops, "F1"),12}" +
                                 $"{BenchReport.Format(r.Ratio, "F2"),8}{r.PercentOfPeak,10:F1}%" +
                                 $"{BenchReport.Format(peer ? r.MaxRelativeDifference : null, "0.0E+0"),14}");

            if (options.JsonPath is { } path)
            {
                WriteJson(path, peaks, options, peer ? TorchPeer.Description : null, peerMissing, results);
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


    /// <summary>The width of the GEMM's micro-kernel, for the report.</summary>
    static string KernelName => Gemm.VectorBits switch { 512 => "Vector512", 256 => "Vector256", _ => "scalar" };

    static GemmBenchResult Measure(int m, int k, int n, GemmBenchOptions options, bool peer)
    {
        double flops = 2.0 * m * n * k;
        var random = new Random(m * 31 + n * 17 + k);
        float[] a = RandomArray((long)m * k, random), b = RandomArray((long)k * n, random);
        float[] c = GC.AllocateUninitializedArray<float>(checked(m * n), pinned: true);

        torch.Tensor? ta = null, tb = null, tc = null;
        if (peer)
        {
            ta = options.TransposeA ? torch.tensor(a, [k, m]) : torch.tensor(a, [m, k]);
            tb = options.TransposeB ? torch.tensor(b, [n, k]) : torch.tensor(b, [k, n]);
            tc = torch.empty(m, n);
        }
        try
        {
            fixed (float* pa = a, pb = b, pc = c)
            {
                float* la = pa, lb = pb, lc = pc;
                bool t = options.TransposeA, tB = options.TransposeB;
                var opA = t ? Transpose.Yes : Transpose.No;
                var opB = tB ? Transpose.Yes : Transpose.No;
                int lda = t ? m : k, ldb = tB ? k : n;
                Action ours = () => Gemm.Multiply(opA, opB, m, n, k, la, lda, lb, ldb, lc, n);
                using var peerA = peer ? (t ? ta!.t() : ta!.alias()) : null;
                using var peerB = peer ? (tB ? tb!.t() : tb!.alias()) : null;
                Action? theirs = peer ? () => tc!.addmm_(peerA!, peerB!, beta: 0, alpha: 1) : null;
                // Small shapes get more runs so each side is timed for at least a quarter of a second.
                BenchReport.WarmUp(ours, options.Warmups);
                int repetitions = Math.Clamp((int)(0.25 / Math.Max(BenchReport.Seconds(ours), 1e-6)), options.Repetitions, 200);
                var ourTimes = TimeRuns(ours, repetitions);
                // Each side runs its repetitions back to back after its own warm-up: libtorch's OpenMP threads keep
                // spinning for a while after each call, which would steal a core from our next call if runs alternated.
                var peerTimes = new List<double>();
                if (theirs != null)
                {
                    BenchReport.WarmUp(theirs, options.Warmups + 1);
                    peerTimes = TimeRuns(theirs, repetitions);
                }

                double gflops = flops / BenchReport.Median(ourTimes) / 1e9;
                double? peerGflops = theirs != null ? flops / BenchReport.Median(peerTimes) / 1e9 : null;
                double difference = peer ? MaxRelativeDifference(c, tc!) : 0;
                return new GemmBenchResult(m, k, n, gflops, peerGflops, PeakGflops: double.NaN, difference);
            }
        }
        finally
        {
            ta?.Dispose(); tb?.Dispose(); tc?.Dispose();
        }
    }

    static string Formula(GemmBenchOptions options) => (options.TransposeA, options.TransposeB) switch
    {
        (false, false) => "A·B",
        (true, false) => "Aᵀ·B (A stored K×M)",
        (false, true) => "A·Bᵀ (B stored N×K)",
        (true, true) => "Aᵀ·Bᵀ (A stored K×M, B stored N×K)",
    };

    static List<double> TimeRuns(Action run, int repetitions)
    {
        var times = new List<double>(repetitions);
        for (int r = 0; r < repetitions; r++) times.Add(BenchReport.Seconds(run));
        return times;
    }


    static float[] RandomArray(long length, Random random)
    {
        var x = GC.AllocateUninitializedArray<float>(checked((int)length), pinned: true);
        for (int i = 0; i < x.Length; i++) x[i] = random.NextSingle() * 2 - 1;
        return x;
    }

    /// <summary>max |ours − theirs| / max |theirs|: a check that both computed the same product.</summary>
    static double MaxRelativeDifference(float[] ours, torch.Tensor theirs)
    {
        var reference = new float[ours.Length];
        theirs.data<float>().CopyTo(reference);
        double maxDiff = 0, maxAbs = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)ours[i] - reference[i]));
            maxAbs = Math.Max(maxAbs, Math.Abs((double)reference[i]));
        }
        return maxAbs > 0 ? maxDiff / maxAbs : maxDiff;
    }

    static void WriteJson(string path, PeakSeries peaks, GemmBenchOptions options, string? peer, string? peerMissing,
        List<GemmBenchResult> results)
    {
        var report = new Dictionary<string, object?>
        {
            ["peak_gflops"] = Math.Round(peaks.Highest, 2),
            ["peak_gflops_samples"] = peaks.Samples.Select(g => Math.Round(g, 2)).ToList(),
            ["threads"] = options.Threads,
            ["kernel"] = KernelName,
            ["transpose_a"] = options.TransposeA,
            ["transpose_b"] = options.TransposeB,
            ["peer"] = peer,
            ["peer_missing"] = peer == null ? peerMissing : null,
            ["results"] = results.Select(r => new Dictionary<string, object?>
            {
                ["shape"] = r.Shape,
                ["gflops"] = Math.Round(r.Gflops, 2),
                ["peer_gflops"] = r.PeerGflops is { } p ? Math.Round(p, 2) : null,
                ["ratio"] = r.Ratio is { } q ? Math.Round(q, 3) : null,
                ["percent_of_peak"] = Math.Round(r.PercentOfPeak, 1),
            }).ToList(),
        };
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder != null) Directory.CreateDirectory(folder);
        File.WriteAllText(path, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
