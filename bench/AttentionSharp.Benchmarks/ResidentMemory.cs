using System.Runtime;
using System.Runtime.InteropServices;

namespace AttentionSharp.Benchmarks;

/// <summary>
/// Peak resident-set growth, read from /proc/self/status: VmHWM is reset to the current VmRSS through
/// /proc/self/clear_refs after our tensor pool has been emptied and the GC and the C heap have returned what they could,
/// so what a run touches afterwards, native or managed, counts for either library.
/// </summary>
internal static class ResidentMemory
{
    /// <summary>Empties our pool, the GC's free memory and the C heap's, then resets the peak; returns VmRSS in kB, or null where the peak cannot be reset.</summary>
    public static long? ResetPeak()
    {
        StoragePool.Clear();
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        TrimNativeHeap();
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        return Status("VmRSS:");
    }

    /// <summary>MiB the peak rose above <paramref name="baseKb"/> (from <see cref="ResetPeak"/>); NaN when it could not be reset.</summary>
    public static double GrowthMb(long? baseKb) => baseKb is { } b ? (Status("VmHWM:") - b) / 1024.0 : double.NaN;

    /// <summary>Growth of the peak resident set during one run of <paramref name="run"/>, MiB.</summary>
    public static double PeakGrowthMb(Action run)
    {
        var before = ResetPeak();
        run();
        return GrowthMb(before);
    }

    /// <summary>Returns the C heap's free memory to the system, so memory libtorch freed earlier is counted again when reused.</summary>
    static void TrimNativeHeap()
    {
        try { MallocTrim(0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    /// <summary>A kB figure from /proc/self/status.</summary>
    static long Status(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field, StringComparison.Ordinal))
                return long.Parse(line.AsSpan(field.Length).Trim().TrimEnd("kB").Trim());
        return 0;
    }
}
