using AttentionSharp.Training;

namespace AttentionSharp.Tests.Training;

/// <summary>Lines of side-by-side runs: whole, prefixed, never interleaved.</summary>
public class PrefixedWriterTests
{
    [Fact]
    public void EachLineIsWrittenWholeWithItsPrefix()
    {
        var inner = new StringWriter { NewLine = "\n" };
        var writer = new PrefixedWriter(inner, "[2] ");
        writer.Write("step 1");
        Assert.Equal("", inner.ToString());                                    // held until the line ends
        writer.Write(" of 3\r\n");
        writer.WriteLine("done");
        writer.WriteLine();
        writer.Write("\rredrawn\r");
        writer.Write('x');
        writer.Flush();
        Assert.Equal("[2] step 1 of 3\n[2] done\n\n[2] redrawn\n[2] x\n", inner.ToString());
    }

    [Fact]
    public void WritersSharingASynchronizedOutputNeverInterleaveWithinALine()
    {
        var inner = new StringWriter { NewLine = "\n" };
        var shared = TextWriter.Synchronized(inner);
        var threads = Enumerable.Range(1, 4).Select(k => new Thread(() =>
        {
            var writer = new PrefixedWriter(shared, $"[{k}] ");
            for (int i = 0; i < 500; i++)
            {
                writer.Write($"line {i} ");
                writer.Write('o');
                writer.WriteLine("f " + k);
            }
        })).ToList();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        var lines = inner.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2000, lines.Length);
        foreach (var line in lines)
        {
            var k = line[1] - '0';
            Assert.Matches($@"^\[{k}\] line \d+ of {k}$", line);
        }
        for (int k = 1; k <= 4; k++)
            Assert.Equal(Enumerable.Range(0, 500).Select(i => $"[{k}] line {i} of {k}"), lines.Where(l => l[1] - '0' == k));
    }
}
