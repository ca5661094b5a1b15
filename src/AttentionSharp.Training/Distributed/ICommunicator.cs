namespace AttentionSharp.Distributed;

/// <summary>
/// A group of processes (ranks 0 … Size−1) training one model: the collective operations data parallelism needs. Every
/// rank must make the same calls in the same order with the same lengths, or the job deadlocks; the methods say which.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's index in the group, 0 ≤ Rank &lt; Size; rank 0 writes logs and checkpoints.</summary>
    int Rank { get; }

    /// <summary>The number of processes in the group.</summary>
    int Size { get; }

    /// <summary>
    /// Copies <paramref name="data"/> of rank <paramref name="root"/> into every rank's <paramref name="data"/>
    /// (collective).
    /// </summary>
    void Broadcast(Span<float> data, int root);

    /// <inheritdoc cref="Broadcast(Span{float}, int)"/>
    void Broadcast(Span<int> data, int root);

    /// <summary>Replaces <paramref name="data"/> on every rank by its element-wise sum over all ranks (collective).</summary>
    void AllReduceSum(Span<float> data);

    /// <summary>
    /// Starts <see cref="AllReduceSum"/> on <paramref name="data"/> without waiting; the memory is pinned and must not be
    /// read or written until <see cref="WaitAll"/> returns. Ranks must start the same reductions in the same order.
    /// </summary>
    void StartAllReduceSum(Memory<float> data);

    /// <summary>Waits for every reduction started since the last call.</summary>
    void WaitAll();

    /// <summary>
    /// Lets the reductions started so far advance without waiting for them (MPI moves a non-blocking collective along
    /// only inside its calls): called between pieces of other work, so that transfers overlap it.
    /// </summary>
    void Progress();

    /// <summary>Ends every process of the job with exit code <paramref name="code"/>; used when one rank fails alone.</summary>
    void Abort(int code);
}

/// <summary>The group of one: every collective is the identity. Training without MPI runs through it unchanged.</summary>
public sealed class SingleProcessCommunicator : ICommunicator
{
    public int Rank => 0;
    public int Size => 1;

    public void Broadcast(Span<float> data, int root) => CheckRoot(root);
    public void Broadcast(Span<int> data, int root) => CheckRoot(root);
    public void AllReduceSum(Span<float> data) { }
    public void StartAllReduceSum(Memory<float> data) { }
    public void WaitAll() { }
    public void Progress() { }
    public void Abort(int code) => Environment.Exit(code);
    public void Dispose() { }

    static void CheckRoot(int root)
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), root, "A single-process group has only rank 0.");
    }
}

/// <summary>A failure of the distributed runtime: MPI missing, misconfigured, or a call that failed.</summary>
public sealed class DistributedException(string message) : Exception(message);
