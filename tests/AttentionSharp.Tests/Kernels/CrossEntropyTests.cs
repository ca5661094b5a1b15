using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class CrossEntropyTests
{
    const int Ignore = -100;
    // Losses and lse are O(100) for logits of ±80: a few ulp of that, plus a float row sum for the smoothing mean.
    const double LossAbsTol = 1e-4, LossRelTol = 1e-6;
    // Gradient terms are probabilities (exp within ≈ 2 ulp) scaled by O(1) upstream gradients.
    const double GradientAbsTol = 2e-6, GradientRelTol = 1e-5;
    // Central differences of the double reference vs the float kernel.
    const double FiniteDifferenceAbsTol = 1e-5;

    /// <summary>Targets in range, with every fourth row ignored.</summary>
    static int[] Targets(Random rng, int rows, int vocab) =>
        Enumerable.Range(0, rows).Select(r => r % 4 == 1 ? Ignore : rng.Next(vocab)).ToArray();

    [Fact]
    public void MatchesReference()
    {
        foreach (var (rows, vocab) in RowShapes().Where(s => s.Cols > 0).Append((5, 1)).Append((6, 300)))
            foreach (float smoothing in new[] { 0f, 0.1f })
            {
                var rng = new Random(vocab * 2 + rows);
                var logits = Uniform(rng, rows * vocab, 80f);
                var targets = Targets(rng, rows, vocab);
                var (loss, lse, losse, lsee) = (new float[rows], new float[rows], new float[rows], new float[rows]);
                CrossEntropy.Forward(loss, lse, logits, targets, rows, vocab, Ignore, smoothing);
                Ref.CrossEntropy.Forward(losse, lsee, logits, targets, rows, vocab, Ignore, smoothing);
                string what = $"cross-entropy {rows}×{vocab} ε={smoothing}";
                Close(losse, loss, LossAbsTol, LossRelTol, what + " loss");
                Close(lsee, lse, LossAbsTol, LossRelTol, what + " lse");
                for (int r = 0; r < rows; r++) if (targets[r] == Ignore) Assert.Equal(0f, loss[r]);

                var dloss = Uniform(rng, rows, 1f);
                var d = Uniform(rng, logits.Length, 1f);
                var de = (float[])d.Clone();
                CrossEntropy.Backward(d, dloss, logits, lsee, targets, rows, vocab, Ignore, smoothing);
                Ref.CrossEntropy.Backward(de, dloss, logits, lsee, targets, rows, vocab, Ignore, smoothing);
                Close(de, d, GradientAbsTol, GradientRelTol, what + " dlogits");
            }
    }

    [Theory]
    [InlineData(3, 1, 0f)]
    [InlineData(4, 9, 0f)]
    [InlineData(4, 9, 0.2f)]
    [InlineData(2, 40, 0.1f)]
    public void BackwardMatchesFiniteDifferences(int rows, int vocab, float smoothing)
    {
        var rng = new Random(rows * 7 + vocab);
        var logits = Uniform(rng, rows * vocab, 4f);
        var targets = Targets(rng, rows, vocab);
        var dloss = Uniform(rng, rows, 1f);
        double[] xd = ToDouble(logits), dld = ToDouble(dloss);
        var (ld, lsed) = (new double[rows], new double[rows]);
        double[] numeric = NumericGradient(v =>
        {
            Ref.CrossEntropy.Forward(ld, lsed, v, targets, rows, vocab, Ignore, smoothing);
            return Dot(dld, ld);
        }, xd);
        var (loss, lse) = (new float[rows], new float[rows]);
        CrossEntropy.Forward(loss, lse, logits, targets, rows, vocab, Ignore, smoothing);
        var d = new float[logits.Length];
        CrossEntropy.Backward(d, dloss, logits, lse, targets, rows, vocab, Ignore, smoothing);
        Close(numeric, d, FiniteDifferenceAbsTol, 0, "cross-entropy dlogits vs finite differences");
    }

    [Fact]
    public void OutOfRangeTargetNamesRowAndValue()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            CrossEntropy.Forward(new float[2], new float[2], new float[6], [1, 3], 2, 3, Ignore, 0f));
        Assert.Equal("targets", ex.ParamName);
        Assert.Contains("targets[1] is 3", ex.Message);
        Assert.Throws<ArgumentException>(() =>
            Ref.CrossEntropy.Forward(new float[2], new float[2], new float[6], [-1, 0], 2, 3, Ignore, 0f));
    }
}
