using AttentionSharp.Distributed;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Distributed;

/// <summary>Bucketing and averaging of gradients, in a group of one and in groups of threads standing in for MPI ranks.</summary>
public class GradientAllReducerTests
{
    // Means of a few floats summed in another order than the expectation's (values up to ~100): a few ulps.
    const double Atol = 1e-5, Rtol = 1e-6;
    static readonly int[][] Shapes = [[5], [3, 4], [300], [2], [7, 3]];

    static Tensor[] Parameters(int rank)
    {
        var rng = new Generator(100 + (ulong)rank);
        return [.. Shapes.Select(s => { var p = Tensor.Randn(rng, s); p.RequiresGrad = true; return p; })];
    }

    static void SetGradients(Tensor[] parameters, int rank)
    {
        for (int i = 0; i < parameters.Length; i++)
        {
            var g = parameters[i].GradBuffer();
            for (int j = 0; j < g.Length; j++) g[j] = rank * 10 + i + j * 0.25f;
        }
    }

    [Fact]
    public void BucketsHoldEveryParameterOnceInReverseOrderWithinTheLimit()
    {
        var parameters = Parameters(0);
        var reducer = new GradientAllReducer(new SingleProcessCommunicator(), parameters, bucketElements: 20);
        var flat = reducer.Buckets.SelectMany(b => b).ToArray();
        Assert.Equal(parameters.Reverse(), flat);
        foreach (var bucket in reducer.Buckets)
            Assert.True(bucket.Count == 1 || bucket.Sum(p => p.Count) <= 20,
                $"bucket of {bucket.Count} tensors holds {bucket.Sum(p => p.Count)} > 20 elements");
        // [7,3] = 21 alone (larger than a bucket), then [2], then [300] alone, then [3,4] + [5] = 17.
        Assert.Equal([1, 1, 1, 2], reducer.Buckets.Select(b => b.Count));
    }

    [Fact]
    public void AGroupOfOneLeavesGradientsUntouched()
    {
        var parameters = Parameters(0);
        SetGradients(parameters, 3);
        var before = parameters.Select(p => p.Grad!.Data.ToArray()).ToArray();
        new GradientAllReducer(new SingleProcessCommunicator(), parameters, bucketElements: 16).AverageGradients();
        for (int i = 0; i < parameters.Length; i++) Assert.Equal(before[i], parameters[i].Grad!.Data.ToArray());
    }

    [Theory]
    [InlineData(2, 16)]
    [InlineData(3, 1000)]
    [InlineData(4, 1)]
    public void EveryRankEndsWithTheMeanGradient(int ranks, int bucketElements)
    {
        var results = ThreadGroupCommunicator.Run(ranks, comm =>
        {
            var parameters = Parameters(comm.Rank);
            SetGradients(parameters, comm.Rank);
            var reducer = new GradientAllReducer(comm, parameters, bucketElements);
            reducer.AverageGradients();
            reducer.AverageGradients(); // a second round averages equal values: unchanged
            return parameters.Select(p => p.Grad!.Data.ToArray()).ToArray();
        });
        for (int i = 0; i < Shapes.Length; i++)
        {
            var expected = new float[results[0][i].Length];
            for (int j = 0; j < expected.Length; j++)
                expected[j] = Enumerable.Range(0, ranks).Average(r => r * 10 + i + j * 0.25f);
            for (int r = 0; r < ranks; r++) TensorAssert.Close(expected, results[r][i], Atol, Rtol, $"parameter {i} on rank {r}");
        }
    }

