using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class EmbeddingTests
{
    // Both add the same floats in the same order; the bound only allows for fused vs separate rounding.
    const double GradientAbsTol = 1e-6, GradientRelTol = 1e-6;

    [Fact]
    public void MatchesReference()
    {
        foreach (var (count, dim) in RowShapes())
        {
            const int vocab = 11;
            var rng = new Random(dim + count);
            var table = Uniform(rng, vocab * dim, 1f);
            var ids = Enumerable.Range(0, count).Select(_ => rng.Next(vocab)).ToArray();
            var (y, ye) = (new float[count * dim], new float[count * dim]);
            Embedding.Forward(y, ids, table, vocab, dim);
            Ref.Embedding.Forward(ye, ids, table, vocab, dim);
            Close(ye, y, 0, 0, $"embedding {count}×{dim}");

            var dy = Uniform(rng, count * dim, 1f);
            var dt = Uniform(rng, vocab * dim, 1f);
            var dte = (float[])dt.Clone();
            Embedding.Backward(dt, dy, ids, vocab, dim);
            Ref.Embedding.Backward(dte, dy, ids, vocab, dim);
            Close(dte, dt, GradientAbsTol, GradientRelTol, $"embedding backward {count}×{dim}");
        }
    }

    [Fact]
    public void AbsentIdsGiveZeroRowsAndReceiveNoGradient()
    {
        // Gathering rows of activations (Tensor.GatherRows): id −1 is a row of zeros, skipped by the scatter-add.
        foreach (var (count, dim) in RowShapes())
        {
            const int vocab = 7;
            var rng = new Random(3 * dim + count);
            var table = Uniform(rng, vocab * dim, 1f);
            var ids = Enumerable.Range(0, count).Select(_ => rng.Next(-1, vocab)).ToArray();
            var y = Uniform(rng, count * dim, 1f);
            var ye = new float[count * dim];
            Embedding.Forward(y, ids, table, vocab, dim, allowAbsent: true);
            Ref.Embedding.Forward(ye, ids, table, vocab, dim, allowAbsent: true);
            Close(ye, y, 0, 0, $"gather {count}×{dim}");
            for (int i = 0; i < count; i++)
                if (ids[i] == Embedding.Absent) Assert.All(y.AsSpan(i * dim, dim).ToArray(), v => Assert.Equal(0f, v));

            var dy = Uniform(rng, count * dim, 1f);
            var dt = Uniform(rng, vocab * dim, 1f);
            var dte = (float[])dt.Clone();
            Embedding.Backward(dt, dy, ids, vocab, dim, allowAbsent: true);
            Ref.Embedding.Backward(dte, dy, ids, vocab, dim, allowAbsent: true);
            Close(dte, dt, GradientAbsTol, GradientRelTol, $"gather backward {count}×{dim}");
        }
    }

    [Fact]
    public void BackwardIsTheGradientOfTheLookup()
    {
        // y = table[ids] is linear in the table, so dL/dtable[v, j] = Σ_{i: ids[i] = v} dy[i, j] exactly.
        int[] ids = [2, 0, 2, 2];
        var dy = Uniform(new Random(4), ids.Length * 3, 1f);
        var dt = new float[3 * 3];
        Embedding.Backward(dt, dy, ids, 3, 3);
        for (int j = 0; j < 3; j++)
        {
            Assert.Equal(dy[3 + j], dt[0 * 3 + j]);
            Assert.Equal(0f, dt[1 * 3 + j]);
            Assert.Equal(dy[0 + j] + dy[6 + j] + dy[9 + j], dt[2 * 3 + j], 6);
        }
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        const int vocab = 5, dim = 3;
        int[] ids = [4, 1, 4, 0, 1, 4];
        var rng = new Random(8);
        var (table, dy) = (Uniform(rng, vocab * dim, 1f), Uniform(rng, ids.Length * dim, 1f));
        // loss = Σ dy·table[ids], with the reference lookup on a float copy of the perturbed table
        double[] numeric = NumericGradient(v =>
        {
            var y = new float[ids.Length * dim];
            Ref.Embedding.Forward(y, ids, Array.ConvertAll(v, e => (float)e), vocab, dim);
            return Dot(ToDouble(dy), ToDouble(y));
        }, ToDouble(table), h: 1e-3);
        var dtable = new float[vocab * dim];
        Embedding.Backward(dtable, dy, ids, vocab, dim);
        // Steps of 1e-3 on float inputs: rounding the perturbed table costs ≈ 1e-4 relative.
        Close(numeric, dtable, 1e-3, 1e-3, "embedding dtable vs finite differences");
    }

    [Fact]
    public void OutOfRangeIdNamesPositionIdAndVocabulary()
    {
        var ex = Assert.Throws<ArgumentException>(() => Embedding.Forward(new float[6], [1, 5, 0], new float[8], 4, 2));
        Assert.Equal("ids", ex.ParamName);
        Assert.Contains("ids[1] is 5", ex.Message);
        Assert.Contains("vocab = 4", ex.Message);
        Assert.Throws<ArgumentException>(() => Embedding.Backward(new float[8], new float[4], [-1, 0], 4, 2));
    }
}
