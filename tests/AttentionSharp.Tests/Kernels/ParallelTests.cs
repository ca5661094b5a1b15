using AttentionSharp.Kernels;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class ParallelTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 1)]
    [InlineData(1000, 3)]
    [InlineData(1000, 600)]
    public void ForVisitsEveryIndexOnce(int count, int grain)
    {
        var hits = new int[count];
        for (int round = 0; round < 50; round++)
            AttentionSharp.Kernels.Parallel.For(count, grain, (start, end) =>
            {
                Assert.True(start < end, $"empty chunk [{start}, {end})");
                for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
            });
        for (int i = 0; i < count; i++) Assert.True(hits[i] == 50, $"index {i} visited {hits[i]} times, expected 50");
    }

    /// <summary>
    /// Per-tensor passes visit every tensor once: large ones (split by their own kernels) and small ones (spread whole over
    /// the threads), a few small ones alone (kept on the calling thread), none, and sizes on both sides of the threshold.
    /// </summary>
    [Theory]
    [InlineData(new int[0])]
    [InlineData(new[] { 5, 100, 7 })]
    [InlineData(new[] { 40_000, 128, 128, 32_767, 32_768, 1, 0, 20_000, 20_000, 300_000, 64 })]
    public void ForEachTensorVisitsEveryTensorOnce(int[] sizes)
    {
        var hits = new int[sizes.Length];
        for (int round = 0; round < 50; round++)
            AttentionSharp.Kernels.Parallel.ForEachTensor(sizes.Length, i => sizes[i], i => Interlocked.Increment(ref hits[i]));
        for (int i = 0; i < sizes.Length; i++) Assert.True(hits[i] == 50, $"tensor {i} visited {hits[i]} times, expected 50");
    }

    /// <summary>
    /// With the cores oversubscribed, workers are often not running when a job starts: the caller takes their chunks and
    /// withdraws the job from them. Every index is still visited exactly once, and no later job sees a stale signal.
    /// </summary>
    [Fact]
    public void ForUnderOversubscriptionVisitsEveryIndexOnce()
    {
        using var stop = new CancellationTokenSource();
#pragma warning disable format
        var burners = Enumerable.Range(0, 2 * Environment.ProcessorCount).Select(_ => new Thread(() =>
        {
            while (!stop.IsCancellationRequested) Thread.SpinWait(1000);
        }) { IsBackground = true }).ToList();
#pragma warning restore format
        burners.ForEach(t => t.Start());
        try
        {
            const int count = 257, rounds = 2000;
            var hits = new int[count];
            for (int round = 0; round < rounds; round++)
                AttentionSharp.Kernels.Parallel.For(count, 8, (start, end) =>
                {
                    for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
                });
            for (int i = 0; i < count; i++)
                Assert.True(hits[i] == rounds, $"index {i} visited {hits[i]} times, expected {rounds}");
        }
        finally
        {
            stop.Cancel();
            burners.ForEach(t => t.Join());
        }
    }

    [Fact]
    public void NestedForRunsInline()
    {
        long total = 0;
        AttentionSharp.Kernels.Parallel.For(4, 1, (s, e) =>
        {
            for (int i = s; i < e; i++)
                AttentionSharp.Kernels.Parallel.For(100, 1, (s2, e2) => Interlocked.Add(ref total, e2 - s2));
        });
        Assert.Equal(400, total);
    }

    [Fact]
    public void RunGivesEachThreadItsIndexAndBarrierSeparatesPhases()
    {
        var barrier = new SpinBarrier();
        for (int round = 0; round < 100; round++)
        {
            int seen = 0, threadsSeen = 0, afterBarrier = 0;
            AttentionSharp.Kernels.Parallel.Run(8, (thread, threads) =>
            {
                Interlocked.Or(ref seen, 1 << thread);
                Volatile.Write(ref threadsSeen, threads);
                barrier.SignalAndWait(threads);
                // Every thread has set its bit before any thread passes the barrier.
                if (Volatile.Read(ref seen) == (1 << threads) - 1) Interlocked.Increment(ref afterBarrier);
            });
            Assert.Equal((1 << threadsSeen) - 1, seen);
            Assert.Equal(threadsSeen, afterBarrier);
        }
    }

    [Fact]
    public void ExceptionsReachTheCaller()
    {
        var e = Assert.Throws<InvalidOperationException>(() =>
            // The last chunk throws: it exists however the work is split, also when another test holds the pool (or has
            // set ThreadCount to 1) and the whole range runs as one chunk on this thread.
            AttentionSharp.Kernels.Parallel.For(100, 1, (_, end) =>
            {
                if (end == 100) throw new InvalidOperationException("chunk failed");
            }));
        Assert.Equal("chunk failed", e.Message);
        // The pool is usable afterwards.
        int sum = 0;
        AttentionSharp.Kernels.Parallel.For(10, 1, (s, e) => Interlocked.Add(ref sum, e - s));
        Assert.Equal(10, sum);
    }

    /// <summary>
    /// A thread's limit caps the thread count it sees (and so the threads its kernels split over: one runs them all on
    /// the calling thread) until disposed, nested limits restore in turn, and another thread keeps the process's count.
    /// </summary>
    [Fact]
    public void ALimitCapsTheThreadCountOfItsThreadAlone()
    {
        int other = 0, otherUncapped = -1, callers = 0;
        using (AttentionSharp.Kernels.Parallel.Limit(1))
        {
            Assert.Equal(1, AttentionSharp.Kernels.Parallel.ThreadCount);
            // Another thread sees no cap: its count is the process's (other tests may change that, so it is compared
            // with its own count under a limit that caps nothing, read right after).
            var thread = new Thread(() =>
            {
                other = AttentionSharp.Kernels.Parallel.ThreadCount;
                using (AttentionSharp.Kernels.Parallel.Limit(int.MaxValue))
                    otherUncapped = AttentionSharp.Kernels.Parallel.ThreadCount;
            });
            thread.Start();
            thread.Join();
            Assert.Equal(otherUncapped, other);
            int caller = Environment.CurrentManagedThreadId;
            AttentionSharp.Kernels.Parallel.For(1 << 20, 1, (start, end) =>
            {
                if (Environment.CurrentManagedThreadId != caller) Interlocked.Increment(ref callers);
            });
            AttentionSharp.Kernels.Parallel.Run(8, (i, n) => Assert.Equal((0, 1), (i, n)));
            using (AttentionSharp.Kernels.Parallel.Limit(2))
                Assert.InRange(AttentionSharp.Kernels.Parallel.ThreadCount, 1, 2);   // the inner limit, or the process's
            Assert.Equal(1, AttentionSharp.Kernels.Parallel.ThreadCount);         // the outer limit again
        }
        Assert.Equal(0, callers);
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionSharp.Kernels.Parallel.Limit(0));
    }
}