    [Fact]
    public void AParameterWithoutAGradientCountsAsZeros()
    {
        var results = ThreadGroupCommunicator.Run(2, comm =>
        {
            var parameters = Parameters(comm.Rank);
            if (comm.Rank == 0) SetGradients(parameters, 1); // rank 1's gradients were never created
            new GradientAllReducer(comm, parameters, bucketElements: 64).AverageGradients();
            return parameters.Select(p => p.Grad!.Data.ToArray()).ToArray();
        });
        for (int i = 0; i < Shapes.Length; i++)
        {
            var expected = results[0][i].Select((_, j) => (10 + i + j * 0.25f) / 2).ToArray();
            TensorAssert.Close(expected, results[1][i], Atol, Rtol, $"parameter {i}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(40)]
    [InlineData(100_000)]
    public void BucketsStartDuringBackwardInOrderAndTheMeanIsTheSame(int bucketElements)
    {
        // Each rank back-propagates a loss over its parameters: the product of the first is taken last, so backward
        // finishes the parameters in reverse order, the order of the buckets.
        static Tensor Loss(Tensor[] parameters, int rank)
        {
            var loss = Tensor.Scalar(0f);
            foreach (var p in parameters) loss = loss + (p * p).Sum() * (rank + 1f);
            return loss;
        }

        var results = ThreadGroupCommunicator.Run(2, comm =>
        {
            var log = new List<string>();
            var recording = new RecordingCommunicator(comm, log);
            var plain = Parameters(0);
            var reducer = new GradientAllReducer(recording, plain, bucketElements);
            Loss(plain, comm.Rank).Backward();
            log.Add("backward");
            reducer.AverageGradients();
            var plainLog = log.ToArray();
            log.Clear();

            var overlapped = Parameters(0);
            reducer = new GradientAllReducer(recording, overlapped, bucketElements);
            Loss(overlapped, comm.Rank).Backward(null, reducer.GradientReady);
            log.Add("backward");
            reducer.AverageGradients();
            return (Plain: plain.Select(p => p.Grad!.Data.ToArray()).ToArray(), PlainLog: plainLog,
                    Overlapped: overlapped.Select(p => p.Grad!.Data.ToArray()).ToArray(), Log: log.ToArray());
        });
        foreach (var r in results)
        {
            Assert.Equal(r.Plain, r.Overlapped);                                      // bit for bit
            Assert.Equal(r.PlainLog.Where(e => e != "backward"), r.Log.Where(e => e != "backward"));
            Assert.Equal("backward", r.PlainLog[0]);                                  // before: all started after
            // Now every bucket starts while backward runs, the last one after the sweep's last rule.
            Assert.Equal(r.Log.Length - 1, Array.IndexOf(r.Log, "backward"));
            Assert.True(r.Log.Length > 2 || bucketElements > 1000, "several buckets expected");
        }
    }

    /// <summary>Another communicator, writing "start N" (the floats of the buffer) to a log when a reduction starts.</summary>
    sealed class RecordingCommunicator(ICommunicator inner, List<string> log) : ICommunicator
    {
        public int Rank => inner.Rank;
        public int Size => inner.Size;
        public void Broadcast(Span<float> data, int root) => inner.Broadcast(data, root);
        public void Broadcast(Span<int> data, int root) => inner.Broadcast(data, root);
        public void AllReduceSum(Span<float> data) => inner.AllReduceSum(data);
        public void WaitAll() => inner.WaitAll();
        public void Progress() => inner.Progress();
        public void Abort(int code) => inner.Abort(code);
        public void Dispose() => inner.Dispose();

        public void StartAllReduceSum(Memory<float> data)
        {
            log.Add($"start {data.Length}");
            inner.StartAllReduceSum(data);
        }
    }

    [Fact]
    public void BroadcastParametersCopiesRankZerosValues()
    {
        var results = ThreadGroupCommunicator.Run(3, comm =>
        {
            var parameters = Parameters(comm.Rank);
            DataParallel.BroadcastParameters(comm, parameters);
            return parameters.Select(p => p.Data.ToArray()).ToArray();
        });
        var rankZero = Parameters(0);
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < Shapes.Length; i++) Assert.Equal(rankZero[i].Data.ToArray(), results[r][i]);
    }

    [Theory]
    [InlineData(8, 2, new[] { 0, 4, 4, 4 })]
    [InlineData(5, 2, new[] { 0, 3, 3, 2 })]
    [InlineData(1, 3, new[] { 0, 1, 1, 0, 1, 0 })]
    public void ShardsSplitTheGlobalBatchIntoContiguousRowsInRankOrder(int rows, int size, int[] expected)
    {
        var shards = Enumerable.Range(0, size).SelectMany(r =>
        {
            var (first, count) = DataParallel.Shard(rows, r, size);
            return new[] { first, count };
        });
        Assert.Equal(expected, shards);
    }

    [Fact]
    public void ShardRejectsARankOutsideTheGroup()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => DataParallel.Shard(8, 2, 2));
        Assert.Contains("[0, 2)", e.Message);
    }

    [Fact]
    public void APlainProcessGetsTheSingleProcessGroupWithoutLoadingMpi()
    {
        using var comm = DistributedLaunch.Start(required: false);
        Assert.IsType<SingleProcessCommunicator>(comm);
        Assert.Equal((0, 1), (comm.Rank, comm.Size));
    }

    [Fact]
    public void WithoutOpenMpiStartingSaysHowToInstallIt()
    {
        var e = Assert.Throws<DistributedException>(() => MpiCommunicator.Start(["libmpi-not-installed.so.40"]));
        Assert.Contains("libmpi-not-installed.so.40", e.Message);
        Assert.Contains("apt-get install openmpi-bin libopenmpi-dev", e.Message);
        Assert.Contains("mpirun -np N", e.Message);
    }
}
