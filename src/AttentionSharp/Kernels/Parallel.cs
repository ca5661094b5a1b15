using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace AttentionSharp.Kernels;

/// <summary>
/// The one place that owns threading. Every kernel that splits work goes through here, so the thread count is a
/// single setting (<see cref="ThreadCount"/>, default: the processor count, or the ATTN_THREADS environment variable).
/// </summary>
/// <remarks>
/// Work runs on a persistent pool of <c>ThreadCount − 1</c> background threads plus the calling thread. A worker spins
/// briefly after each job, so back-to-back kernels (a training step is a few hundred of them) start in about a
/// microsecond instead of the tens of microseconds a sleeping thread needs to wake; after the spin it blocks and costs
/// nothing. The pool serves one job at a time: a call made while it is busy (from another thread, or nested inside a
/// job) runs on its own thread, which keeps nesting safe and never oversubscribes the cores. When other processes keep
/// a worker off the cores, a chunked job (<see cref="For"/>) does not wait for it: the caller takes the chunks and
/// withdraws the job from any worker that has not started.
/// </remarks>
public static class Parallel
{
    static int _threadCount = ReadThreadCount();
    [ThreadStatic] static int t_limit;   // 0: none

    /// <summary>
    /// How many threads kernels called from this thread may use: the process's setting, or less under
    /// <see cref="Limit"/>; 1 runs everything on the calling thread. Setting it sets the process's.
    /// </summary>
    public static int ThreadCount
    {
        get => t_limit > 0 ? Math.Min(t_limit, _threadCount) : _threadCount;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), value, "ThreadCount must be at least 1.");
            _threadCount = value;
        }
    }

    /// <summary>
    /// Caps <see cref="ThreadCount"/> at <paramref name="threads"/> for the kernels called from this thread until the
    /// scope is disposed (on the same thread), for work that runs side by side on threads of its own: two models
    /// training at once, one core each. Other threads keep the process's setting.
    /// </summary>
    public static ThreadLimit Limit(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "A thread limit must be at least 1.");
        var scope = new ThreadLimit(t_limit);
        t_limit = threads;
        return scope;
    }

    /// <summary>The scope of <see cref="Limit"/>: disposing it restores the thread's earlier limit.</summary>
    public readonly struct ThreadLimit : IDisposable
    {
        readonly int _previous;
        internal ThreadLimit(int previous) => _previous = previous;
        public void Dispose() => t_limit = _previous;
    }

    static int ReadThreadCount()
    {
        var text = Environment.GetEnvironmentVariable("ATTN_THREADS");
        return int.TryParse(text, out var n) && n >= 1 ? n : Environment.ProcessorCount;
    }

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over [0, count) split into contiguous chunks of at least
    /// <paramref name="grain"/> items, up to <see cref="ChunksPerThread"/> per thread, which the threads take on demand:
    /// a thread slowed by other processes takes fewer. Small work stays on the calling thread.
    /// </summary>
    public static void For(int count, int grain, Action<int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (count <= 0) return;
        int allowed = ThreadCount;                                    // one read: it may be capped per thread
        int chunks = Math.Min(ChunksPerThread * allowed, Math.Max(1, count / Math.Max(1, grain)));
        int threads = Math.Min(allowed, chunks);
        // Whole rounds of chunks: three chunks on two threads would leave one thread two thirds of the work. Fewer,
        // larger chunks keep every chunk at least the grain.
        chunks -= chunks % threads;
        if (threads == 1 || !Pool.TryStart(threads, null, body, count, chunks)) { body(0, count); return; }
        Pool.Finish();
    }

    /// <summary>Work below this many floats stays on one thread: a fork costs more than it saves.</summary>
    public const int SplitThreshold = 32 * 1024;

    /// <summary>
    /// Runs <paramref name="body"/>(i) for each of <paramref name="count"/> tensors, tensor i holding
    /// <paramref name="size"/>(i) floats: those of at least <see cref="SplitThreshold"/> one after another, each
    /// splitting its own work over the threads, and the smaller ones whole, spread over the threads. For per-tensor passes
    /// over a model's parameters (optimizer steps, weight averages, norms), most of them biases and norms too small to
    /// split. The bodies must be independent of each other.
    /// </summary>
    public static void ForEachTensor(int count, Func<int, int> size, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(size);
        ArgumentNullException.ThrowIfNull(body);
        var small = new List<int>();
        long smallFloats = 0;
        for (int i = 0; i < count; i++)
        {
            int n = size(i);
            if (n >= SplitThreshold) body(i);
            else { small.Add(i); smallFloats += n; }
        }
        if (smallFloats < SplitThreshold) { foreach (int i in small) body(i); return; }
        For(small.Count, 1, (start, end) => { for (int j = start; j < end; j++) body(small[j]); });
    }

    /// <summary>
    /// Chunks per thread in <see cref="For"/>: more than one, so that when a thread is preempted in the middle of a job
    /// the work stranded with it is a small piece, and the others take the rest.
    /// </summary>
    public const int ChunksPerThread = 4;

    /// <summary>
    /// Runs <paramref name="body"/>(thread, threads) once on each of up to <paramref name="maxThreads"/> threads at the
    /// same time, thread ∈ [0, threads). The body learns how many threads it really got (1 when the pool is busy or
    /// <see cref="ThreadCount"/> is 1) and must split its work by that number; the threads may wait for each other
    /// with a <see cref="SpinBarrier"/>, since all of them run concurrently.
    /// </summary>
    public static void Run(int maxThreads, Action<int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        int threads = Math.Min(ThreadCount, maxThreads);
        if (threads <= 1 || !Pool.TryStart(threads, body, null, 0, threads)) { body(0, 1); return; }
        Pool.Finish();
    }

    /// <summary>The persistent workers and the single job they share.</summary>
    static class Pool
    {
        /// <summary>How long an idle worker spins before it blocks.</summary>
        static readonly long SpinTicks = Stopwatch.Frequency / 10_000; // 100 µs

        sealed class Worker
        {
            public int Signal;   // 1: a job is waiting for this worker
            public int Sleeping; // 1: blocked on Wake, the caller must release it
            public readonly SemaphoreSlim Wake = new(0);
        }

        static readonly Lock Grow = new();
        static Worker[] _workers = [];
        static int _busy;

        // The current job: either SPMD (_run) or contiguous chunks of [0, _count) handed out on demand (_for).
        static Action<int, int>? _run, _for;
        static int _threads, _chunks, _count, _nextChunk, _remaining;
        static ExceptionDispatchInfo? _error;

        /// <summary>Claims the pool and starts a job; the caller then takes part and waits in <see cref="Finish"/>.</summary>
        public static bool TryStart(int threads, Action<int, int>? run, Action<int, int>? forBody, int count, int chunks)
        {
            if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0) return false;
            EnsureWorkers(threads - 1);
            _run = run; _for = forBody; _threads = threads; _chunks = chunks; _count = count; _nextChunk = 0; _error = null;
            Volatile.Write(ref _remaining, threads - 1);
            var workers = _workers;
            for (int w = 0; w < threads - 1; w++)
            {
                Interlocked.Exchange(ref workers[w].Signal, 1);
                if (Interlocked.Exchange(ref workers[w].Sleeping, 0) == 1) workers[w].Wake.Release();
            }
            return true;
        }

        /// <summary>Runs the caller's share (thread 0), waits for the workers, releases the pool, rethrows a failure.</summary>
        public static void Finish()
        {
            Execute(0);
            // A chunked job is complete once its chunks are: the caller has taken whatever no worker claimed, so a worker
            // that has not yet picked up its signal (descheduled by other processes) is released from the job instead of
            // being waited for. An SPMD job needs every thread, so it always waits.
            if (_for is not null)
            {
                var workers = _workers;
                for (int w = 0; w < _threads - 1; w++)
                    if (Interlocked.CompareExchange(ref workers[w].Signal, 0, 1) == 1) Interlocked.Decrement(ref _remaining);
            }
            var spin = new SpinWait();
            while (Volatile.Read(ref _remaining) != 0) spin.SpinOnce(sleep1Threshold: -1);
            var error = _error;
            _run = null; _for = null; _error = null;
            Volatile.Write(ref _busy, 0);
            error?.Throw();
        }

        static void Execute(int thread)
        {
            try
            {
                if (_run is { } run) { run(thread, _threads); return; }
                var body = _for!;
                int chunks = _chunks, count = _count, c;
                while ((c = Interlocked.Increment(ref _nextChunk) - 1) < chunks)
                    body((int)((long)count * c / chunks), (int)((long)count * (c + 1) / chunks));
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, ExceptionDispatchInfo.Capture(e), null);
            }
        }

        static void EnsureWorkers(int count)
        {
            if (_workers.Length >= count) return;
            lock (Grow)
            {
                var workers = _workers;
                if (workers.Length >= count) return;
                var grown = new Worker[count];
                Array.Copy(workers, grown, workers.Length);
                for (int w = workers.Length; w < count; w++)
                {
                    var worker = grown[w] = new Worker();
                    int index = w + 1;
                    new Thread(() => Loop(worker, index))
                    {
                        IsBackground = true, Name = $"AttentionSharp worker {index}"
                    }.Start();
                }
                _workers = grown;
            }
        }

        static void Loop(Worker worker, int thread)
        {
            while (true)
            {
                WaitForSignal(worker);
                // Claim the job; the caller may have withdrawn it meanwhile (see Finish), and then there is nothing to do.
                if (Interlocked.CompareExchange(ref worker.Signal, 0, 1) != 1) continue;
                Execute(thread);
                Interlocked.Decrement(ref _remaining);
            }
        }

        static void WaitForSignal(Worker worker)
        {
            long start = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref worker.Signal) == 0)
            {
                if (Stopwatch.GetTimestamp() - start < SpinTicks) { Thread.SpinWait(16); continue; }
                // Announce the sleep, then look again: the caller writes Signal before it reads Sleeping, so one of us
                // sees the other's write (both are full fences) and no wake-up is lost.
                Interlocked.Exchange(ref worker.Sleeping, 1);
                if (Volatile.Read(ref worker.Signal) != 0)
                {
                    // The caller may already have taken the flag and released the semaphore: consume that release.
                    if (Interlocked.Exchange(ref worker.Sleeping, 0) == 0) worker.Wake.Wait();
                    return;
                }
                worker.Wake.Wait();
            }
        }
    }
}

/// <summary>
/// A reusable barrier for the threads of one <see cref="Parallel.Run"/> job. It spins (yielding when the cores are
/// oversubscribed) instead of blocking, because the phases it separates are short and all threads are running.
/// </summary>
public sealed class SpinBarrier
{
    int _arrived;
    int _phase;

    /// <summary>Returns once all <paramref name="participants"/> threads have called it for the current phase.</summary>
    public void SignalAndWait(int participants)
    {
        if (participants <= 1) return;
        // The phase cannot advance before this thread arrives, so reading it first is safe.
        int phase = Volatile.Read(ref _phase);
        if (Interlocked.Increment(ref _arrived) == participants)
        {
            _arrived = 0;
            Volatile.Write(ref _phase, phase + 1);
            return;
        }
        var spin = new SpinWait();
        while (Volatile.Read(ref _phase) == phase) spin.SpinOnce(sleep1Threshold: -1);
    }
}
