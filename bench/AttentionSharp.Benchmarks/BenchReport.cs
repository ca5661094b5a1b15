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
