using System.Diagnostics;

namespace AttentionSharp.Autograd;

/// <summary>
/// An optional, cheap timer over the tape (llm.c's per-kernel breakdown): while <see cref="Enabled"/>, each recorded
/// operation is charged the time since the previous one was recorded on this thread (its forward), and each backward
/// rule the time it runs. Off, it costs one static read per recorded operation. Not for concurrent training loops on
/// several threads: the totals are shared.
/// </summary>
public static class OpProfiler
{
    static readonly Dictionary<(string Name, bool Backward), (long Ticks, long Calls)> Totals = [];
    [ThreadStatic] static long _lastMark;

    /// <summary>Whether operations are timed.</summary>
    public static bool Enabled { get; set; }

    /// <summary>Starts the forward clock: the next recorded operation is charged the time from here.</summary>
    public static void Mark() => _lastMark = Stopwatch.GetTimestamp();

    /// <summary>Charges <paramref name="ticks"/> to <paramref name="name"/>'s forward or backward total.</summary>
    public static void Add(string name, bool backward, long ticks)
    {
        lock (Totals)
        {
            Totals.TryGetValue((name, backward), out var total);
            Totals[(name, backward)] = (total.Ticks + ticks, total.Calls + 1);
        }
    }

    /// <summary>Forgets every total.</summary>
    public static void Reset()
    {
        lock (Totals) Totals.Clear();
    }

    /// <summary>The totals so far: operation name, pass ("forward"/"backward"), seconds, calls; longest first.</summary>
    public static IReadOnlyList<(string Name, string Pass, double Seconds, long Calls)> Snapshot()
    {
        lock (Totals)
            return Totals.Select(e => (e.Key.Name, e.Key.Backward ? "backward" : "forward", e.Value.Ticks / (double)Stopwatch.Frequency, e.Value.Calls))
                .OrderByDescending(e => e.Item3).ToList();
    }

    /// <summary>The forward clock: charges the time since the last mark to <paramref name="name"/> and restarts it.</summary>
    internal static void Forward(string name)
    {
        long now = Stopwatch.GetTimestamp();
        if (_lastMark != 0) Add(name, backward: false, now - _lastMark);
        _lastMark = now;
    }
}
