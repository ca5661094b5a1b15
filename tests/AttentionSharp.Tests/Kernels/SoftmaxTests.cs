using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class SoftmaxTests
{
    // exp is within ≈ 2 ulp, and the row sum is a float sum over up to ~1000 terms.
    const double ProbabilityRelTol = 1e-5, ProbabilityAbsTol = 1e-8;
    // log-softmax values are x − lse with |x| ≤ 80, so a few ulp of 80 (≈ 8e-6 each).
    const double LogProbabilityAbsTol = 3e-5, LogProbabilityRelTol = 1e-6;
    // Backward terms are products of O(1) floats plus a float row sum of up to ~1000 terms of O(1).
    const double GradientAbsTol = 5e-5, GradientRelTol = 1e-5;
    // Central differences of the double reference agree with the analytic gradient to ≈ 1e-9; the float kernel
    // rounds its inputs and its arithmetic.
    const double FiniteDifferenceAbsTol = 1e-5;

    /// <summary>Inputs spanning ±80, with −∞ entries in row 2 and, when cols % 4 == 0, an entirely −∞ row 1.</summary>
    static float[] Logits(int rows, int cols, int seed)
    {
        var x = Uniform(new Random(seed), rows * cols, 80f);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
                if ((r == 1 && cols % 4 == 0) || (r == 2 && j % 7 == 3)) x[r * cols + j] = float.NegativeInfinity;
        return x;
    }

    [Fact]
    public void SoftmaxMatchesReference()
    {
        foreach (var (rows, cols) in RowShapes())
        {
            var x = Logits(rows, cols, cols);
            var y = new float[x.Length];
            var expected = new float[x.Length];
            Softmax.Forward(y, x, rows, cols);
            Ref.Softmax.Forward(expected, x, rows, cols);
            Close(expected, y, ProbabilityAbsTol, ProbabilityRelTol, $"softmax {rows}×{cols}");

            var rng = new Random(cols + 1);
            var dy = Uniform(rng, x.Length, 1f);
            var dx = Uniform(rng, x.Length, 1f);
            var dxExpected = (float[])dx.Clone();
            Softmax.Backward(dx, dy, expected, rows, cols);
            Ref.Softmax.Backward(dxExpected, dy, expected, rows, cols);
            Close(dxExpected, dx, GradientAbsTol, GradientRelTol, $"softmax backward {rows}×{cols}");
        }
    }

    [Fact]
    public void LogSoftmaxMatchesReference()
    {
        foreach (var (rows, cols) in RowShapes())
        {
            var x = Logits(rows, cols, cols + 7);
            var y = new float[x.Length];
            var expected = new float[x.Length];
            LogSoftmax.Forward(y, x, rows, cols);
            Ref.LogSoftmax.Forward(expected, x, rows, cols);
            Close(expected, y, LogProbabilityAbsTol, LogProbabilityRelTol, $"log-softmax {rows}×{cols}");

            var rng = new Random(cols + 2);
            var dy = Uniform(rng, x.Length, 1f);
            var dx = Uniform(rng, x.Length, 1f);
            var dxExpected = (float[])dx.Clone();
            LogSoftmax.Backward(dx, dy, expected, rows, cols);
            Ref.LogSoftmax.Backward(dxExpected, dy, expected, rows, cols);
            Close(dxExpected, dx, GradientAbsTol, GradientRelTol, $"log-softmax backward {rows}×{cols}");
        }
    }

    [Fact]
    public void FullyMaskedRowsAreZeroForSoftmaxAndMinusInfinityForLogSoftmax()
    {
        var x = new[] { float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity, 0f, float.NegativeInfinity, 1f };
        var y = new float[6];
        Softmax.Forward(y, x, 2, 3);
        Assert.Equal(new[] { 0f, 0f, 0f }, y[..3]);
        Assert.Equal(0f, y[4]);
        LogSoftmax.Forward(y, x, 2, 3);
        Assert.All(y[..3], v => Assert.Equal(float.NegativeInfinity, v));
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 7)]
    [InlineData(3, 33)]
    public void BackwardMatchesFiniteDifferences(int rows, int cols)
    {
        var rng = new Random(rows * 100 + cols);
        var x = Uniform(rng, rows * cols, 3f);
        var dy = Uniform(rng, x.Length, 1f);
        double[] xd = ToDouble(x), dyd = ToDouble(dy);

        var yd = new double[x.Length];
        double[] numeric = NumericGradient(v => { Ref.Softmax.Forward(yd, v, rows, cols); return Dot(dyd, yd); }, xd);
        var y = new float[x.Length];
        Softmax.Forward(y, x, rows, cols);
        var dx = new float[x.Length];
        Softmax.Backward(dx, dy, y, rows, cols);
        Close(numeric, dx, FiniteDifferenceAbsTol, 0, "softmax backward vs finite differences");
        Ref.Softmax.Forward(yd, xd, rows, cols);
        var dxd = new double[x.Length];
        Ref.Softmax.Backward(dxd, dyd, yd, rows, cols);
        Close(numeric, ToFloat(dxd), 1e-7, 0, "reference softmax backward vs finite differences");

        numeric = NumericGradient(v => { Ref.LogSoftmax.Forward(yd, v, rows, cols); return Dot(dyd, yd); }, xd);
        LogSoftmax.Forward(y, x, rows, cols);
        Array.Clear(dx);
        LogSoftmax.Backward(dx, dy, y, rows, cols);
        Close(numeric, dx, FiniteDifferenceAbsTol, 0, "log-softmax backward vs finite differences");
    }

    [Fact]
    public void LengthMismatchNamesTheArgument()
    {
        var ex = Assert.Throws<ArgumentException>(() => Softmax.Forward(new float[5], new float[6], 2, 3));
        Assert.Equal("y", ex.ParamName);
        Assert.Contains("expected 6", ex.Message);
    }

    static float[] ToFloat(double[] d) => Array.ConvertAll(d, v => (float)v);
}
