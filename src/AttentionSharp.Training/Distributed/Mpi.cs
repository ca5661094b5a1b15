// Source: the MPI Standard 4.0 (MPI Forum, 2021), chapters 5 (collective communication) and 11 (environment); Open MPI
// 4.1's mpi.h for how its C handles are spelled.
using System.Runtime.InteropServices;

namespace AttentionSharp.Distributed;

/// <summary>
/// The few MPI calls data-parallel training needs, bound by hand to Open MPI's C library (libmpi.so.40): init and
/// finalize, rank and size, broadcast, all-reduce (blocking and non-blocking), wait, abort. Nothing else of MPI is used.
/// <para>
/// Open MPI's C handles are not integers: <c>MPI_COMM_WORLD</c> is <c>&amp;ompi_mpi_comm_world</c>, <c>MPI_FLOAT</c> is
/// <c>&amp;ompi_mpi_float</c>, <c>MPI_SUM</c> is <c>&amp;ompi_mpi_op_sum</c> — addresses of exported globals — so they are
/// resolved with <see cref="NativeLibrary.GetExport"/>, as are the functions (called through unmanaged function
/// pointers). <c>MPI_IN_PLACE</c> is <c>(void*)1</c> and <c>MPI_STATUSES_IGNORE</c> is <c>NULL</c> in Open MPI.
/// </para>
/// The library is loaded only when a job asks for MPI, so a plain run never touches it.
/// </summary>
internal sealed unsafe class Mpi
{
    /// <summary>Library names tried in order: the runtime library of Open MPI 4/5, then the development symlink.</summary>
    public static readonly string[] LibraryNames = ["libmpi.so.40", "libmpi.so"];

    /// <summary>MPI_THREAD_FUNNELED: only the thread that called init makes MPI calls (the kernels' workers never do).</summary>
    const int ThreadFunneled = 1;
    const int Success = 0;
    const int MaxErrorString = 256;
    static readonly nint InPlace = 1;

    readonly nint _library;
    readonly delegate* unmanaged<int*, byte***, int, int*, int> _initThread;
    readonly delegate* unmanaged<int*, int> _initialized;
    readonly delegate* unmanaged<int*, int> _finalized;
    readonly delegate* unmanaged<int> _finalize;
    readonly delegate* unmanaged<nint, int*, int> _commRank;
    readonly delegate* unmanaged<nint, int*, int> _commSize;
    readonly delegate* unmanaged<void*, int, nint, int, nint, int> _bcast;
    readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, int> _allreduce;
    readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int> _iallreduce;
    readonly delegate* unmanaged<int, nint*, void*, int> _waitall;
    readonly delegate* unmanaged<int, nint*, int*, void*, int> _testall;
    readonly delegate* unmanaged<nint, int> _barrier;
    readonly delegate* unmanaged<nint, int, int> _abort;
    readonly delegate* unmanaged<int, byte*, int*, int> _errorString;

    /// <summary>MPI_COMM_WORLD, MPI_FLOAT, MPI_INT and MPI_SUM as Open MPI spells them.</summary>
    public readonly nint CommWorld, Float, Int, Sum;

