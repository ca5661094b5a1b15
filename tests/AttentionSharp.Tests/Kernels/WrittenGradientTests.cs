using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;

namespace AttentionSharp.Tests.Kernels;

/// <summary>
/// Backward kernels that can write their input's gradient instead of adding to it (a gradient buffer's first writer
/// skips the zeros): writing into garbage gives exactly what adding to zeros gives, bit for bit.
/// </summary>
[Trait("Category", "Kernels")]
public class WrittenGradientTests
{
    static float[] Garbage(int n) => Enumerable.Range(0, n).Select(i => i % 3 == 0 ? float.NaN : 1e30f * (i % 7 - 3)).ToArray();

    static void Same(float[] expected, float[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"{what}: element {i} is {actual[i]:R} written, {expected[i]:R} added to zeros");
    }

    [Fact]
    public void LayerNormWritesWhatItAddsToZeros()
    {
        foreach (var (rows, cols) in RowShapes().Where(s => s.Cols > 0))
        {
            var rng = new Random(rows * 31 + cols);
            var x = Uniform(rng, rows * cols, 2f); var dy = Uniform(rng, rows * cols, 1f); var w = Uniform(rng, cols, 1f);
            var mean = new float[rows]; var rstd = new float[rows]; var y = new float[rows * cols];
            LayerNorm.Forward(y, mean, rstd, x, w, default, rows, cols, 1e-5f);
            var added = new float[rows * cols];
            LayerNorm.Backward(added, default, default, dy, x, w, mean, rstd, rows, cols);
            var written = Garbage(rows * cols);
            LayerNorm.Backward(written, default, default, dy, x, w, mean, rstd, rows, cols, accumulateInput: false);
            Same(added, written, $"LayerNorm {rows}×{cols}");
        }
    }

    [Fact]
    public void CrossEntropyWritesWhatItAddsToZerosIgnoredRowsIncluded()
    {
        foreach (var (rows, vocab) in RowShapes().Where(s => s.Cols > 0))
            foreach (float smoothing in new[] { 0f, 0.1f })
            {
                var rng = new Random(rows * 17 + vocab);
                var logits = Uniform(rng, rows * vocab, 8f);
                var targets = Enumerable.Range(0, rows).Select(r => r % 3 == 1 ? -100 : rng.Next(vocab)).ToArray();
                var loss = new float[rows]; var lse = new float[rows];
                CrossEntropy.Forward(loss, lse, logits, targets, rows, vocab, -100, smoothing);
                var dRow = Uniform(rng, rows, 1f);
                var added = new float[rows * vocab];
                CrossEntropy.Backward(added, dRow, logits, lse, targets, rows, vocab, -100, smoothing);
                var written = Garbage(rows * vocab);
                CrossEntropy.Backward(written, dRow, logits, lse, targets, rows, vocab, -100, smoothing, accumulate: false);
                Same(added, written, $"CrossEntropy {rows}×{vocab}, ε = {smoothing}");
            }
    }

    [Theory]
    [InlineData(GeluApproximation.Tanh)]
    [InlineData(GeluApproximation.None)]
    public void GeluWritesWhatItAddsToZeros(GeluApproximation approximation)
    {
        foreach (int n in new[] { 1, 7, 8, 9, 17, 33, 100, 40_000 })
        {
            var rng = new Random(n);
            var x = Uniform(rng, n, 6f); var dy = Uniform(rng, n, 1f);
            var added = new float[n];
            Gelu.Backward(added, dy, x, approximation);
            var written = Garbage(n);
            Gelu.Backward(written, dy, x, approximation, accumulate: false);
            Same(added, written, $"GELU {approximation}, n = {n}");
        }
    }

    /// <summary>
    /// Through autograd: an input read by two ops gets the first op's gradient written and the second's added, whichever
    /// runs first, and equals the sum of the two computed separately.
    /// </summary>
    [Fact]
    public void AGradientWithTwoWritersIsTheirSum()
    {
        var rng = new Generator(3);
        var x = Tensor.Normal(rng, 0f, 1f, [6, 10]);
        x.RequiresGrad = true;
        var w1 = Tensor.Normal(rng, 0f, 1f, [4, 10]); var w2 = Tensor.Normal(rng, 0f, 1f, [4, 10]);
        var g = Tensor.Normal(rng, 0f, 1f, [4]); var b = Tensor.Normal(rng, 0f, 1f, [10]);
        float[] GradOf(Func<Tensor, Tensor> f)
        {
            x.Grad = null;
            f(x).Sum().Backward();
            return x.Grad!.ToArray();
        }
        Tensor First(Tensor t) => Tensor.LayerNormLinear(t, b, null, 1e-5f, w1, null);
        Tensor Second(Tensor t) => Tensor.GeluLinear(t, w2, null, GeluApproximation.Tanh);
        var one = GradOf(First); var two = GradOf(Second);
        var both = GradOf(t => First(t) + Second(t));
        for (int i = 0; i < both.Length; i++)
            Assert.True(Math.Abs(both[i] - (one[i] + two[i])) <= 1e-5f * (1 + Math.Abs(both[i])),
                $"element {i}: {both[i]} with both ops, {one[i] + two[i]} summed");
    }
}
