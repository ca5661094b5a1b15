using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class ColumnSumTests
{
    [Fact]
    public void MatchesReferenceForEveryTail()
    {
        // The fast kernel adds each column's rows in the same order as the reference: only the final add into sums
        // is shared, so the two agree exactly.
        foreach (var (rows, cols) in RowShapes().Append((5000, 37)).Append((700, 130)))
        {
            var rng = new Random(rows * 1009 + cols);
            var x = Uniform(rng, rows * cols, 1f);
            var sums = Uniform(rng, cols, 1f);
            var expected = (float[])sums.Clone();
            ColumnSum.Accumulate(sums, x, rows);
            Ref.ColumnSum.Accumulate(expected, x, rows);
            Close(expected, sums, 0, 0, $"column sums {rows}×{cols}");
        }
    }

    [Fact]
    public void WrongLengthIsNamed()
    {
        var e = Assert.Throws<ArgumentException>(() => ColumnSum.Accumulate(new float[4], new float[10], 3));
        Assert.Contains("x", e.ParamName);
    }
}
