namespace AttentionSharp.Distributed;

/// <summary>
/// The pieces of data parallelism besides gradient averaging: the same starting weights everywhere, and each rank's
/// share of a global batch. With N ranks each taking b rows of a global batch of N·b rows drawn exactly as one process
/// would draw it, and gradients averaged, N ranks × b equal one process × N·b up to float rounding.
/// </summary>
public static class DataParallel
{
    /// <summary>Copies rank <paramref name="root"/>'s parameter values to every rank (collective), so all start equal.</summary>
    public static void BroadcastParameters(ICommunicator communicator, IEnumerable<Tensor> parameters, int root = 0)
    {
        if (communicator.Size == 1) return;
        foreach (var p in parameters)
        {
            if (!p.IsContiguous) throw new ArgumentException($"Parameters must be contiguous to broadcast; one has shape {ShapeMath.Format(p.Shape)} and is a strided view.");
            communicator.Broadcast(p.Data, root);
        }
    }

    /// <summary>
    /// The rows [r·⌈R/N⌉, min(R, (r+1)·⌈R/N⌉)) of a global batch of R = <paramref name="globalRows"/> rows: in
    /// training R = N·b and rank r gets rows [r·b, (r+1)·b); a short last validation batch may leave a rank none.
    /// </summary>
    public static (int FirstRow, int Rows) Shard(int globalRows, int rank, int size)
    {
        if (globalRows < 0) throw new ArgumentOutOfRangeException(nameof(globalRows), globalRows, "A batch cannot have a negative number of rows.");
        if (size < 1 || rank < 0 || rank >= size) throw new ArgumentOutOfRangeException(nameof(rank), rank, $"Rank must be in [0, {size}).");
        int per = (globalRows + size - 1) / size;
        int first = Math.Min(globalRows, rank * per);
        return (first, Math.Min(globalRows, first + per) - first);
    }
}
