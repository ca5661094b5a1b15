using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using AttentionSharp.Kernels;

namespace AttentionSharp.Benchmarks;

/// <summary>
/// Measures this machine's fp32 FMA peak: every thread runs a loop of independent FMAs on registers only (no memory
/// traffic), at the widest vector width the runtime accelerates. A GEMM can at best approach this figure.
/// </summary>
public static class PeakFlops
{
    /// <summary>
    /// Independent accumulator chains: at least FMA latency × FMA pipes (4 × 2 on current x86 cores), and with the two
    /// constants no more than the vector registers there are (32 with AVX-512, only 16 with AVX2: more would spill).
    /// </summary>
    static int Chains => Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 12 : 16;

    /// <summary>
    /// The best of <paramref name="trials"/> runs, in GFLOPS, on <paramref name="threads"/> threads, after the same loop
    /// has run on every thread for <paramref name="rampSeconds"/>: a core that has been idle runs at a lower clock for its
    /// first tens of milliseconds of work, and a trial timed then would report a peak no kernel is held to afterwards.
    /// </summary>
    public static double Measure(int threads, int trials = 10, double secondsPerTrial = 0.1, double rampSeconds = 0.5)
    {
        int lanes = Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 1;
        double flopsPerIteration = 2.0 * Chains * lanes;
        // Calibrate on one thread so a trial lasts about secondsPerTrial.
        long iterations = 1 << 16;
        while (true)
        {
            var watch = Stopwatch.StartNew();
            Loop(iterations);
            if (watch.Elapsed.TotalSeconds > secondsPerTrial / 8)
            {
                iterations = (long)(iterations * secondsPerTrial / watch.Elapsed.TotalSeconds);
                break;
            }
            iterations *= 2;
        }
        float sink = 0;
        double Trial()
        {
            int used = 1;
            var watch = Stopwatch.StartNew();
            Kernels.Parallel.Run(threads, (thread, count) =>
            {
                if (thread == 0) used = count;
                float r = Loop(iterations);
                if (r == 12345) sink += r; // keeps the loop's result alive
            });
            return used * iterations * flopsPerIteration / watch.Elapsed.TotalSeconds / 1e9;
        }
        var ramp = Stopwatch.StartNew();
        while (ramp.Elapsed.TotalSeconds < rampSeconds) Trial();
        double best = 0;
        for (int trial = 0; trial < trials; trial++) best = Math.Max(best, Trial());
        GC.KeepAlive(sink);
        return best;
    }

    static float Loop(long iterations) =>
        Vector512.IsHardwareAccelerated ? Loop512(iterations)
        : Vector256.IsHardwareAccelerated ? Loop256(iterations)
        : LoopScalar(iterations);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Loop512(long iterations)
    {
        var x = Vector512.Create(0.999999f);
        var y = Vector512.Create(1e-7f);
        Vector512<float> a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x;
        Vector512<float> a8 = x, a9 = x, a10 = x, a11 = x, a12 = x, a13 = x, a14 = x, a15 = x;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, x, y); a1 = Vector512.FusedMultiplyAdd(a1, x, y);
            a2 = Vector512.FusedMultiplyAdd(a2, x, y); a3 = Vector512.FusedMultiplyAdd(a3, x, y);
            a4 = Vector512.FusedMultiplyAdd(a4, x, y); a5 = Vector512.FusedMultiplyAdd(a5, x, y);
            a6 = Vector512.FusedMultiplyAdd(a6, x, y); a7 = Vector512.FusedMultiplyAdd(a7, x, y);
            a8 = Vector512.FusedMultiplyAdd(a8, x, y); a9 = Vector512.FusedMultiplyAdd(a9, x, y);
            a10 = Vector512.FusedMultiplyAdd(a10, x, y); a11 = Vector512.FusedMultiplyAdd(a11, x, y);
            a12 = Vector512.FusedMultiplyAdd(a12, x, y); a13 = Vector512.FusedMultiplyAdd(a13, x, y);
            a14 = Vector512.FusedMultiplyAdd(a14, x, y); a15 = Vector512.FusedMultiplyAdd(a15, x, y);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Loop256(long iterations)
    {
        var x = Vector256.Create(0.999999f);
        var y = Vector256.Create(1e-7f);
        Vector256<float> a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, x, y); a1 = Vector256.FusedMultiplyAdd(a1, x, y);
            a2 = Vector256.FusedMultiplyAdd(a2, x, y); a3 = Vector256.FusedMultiplyAdd(a3, x, y);
            a4 = Vector256.FusedMultiplyAdd(a4, x, y); a5 = Vector256.FusedMultiplyAdd(a5, x, y);
            a6 = Vector256.FusedMultiplyAdd(a6, x, y); a7 = Vector256.FusedMultiplyAdd(a7, x, y);
            a8 = Vector256.FusedMultiplyAdd(a8, x, y); a9 = Vector256.FusedMultiplyAdd(a9, x, y);
            a10 = Vector256.FusedMultiplyAdd(a10, x, y); a11 = Vector256.FusedMultiplyAdd(a11, x, y);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float LoopScalar(long iterations)
    {
        float x = 0.999999f, y = 1e-7f;
        float a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x;
        float a8 = x, a9 = x, a10 = x, a11 = x, a12 = x, a13 = x, a14 = x, a15 = x;
        for (long i = 0; i < iterations; i++)
        {
            a0 = a0 * x + y; a1 = a1 * x + y; a2 = a2 * x + y; a3 = a3 * x + y;
            a4 = a4 * x + y; a5 = a5 * x + y; a6 = a6 * x + y; a7 = a7 * x + y;
            a8 = a8 * x + y; a9 = a9 * x + y; a10 = a10 * x + y; a11 = a11 * x + y;
            a12 = a12 * x + y; a13 = a13 * x + y; a14 = a14 * x + y; a15 = a15 * x + y;
        }
        return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15;
    }

    /// <summary>The vector width the loop above used, for the report.</summary>
    public static string WidthName =>
        Vector512.IsHardwareAccelerated ? "Vector512" : Vector256.IsHardwareAccelerated ? "Vector256" : "scalar";
}

/// <summary>
/// The peak a benchmark run divides by: <see cref="PeakFlops.Measure"/> taken at the start, between the benchmark's
/// parts and at the end, and the highest of them. On a shared machine another tenant can hold a core for seconds, and a
/// single measurement taken then reads far below the machine (here once 85 GFLOPS on two threads where the run before
/// read 191); nothing can make a measurement read higher than the machine, so the highest is the figure.
/// </summary>
public sealed class PeakSeries(int threads)
{
    readonly List<double> _samples = [];

    /// <summary>
    /// <paramref name="measure"/> of each item in turn, with the peak measured before each one and once more after the
    /// last; <see cref="Highest"/> is then the figure to divide the results by.
    /// </summary>
    public List<TResult> Between<TItem, TResult>(IEnumerable<TItem> items, Func<TItem, TResult> measure)
    {
        var results = new List<TResult>();
        foreach (var item in items)
        {
            Sample();
            results.Add(measure(item));
        }
        Sample();
        return results;
    }

    void Sample() => _samples.Add(PeakFlops.Measure(threads, trials: 10));

    /// <summary>The highest measurement, in GFLOPS.</summary>
    public double Highest => _samples.Max();

    /// <summary>Every measurement, in the order taken.</summary>
    public IReadOnlyList<double> Samples => _samples;

    /// <summary>"the highest of N measurements (lo–hi)", for the report's header.</summary>
    public string Describe() =>
        $"the highest of {_samples.Count} measurements spread over the run ({_samples.Min():F1}–{Highest:F1})";
}
