using AttentionSharp.Gpu;
using AttentionSharp.Kernels;

namespace AttentionSharp.Benchmarks;

/// <summary>What <see cref="GpuGemmBenchmark.Run"/> measures.</summary>
public sealed record GpuGemmBenchOptions
{
    /// <summary>(M, K, N): C(M×N) = op(A)(M×K)·op(B)(K×N); the CPU benchmark's shapes by default.</summary>
    public IReadOnlyList<(int M, int K, int N)> Shapes { get; init; } =
        [(512, 768, 768), (4096, 768, 3072), (4096, 3072, 768), (2048, 2048, 2048), (256, 768, 50304)];

    public bool TransposeA { get; init; }
    public bool TransposeB { get; init; }

    /// <summary>Timed runs per shape (more for short ones, so each shape is timed for ~0.25 s); the median counts.</summary>
    public int Repetitions { get; init; } = 20;

    public int Warmups { get; init; } = 3;

    public string? JsonPath { get; init; }
}

/// <summary>
/// SGEMM on the device (<see cref="GpuGemm"/>) on transformer shapes: GFLOP/s as the median of timed runs (each from
/// launch to completion), the share of the device's FP32 peak (<see cref="GpuDevice.PeakGflops"/>), and the largest
/// relative difference from the CPU engine's GEMM over the first rows of C, so a fast wrong kernel cannot pass.
/// </summary>
public static class GpuGemmBenchmark
{
    /// <summary>Rows of C recomputed on the CPU for the check.</summary>
    const int CheckedRows = 32;

    public static int Run(GpuDevice device, GpuGemmBenchOptions options, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(options);
        var ta = options.TransposeA ? Transpose.Yes : Transpose.No;
        var tb = options.TransposeB ? Transpose.Yes : Transpose.No;
        output.WriteLine($"GEMM fp32 on {device}, C = op(A)·op(B) with op = ({ta}, {tb})");
        output.WriteLine(device.PeakGflops is { } peak
            ? $"FP32 peak: {peak:F0} GFLOP/s (multiprocessors × clock × 128 lanes × 2)"
            : "FP32 peak: unknown on this device (no clock reported): no share of peak is given.");
        output.WriteLine();
        output.WriteLine($"{"shape (MxKxN)",-18}{"GFLOP/s",10}{"% of peak",11}{"ms",9}{"max rel diff",14}");
        var results = new List<Dictionary<string, object?>>();
        foreach (var (m, k, n) in options.Shapes)
        {
            var random = new Random(m * 31 + n * 17 + k);
            var a = Random(random, (long)m * k);
            var b = Random(random, (long)k * n);
            using var ga = device.Upload(a);
            using var gb = device.Upload(b);
            using var gc = device.Zeros(m, n);
            void Once() => device.Gemm.Multiply(ta, tb, m, n, k, ga, gb, gc);
            for (int w = 0; w < options.Warmups; w++) Once();
            double first = GpuBenchDevice.Seconds(device, Once);
            int repetitions = Math.Clamp((int)(0.25 / Math.Max(first, 1e-6)), options.Repetitions, 1000);
            var times = new List<double>();
            for (int r = 0; r < repetitions; r++) times.Add(GpuBenchDevice.Seconds(device, Once));
            double seconds = GpuBenchDevice.Median(times);
            double gflops = 2.0 * m * n * k / seconds / 1e9;
            double? percent = device.PeakGflops is { } p ? 100 * gflops / p : null;
            double difference = Difference(ta, tb, m, n, k, a, b, gc);
            output.WriteLine($"{$"{m}x{k}x{n}",-18}{gflops,10:F0}{(percent is { } pc ? $"{pc:F1}%" : "-"),11}" +
                             $"{seconds * 1e3,9:F3}{difference,14:0.0E+0}");
            results.Add(new()
            {
                ["shape"] = $"{m}x{k}x{n}",
                ["gflops"] = Math.Round(gflops, 1),
                ["percent_of_peak"] = percent is { } q ? Math.Round(q, 1) : null,
                ["ms"] = Math.Round(seconds * 1e3, 4),
                ["repetitions"] = repetitions,
                ["max_rel_diff"] = difference,
            });
        }
        if (options.JsonPath is { } path)
        {
            var report = GpuBenchDevice.Describe(device);
            report["transpose_a"] = options.TransposeA;
            report["transpose_b"] = options.TransposeB;
            report["timing"] = "median of runs, each from launch until the device finished";
            report["results"] = results;
            GpuBenchDevice.WriteJson(path, report);
            output.WriteLine();
            output.WriteLine($"Wrote {path}");
        }
        return 0;
    }

    /// <summary>max |GPU − CPU| / max |CPU| over the first rows of C.</summary>
    static double Difference(Transpose ta, Transpose tb, int m, int n, int k, float[] a, float[] b, GpuTensor c)
    {
        int rows = Math.Min(m, CheckedRows);
        var gpu = new float[c.Count];
        c.CopyTo(gpu);
        var cpu = new float[rows * n];
        // The first rows of op(A): rows of A, or (for Aᵀ stored K×M) its first columns, taken from every row.
        float[] aRows;
        if (ta == Transpose.No) aRows = a.AsSpan(0, rows * k).ToArray();
        else
        {
            aRows = new float[k * rows];
            for (int kk = 0; kk < k; kk++) a.AsSpan(kk * m, rows).CopyTo(aRows.AsSpan(kk * rows));
        }
        Gemm.Multiply(ta, tb, rows, n, k, aRows, ta == Transpose.No ? k : rows, b, tb == Transpose.No ? n : k, cpu, n);
        double maxDiff = 0, maxAbs = 0;
        for (int i = 0; i < cpu.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)gpu[i] - cpu[i]));
            maxAbs = Math.Max(maxAbs, Math.Abs((double)cpu[i]));
        }
        return maxAbs > 0 ? maxDiff / maxAbs : maxDiff;
    }

    static float[] Random(Random random, long length)
    {
        var x = new float[checked((int)length)];
        for (int i = 0; i < x.Length; i++) x[i] = random.NextSingle() * 2 - 1;
        return x;
    }
}
