using AttentionSharp.Data;

namespace AttentionSharp.Tests.Data;

public class TokenBatcherTests
{
    static readonly int[] Stream = Enumerable.Range(0, 100).ToArray(); // token i is i, so a window's start is its first id

    [Fact]
    public void RandomBatchesAreWindowsWithTargetsShiftedByOne()
    {
        var batcher = new TokenBatcher(Stream, batchSize: 4, contextLength: 8);
        var batch = batcher.NextRandom(new Generator(1));
        Assert.Equal((4, 8, 32, 32), (batch.BatchSize, batch.ContextLength, batch.X.Length, batch.Y.Length));
        for (int b = 0; b < 4; b++)
            for (int t = 0; t < 8; t++)
            {
                int i = b * 8 + t;
                Assert.Equal(batch.X[b * 8] + t, batch.X[i]); // a contiguous window
                Assert.Equal(batch.X[i] + 1, batch.Y[i]);     // y is x shifted by one
                Assert.InRange(batch.Y[i], 1, 99);
            }
    }

    [Fact]
    public void SameSeedSameBatches()
    {
        var batcher = new TokenBatcher(Stream, 4, 8);
        var g1 = new Generator(7);
        var g2 = new Generator(7);
        for (int step = 0; step < 3; step++)
            Assert.Equal(batcher.NextRandom(g1).X, batcher.NextRandom(g2).X);
        Assert.NotEqual(batcher.NextRandom(new Generator(7)).X, batcher.NextRandom(new Generator(8)).X);
    }

    [Fact]
    public void RandomStartsReachBothEnds()
    {
        var batcher = new TokenBatcher(Stream[..12], batchSize: 64, contextLength: 10);
        var batch = batcher.NextRandom(new Generator(3));
        var starts = Enumerable.Range(0, 64).Select(b => batch.X[b * 10]).ToHashSet();
        Assert.Equal([0, 1], starts.Order()); // N − T = 2 possible starts
    }

    [Fact]
    public void SequentialWindowsCoverTheStreamOnce()
    {
        var batcher = new TokenBatcher(Stream, batchSize: 5, contextLength: 8);
        var batches = batcher.Sequential().ToList();
        Assert.Equal(12, batcher.SequentialWindowCount); // ⌊99 / 8⌋
        Assert.Equal([5, 5, 2], batches.Select(b => b.BatchSize));
        var x = batches.SelectMany(b => b.X).ToArray();
        var y = batches.SelectMany(b => b.Y).ToArray();
        Assert.Equal(Enumerable.Range(0, 96), x);
        Assert.Equal(Enumerable.Range(1, 96), y);
    }

    [Fact]
    public void TooShortAStreamIsAClearError()
    {
        var error = Assert.Throws<DataSourceException>(() => new TokenBatcher(Stream[..5], 2, 5));
        Assert.Equal("The training text has 5 tokens; a context of 5 needs at least 6.", error.Message);
        var validation = Assert.Throws<DataSourceException>(() => new TokenBatcher(Stream[..3], 2, 8, "validation text"));
        Assert.StartsWith("The validation text has 3 tokens", validation.Message);
        _ = new TokenBatcher(Stream[..6], 2, 5); // exactly T + 1 is enough
    }
}
