namespace AttentionSharp;

/// <summary>
/// Counts the bytes held by live tensors (rented from <see cref="StoragePool"/> and not yet given back) and by the
/// attention kernels' native scratch, and the high-water mark of that sum: a deterministic "peak memory" of a computation,
/// unlike the process's resident set, which depends on what the allocators kept mapped. Tensors that are never disposed
/// stay counted.
/// </summary>
public static class MemoryMeter
{
    static long _current, _peak;

    /// <summary>Bytes held now.</summary>
    public static long CurrentBytes => Interlocked.Read(ref _current);

    /// <summary>The most bytes held at once since the last <see cref="ResetPeak"/>.</summary>
    public static long PeakBytes => Interlocked.Read(ref _peak);

    /// <summary>
    /// Starts a new high-water mark at the bytes held now and returns them: <see cref="PeakBytes"/> less that is the
    /// most a computation run afterwards added at once.
    /// </summary>
    public static long ResetPeak()
    {
        long now = CurrentBytes;
        Interlocked.Exchange(ref _peak, now);
        return now;
    }

    internal static void Add(long bytes)
    {
        long now = Interlocked.Add(ref _current, bytes);
        long peak;
        while (now > (peak = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, peak) != peak) { }
    }

    internal static void Remove(long bytes) => Interlocked.Add(ref _current, -bytes);
}