    Mpi(nint library)
    {
        _library = library;
        _initThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Export("MPI_Init_thread");
        _initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        _finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        _finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        _commRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        _commSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        _bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        _allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Export("MPI_Allreduce");
        _iallreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int>)Export("MPI_Iallreduce");
        _waitall = (delegate* unmanaged<int, nint*, void*, int>)Export("MPI_Waitall");
        _testall = (delegate* unmanaged<int, nint*, int*, void*, int>)Export("MPI_Testall");
        _barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        _abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        _errorString = (delegate* unmanaged<int, byte*, int*, int>)Export("MPI_Error_string");
        CommWorld = Export("ompi_mpi_comm_world");
        Float = Export("ompi_mpi_float");
        Int = Export("ompi_mpi_int");
        Sum = Export("ompi_mpi_op_sum");
    }

    /// <summary>
    /// Loads Open MPI's library (the first of <paramref name="names"/> found), or returns null with the reason (not
    /// installed, or not Open MPI).
    /// </summary>
    public static Mpi? TryLoad(IReadOnlyList<string> names, out string reason)
    {
        reason = "";
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            reason = "MPI is supported on Linux and macOS only.";
            return null;
        }
        foreach (var name in names)
        {
            if (!NativeLibrary.TryLoad(name, out var handle)) continue;
            try { return new Mpi(handle); }
            catch (EntryPointNotFoundException e)
            {
                reason = $"'{name}' was found but is not Open MPI's library ({e.Message}).";
                return null;
            }
        }
        reason = $"Open MPI's library ({string.Join(" or ", names)}) was not found.";
        return null;
    }

    nint Export(string name) => NativeLibrary.GetExport(_library, name);

    public bool IsInitialized { get { int flag; Check(_initialized(&flag), "MPI_Initialized"); return flag != 0; } }
    public bool IsFinalized { get { int flag; Check(_finalized(&flag), "MPI_Finalized"); return flag != 0; } }

    public void Init()
    {
        int provided;
        Check(_initThread(null, null, ThreadFunneled, &provided), "MPI_Init_thread");
        if (provided < ThreadFunneled)
            throw new DistributedException($"This MPI library provides thread level {provided}; training needs " +
                                           $"MPI_THREAD_FUNNELED ({ThreadFunneled}).");
    }

    /// <summary>MPI_Finalize.</summary>
    public void Shutdown() => Check(_finalize(), "MPI_Finalize");

    public int Rank(nint comm) { int r; Check(_commRank(comm, &r), "MPI_Comm_rank"); return r; }
    public int Size(nint comm) { int s; Check(_commSize(comm, &s), "MPI_Comm_size"); return s; }

    public void Broadcast(void* buffer, int count, nint type, int root, nint comm) =>
        Check(_bcast(buffer, count, type, root, comm), "MPI_Bcast");

    /// <summary>In place: every rank's buffer becomes the element-wise reduction over all ranks.</summary>
    public void AllReduceInPlace(void* buffer, int count, nint type, nint op, nint comm) =>
        Check(_allreduce((void*)InPlace, buffer, count, type, op, comm), "MPI_Allreduce");

    /// <summary>
    /// Starts an in-place all-reduce; the buffer must not move or be touched until <see cref="WaitAll"/> returns.
    /// </summary>
    public nint StartAllReduceInPlace(void* buffer, int count, nint type, nint op, nint comm)
    {
        nint request;
        Check(_iallreduce((void*)InPlace, buffer, count, type, op, comm, &request), "MPI_Iallreduce");
        return request;
    }

    public void WaitAll(Span<nint> requests)
    {
        fixed (nint* p = requests) Check(_waitall(requests.Length, p, null), "MPI_Waitall");
    }

    /// <summary>
    /// MPI_Testall: true (and the requests freed) when all have completed; otherwise false and none is changed. Either
    /// way the library advances them.
    /// </summary>
    public bool TestAll(Span<nint> requests)
    {
        int done;
        fixed (nint* p = requests) Check(_testall(requests.Length, p, &done, null), "MPI_Testall");
        return done != 0;
    }

    public void Barrier(nint comm) => Check(_barrier(comm), "MPI_Barrier");

    /// <summary>Ends every process of the job with <paramref name="code"/> (MPI_Abort does not return on Open MPI).</summary>
    public void Abort(nint comm, int code) => _abort(comm, code);

    void Check(int code, string call)
    {
        if (code == Success) return;
        var text = new byte[MaxErrorString];
        int length = 0;
        fixed (byte* p = text)
            if (_errorString(code, p, &length) != Success) length = 0;
        string message = length > 0 ? System.Text.Encoding.ASCII.GetString(text, 0, length) : $"error code {code}";
        throw new DistributedException($"{call} failed: {message}.");
    }
}
