using System.Diagnostics;
using System.Text.Json;
using AttentionSharp.Gpu;

namespace AttentionSharp.Benchmarks;

/// <summary>Which device the GPU benchmarks open, and the timing and report helpers they share.</summary>
public static class GpuBenchDevice
{
    /// <summary>
    /// Opens <paramref name="name"/>: "cuda" (the first CUDA device; <see cref="GpuUnavailableException"/> with one
    /// sentence when there is none) or "simulator" (ILGPU's CPU accelerator, to check the commands on a machine without a
    /// GPU: its figures mean nothing).
    /// </summary>
    public static GpuDevice Open(string name) => name switch
    {
        "cuda" => GpuDevice.Cuda(),
        "simulator" => GpuDevice.CpuSimulator(),
        _ => throw new ArgumentException(
            $"--device '{name}' is unknown here; use cuda (or simulator, to check the command without a GPU)."),
    };

    /// <summary>The device's fields of a JSON report.</summary>
    public static Dictionary<string, object?> Describe(GpuDevice device) => new()
    {
        ["device"] = device.Name,
        ["device_kind"] = device.Kind.ToString(),
        ["multiprocessors"] = device.Multiprocessors,
        ["clock_mhz"] = device.ClockRateMHz,
        ["peak_gflops"] = device.PeakGflops is { } p ? Math.Round(p, 1) : null,
        ["peak_derivation"] = "multiprocessors x clock x 128 FP32 lanes x 2 FLOPs per FMA (docs/gpu.md)",
    };

    /// <summary>Seconds of one <paramref name="run"/>, from its first launch until the device has finished it.</summary>
    public static double Seconds(GpuDevice device, Action run)
    {
        device.Synchronize();
        long start = Stopwatch.GetTimestamp();
        run();
        device.Synchronize();
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    public static double Median(List<double> times)
    {
        times.Sort();
        int n = times.Count;
        return n % 2 == 1 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
    }

    public static void WriteJson(string path, object report)
    {
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder != null) Directory.CreateDirectory(folder);
        File.WriteAllText(path, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
