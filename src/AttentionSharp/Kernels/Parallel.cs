namespace AttentionSharp.Kernels;

/// <summary>
/// The one place that owns threading. Every kernel that splits work goes through here, so the thread count is a
/// single setting (<see cref="ThreadCount"/>, default: the processor count, or the ATTN_THREADS environment variable).
/// </summary>
public static class Parallel
{
    static int _threadCount = ReadThreadCount();

    /// <summary>How many threads kernels may use; 1 runs everything on the calling thread.</summary>
    public static int ThreadCount
    {
        get => _threadCount;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), value, "ThreadCount must be at least 1.");
            _threadCount = value;
        }
    }

    static int ReadThreadCount()
    {
        var text = Environment.GetEnvironmentVariable("ATTN_THREADS");
        return int.TryParse(text, out var n) && n >= 1 ? n : Environment.ProcessorCount;
    }

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over [0, count) split into at most <see cref="ThreadCount"/> contiguous
    /// chunks of at least <paramref name="grain"/> items. Small work stays on the calling thread.
    /// </summary>
    public static void For(int count, int grain, Action<int, int> body)
    {
        if (count <= 0) return;
        int chunks = Math.Min(ThreadCount, Math.Max(1, count / Math.Max(1, grain)));
        if (chunks == 1) { body(0, count); return; }
        System.Threading.Tasks.Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks }, c =>
        {
            int start = (int)((long)count * c / chunks), end = (int)((long)count * (c + 1) / chunks);
            body(start, end);
        });
    }
}
