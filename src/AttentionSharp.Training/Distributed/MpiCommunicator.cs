using System.Buffers;

namespace AttentionSharp.Distributed;

/// <summary>
/// MPI_COMM_WORLD of a job started by <c>mpirun</c>, through Open MPI's C library (see <see cref="Mpi"/>). Only the
/// thread that created it may call it (MPI_THREAD_FUNNELED). Dispose finalizes MPI.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    readonly Mpi _mpi;
    readonly List<nint> _requests = [];
    readonly List<MemoryHandle> _pinned = [];
    bool _disposed;

    MpiCommunicator(Mpi mpi)
    {
        _mpi = mpi;
        if (!_mpi.IsInitialized) _mpi.Init();
        Rank = _mpi.Rank(_mpi.CommWorld);
        Size = _mpi.Size(_mpi.CommWorld);
    }

    /// <summary>
    /// Loads Open MPI and initializes it; throws <see cref="DistributedException"/> saying how to install it when absent.
    /// </summary>
    public static MpiCommunicator Start() => Start(Mpi.LibraryNames);

    internal static MpiCommunicator Start(IReadOnlyList<string> libraryNames)
    {
        var mpi = Mpi.TryLoad(libraryNames, out var reason)
            ?? throw new DistributedException($"{reason} {DistributedLaunch.InstallHint}");
        return new MpiCommunicator(mpi);
    }

    public int Rank { get; }
    public int Size { get; }

    public void Broadcast(Span<float> data, int root)
    {
        CheckRoot(root);
        fixed (float* p = data) _mpi.Broadcast(p, data.Length, _mpi.Float, root, _mpi.CommWorld);
    }

    public void Broadcast(Span<int> data, int root)
    {
        CheckRoot(root);
        fixed (int* p = data) _mpi.Broadcast(p, data.Length, _mpi.Int, root, _mpi.CommWorld);
    }

    public void AllReduceSum(Span<float> data)
    {
        fixed (float* p = data) _mpi.AllReduceInPlace(p, data.Length, _mpi.Float, _mpi.Sum, _mpi.CommWorld);
    }

    public void StartAllReduceSum(Memory<float> data)
    {
        var handle = data.Pin();
        _pinned.Add(handle);
        _requests.Add(_mpi.StartAllReduceInPlace(handle.Pointer, data.Length, _mpi.Float, _mpi.Sum, _mpi.CommWorld));
    }

    public void WaitAll()
    {
        try { _mpi.WaitAll(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_requests)); }
        finally { Release(); }
    }

    /// <summary>Unpins the buffers of completed (freed) requests and forgets them.</summary>
    void Release()
    {
        foreach (var h in _pinned) h.Dispose();
        _pinned.Clear();
        _requests.Clear();
    }

    public void Progress()
    {
        if (_requests.Count > 0 && _mpi.TestAll(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_requests)))
            Release();
    }

    public void Abort(int code) => _mpi.Abort(_mpi.CommWorld, code);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_mpi.IsInitialized && !_mpi.IsFinalized) _mpi.Shutdown();
    }

    void CheckRoot(int root)
    {
        if (root < 0 || root >= Size)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"The root must be a rank in [0, {Size}).");
    }
}
