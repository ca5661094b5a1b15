using AttentionSharp.Distributed;

namespace AttentionSharp.Tests.Support;

/// <summary>
/// A group of ranks that are threads of one process, for testing collectives without MPI: each rank deposits its
/// buffer, all meet at a barrier, each reads what it needs, and all meet again before buffers are reused. Non-blocking
/// reductions run, in the order started, at <see cref="WaitAll"/>, which MPI's semantics allow.
/// </summary>
public sealed class ThreadGroupCommunicator : ICommunicator
{
    readonly Shared _shared;
    readonly List<Memory<float>> _pending = [];

    ThreadGroupCommunicator(Shared shared, int rank) => (_shared, Rank) = (shared, rank);

    public int Rank { get; }
    public int Size => _shared.Slots.Length;

    /// <summary>
    /// Runs <paramref name="body"/> on <paramref name="size"/> threads, one per rank, and returns their results by rank.
    /// </summary>
    public static T[] Run<T>(int size, Func<ThreadGroupCommunicator, T> body)
    {
        var shared = new Shared(size);
        var results = new T[size];
        var errors = new Exception?[size];
        var threads = Enumerable.Range(0, size).Select(r => new Thread(() =>
        {
            try { results[r] = body(new ThreadGroupCommunicator(shared, r)); }
            catch (Exception e) { errors[r] = e; shared.Barrier.Dispose(); }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        if (errors.FirstOrDefault(e => e is not null) is { } error) throw new AggregateException(error);
        return results;
    }

    public void Broadcast(Span<float> data, int root)
    {
        if (Rank == root) _shared.Slots[root] = data.ToArray();
        _shared.Barrier.SignalAndWait();
        if (Rank != root) _shared.Slots[root].CopyTo(data);
        _shared.Barrier.SignalAndWait();
    }

    // Through floats: exact for the small integers training broadcasts (|n| ≤ 2²⁴).
    public void Broadcast(Span<int> data, int root)
    {
        var floats = new float[data.Length];
        for (int i = 0; i < data.Length; i++) floats[i] = data[i];
        Broadcast(floats, root);
        for (int i = 0; i < data.Length; i++) data[i] = (int)floats[i];
    }

    public void AllReduceSum(Span<float> data)
    {
        _shared.Slots[Rank] = data.ToArray();
        _shared.Barrier.SignalAndWait();
        for (int i = 0; i < data.Length; i++)
        {
            float sum = 0;
            foreach (var slot in _shared.Slots) sum += slot[i];
            data[i] = sum;
        }
        _shared.Barrier.SignalAndWait();
    }

    public void StartAllReduceSum(Memory<float> data) => _pending.Add(data);

    public void WaitAll()
    {
        foreach (var data in _pending) AllReduceSum(data.Span);
        _pending.Clear();
    }

    public void Progress() { }

    public void Abort(int code) => throw new InvalidOperationException($"Rank {Rank} aborted the group with code {code}.");

    public void Dispose() { }

    sealed class Shared(int size)
    {
        public readonly float[][] Slots = new float[size][];
        public readonly Barrier Barrier = new(size);
    }
}
