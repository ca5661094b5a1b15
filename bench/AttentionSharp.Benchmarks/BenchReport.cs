using System.Diagnostics;
using System.Text.Json;

namespace AttentionSharp.Benchmarks;

/// <summary>Timing, statistics and report writing shared by the benchmarks.</summary>
internal static class BenchReport
{
    /// <summary>Seconds one call of <paramref name="run"/> takes.</summary>
    public static double Seconds(Action run)
    {
        long start = Stopwatch.GetTimestamp();
        run();
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>
    /// Runs <paramref name="run"/> at least <paramref name="minRuns"/> times and for at least
    /// <paramref name="minSeconds"/>, then on until the JIT has compiled no method for <see cref="JitQuietSeconds"/>
    /// (at most <paramref name="maxSeconds"/> in all). Tiered compilation recompiles a process's hot methods on a
    /// background thread for a while after start-up, and that thread takes a core: a GEMM timed during it ran on one
    /// core's worth of time (512×768×768 on 2 threads: 112 GFLOPS, the one-thread figure, when it was the first shape
    /// after two warm-up calls; 209 once warm).
    /// </summary>
    public static void WarmUp(Action run, int minRuns = 2, double minSeconds = 0.25, double maxSeconds = 5)
    {
        var total = Stopwatch.StartNew();
        var quiet = Stopwatch.StartNew();
        long compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        for (int i = 0; ; i++)
        {
            if (i >= minRuns && total.Elapsed.TotalSeconds >= minSeconds
                && (quiet.Elapsed.TotalSeconds >= JitQuietSeconds || total.Elapsed.TotalSeconds >= maxSeconds)) return;
            run();
            long now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (now != compiled) { compiled = now; quiet.Restart(); }
        }
    }

    /// <summary>How long the JIT must have compiled nothing before <see cref="WarmUp"/> ends.</summary>
    public const double JitQuietSeconds = 0.3;

    /// <summary>
    /// Idle time before each timed run where the libraries take turns. libtorch's OpenMP (libgomp) threads spin for
    /// a while after each parallel region, and ours for 100 µs; a run that started straight after the other library's
    /// would share the cores with those spinning threads (measured on baby: 42.9 ms per step without the pause, 35.9
    /// with 20 ms of it, TorchSharp's unchanged). A user runs one library at a time, so each run starts on quiet cores.
    /// </summary>
    public const int PauseMs = 50;

    /// <summary><see cref="Seconds"/> of one call, after <see cref="PauseMs"/> of sleep that is not timed.</summary>
    public static double SecondsAfterPause(Action run)
    {
        Thread.Sleep(PauseMs);
        return Seconds(run);
    }

    /// <summary>The median (sorts <paramref name="times"/>).</summary>
    public static double Median(List<double> times)
    {
        times.Sort();
        int n = times.Count;
        return n % 2 == 1 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
    }

    /// <summary>A table cell: the value in <paramref name="format"/>, or "-" when there is none.</summary>
    public static string Format(double? value, string format) => value is { } v ? v.ToString(format) : "-";

    /// <summary>Writes <paramref name="report"/> as indented JSON, creating the folder if needed.</summary>
    public static void WriteJson(string path, object report)
    {
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder != null) Directory.CreateDirectory(folder);
        File.WriteAllText(path, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
