using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class ActivationTests
{
    // erfc within ≈ 3e-7 relative, tanh within ≈ 2e-7 absolute, exp within ≈ 2 ulp; values and slopes are O(|x|).
    const double ValueAbsTol = 5e-7, ValueRelTol = 2e-6;
    // Gradients accumulate into O(1) starting values.
    const double GradientAbsTol = 1e-6, GradientRelTol = 2e-6;
    // Central differences of the double reference vs the float kernel.
    const double FiniteDifferenceAbsTol = 1e-5;

    /// <summary>Inputs over ±12 (all branches of erf, tanh and exp), with exact zeros, a few large values and specials.</summary>
    static float[] Inputs(int n, int seed)
    {
        var x = Uniform(new Random(seed), n, 12f);
        for (int i = 0; i < n; i += 11) x[i] = 0f;
        for (int i = 5; i < n; i += 37) x[i] = i % 2 == 0 ? 90f : -95f;
        return x;
    }

    public delegate void Forward(Span<float> y, ReadOnlySpan<float> x);
    public delegate void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x);

    static void MatchesReference(string name, Forward fast, Forward reference, Backward fastBackward, Backward referenceBackward)
    {
        foreach (int n in Lengths())
        {
            var x = Inputs(n, n);
            var (y, expected) = (new float[n], new float[n]);
            fast(y, x);
            reference(expected, x);
            Close(expected, y, ValueAbsTol, ValueRelTol, $"{name} n={n}");

            var rng = new Random(n + 3);
            var dy = Uniform(rng, n, 1f);
            var dx = Uniform(rng, n, 1f);
            var dxExpected = (float[])dx.Clone();
            fastBackward(dx, dy, x);
            referenceBackward(dxExpected, dy, x);
            Close(dxExpected, dx, GradientAbsTol, GradientRelTol, $"{name} backward n={n}");
        }
    }

    [Theory]
    [InlineData(GeluApproximation.None)]
    [InlineData(GeluApproximation.Tanh)]
    public void GeluMatchesReference(GeluApproximation a) => MatchesReference($"gelu {a}",
        (y, x) => Gelu.Forward(y, x, a), (y, x) => Ref.Gelu.Forward(y, x, a),
        (dx, dy, x) => Gelu.Backward(dx, dy, x, a), (dx, dy, x) => Ref.Gelu.Backward(dx, dy, x, a));

    /// <summary>
    /// The far tails and specials of both forms, at every vector position: large |x| (where the tanh form's e^(−2u) is
    /// kept finite), zero of either sign, and NaN, which must come out NaN so that anomaly checks see it.
    /// </summary>
    [Theory]
    [InlineData(GeluApproximation.None)]
    [InlineData(GeluApproximation.Tanh)]
    public void GeluTailsAndNaNMatchReference(GeluApproximation a)
    {
        float[] specials = [-1e30f, -100f, -20f, -9.7f, -5f, -1e-3f, -0f, 0f, 1e-3f, 5f, 20f, 100f, 1e30f];
        var x = new float[37];
        for (int i = 0; i < x.Length; i++) x[i] = specials[i % specials.Length];
        x[17] = float.NaN;
        var (y, expected) = (new float[x.Length], new float[x.Length]);
        Gelu.Forward(y, x, a);
        Ref.Gelu.Forward(expected, x, a);
        var dy = new float[x.Length];
        Array.Fill(dy, 1f);
        var (dx, dxExpected) = (new float[x.Length], new float[x.Length]);
        Gelu.Backward(dx, dy, x, a);
        Ref.Gelu.Backward(dxExpected, dy, x, a);
        for (int i = 0; i < x.Length; i++)
        {
            if (i == 17)
            {
                Assert.True(float.IsNaN(y[i]) && float.IsNaN(dx[i]), $"GELU({a}) of NaN gave {y[i]}, gradient {dx[i]}");
                continue;
            }
            Assert.True(Math.Abs(y[i] - expected[i]) <= 1e-6 + 1e-6 * Math.Abs(expected[i]), $"GELU({a})({x[i]}) = {y[i]}, reference {expected[i]}");
            Assert.True(Math.Abs(dx[i] - dxExpected[i]) <= 1e-6, $"GELU'({a})({x[i]}) = {dx[i]}, reference {dxExpected[i]}");
        }
    }

    /// <summary>
    /// GELU and its slope in one pass (the fused GELU + Linear op's backward) give <see cref="Gelu.Forward"/>'s bits, and
    /// times dy <see cref="Gelu.Backward"/>'s, at every length and position, over the tails and for NaN.
    /// </summary>
    [Theory]
    [InlineData(GeluApproximation.None)]
    [InlineData(GeluApproximation.Tanh)]
    public void GeluWithItsSlopeGivesForwardAndBackwardBits(GeluApproximation a)
    {
        float[] specials = [-1e30f, -100f, -20f, -9.7f, -5f, -1e-3f, -0f, 0f, 1e-3f, 5f, 20f, 100f, 1e30f, float.NaN];
        foreach (int n in Lengths())
        {
            var x = Inputs(n, n);
            for (int i = 0; i < n; i += 3) x[i] = specials[i / 3 % specials.Length];
            var (y, slope, expected) = (new float[n], new float[n], new float[n]);
            Gelu.ForwardAndDerivative(y, slope, x, a);
            Gelu.Forward(expected, x, a);
            var dy = Uniform(new Random(n + 7), n, 1f);
            var dx = new float[n];
            Gelu.Backward(dx, dy, x, a, accumulate: false);
            for (int i = 0; i < n; i++)
            {
                Assert.True(SameBits(expected[i], y[i]), $"GELU({a})({x[i]}) = {y[i]}, Forward {expected[i]} (n={n})");
                Assert.True(SameBits(dx[i], dy[i] * slope[i]),
                    $"GELU'({a})({x[i]})·{dy[i]} = {dy[i] * slope[i]}, Backward {dx[i]} (n={n})");
            }
        }

        static bool SameBits(float a, float b) =>
            (float.IsNaN(a) && float.IsNaN(b)) || BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b);
    }

    [Fact]
    public void ReluMatchesReference() => MatchesReference("relu", Relu.Forward, Ref.Relu.Forward, Relu.Backward, Ref.Relu.Backward);

    [Fact]
    public void SiluMatchesReference() => MatchesReference("silu", Silu.Forward, Ref.Silu.Forward, Silu.Backward, Ref.Silu.Backward);

    [Fact]
    public void SwiGluMatchesReference()
    {
        foreach (int n in Lengths())
        {
            var gate = Inputs(n, n);
            var up = Uniform(new Random(n + 1), n, 3f);
            var (y, expected) = (new float[n], new float[n]);
            SwiGlu.Forward(y, gate, up);
            Ref.SwiGlu.Forward(expected, gate, up);
            Close(expected, y, ValueAbsTol, ValueRelTol, $"swiglu n={n}");

            var rng = new Random(n + 5);
            var dy = Uniform(rng, n, 1f);
            var (dg, du) = (Uniform(rng, n, 1f), Uniform(rng, n, 1f));
            var (dge, due) = ((float[])dg.Clone(), (float[])du.Clone());
            SwiGlu.Backward(dg, du, dy, gate, up);
            Ref.SwiGlu.Backward(dge, due, dy, gate, up);
            Close(dge, dg, GradientAbsTol, GradientRelTol, $"swiglu dgate n={n}");
            Close(due, du, GradientAbsTol, GradientRelTol, $"swiglu dup n={n}");
        }
    }

    [Theory]
    [InlineData(GeluApproximation.None)]
    [InlineData(GeluApproximation.Tanh)]
    public void GeluBackwardMatchesFiniteDifferences(GeluApproximation a) =>
        ElementWiseFiniteDifferences(v => Ref.Gelu.Value(v, a), (dx, dy, x) => Gelu.Backward(dx, dy, x, a));

    [Fact]
    public void SiluBackwardMatchesFiniteDifferences() => ElementWiseFiniteDifferences(Ref.Silu.Value, Silu.Backward);

    [Fact]
    public void ReluBackwardMatchesFiniteDifferencesAwayFromZero() =>
        ElementWiseFiniteDifferences(v => Math.Max(v, 0), Relu.Backward);

    static void ElementWiseFiniteDifferences(Func<double, double> f, Backward backward)
    {
        // Points across the interesting range, none closer than the step to ReLU's kink.
        var x = Enumerable.Range(0, 41).Select(i => -6f + 0.3f * i + 0.01f).ToArray();
        var dy = Uniform(new Random(9), x.Length, 1f);
        double[] xd = ToDouble(x), dyd = ToDouble(dy);
        double[] numeric = NumericGradient(v => { double s = 0; for (int i = 0; i < v.Length; i++) s += dyd[i] * f(v[i]); return s; }, xd);
        var dx = new float[x.Length];
        backward(dx, dy, x);
        Close(numeric, dx, FiniteDifferenceAbsTol, 0, "element-wise backward vs finite differences");
    }

    [Fact]
    public void SwiGluBackwardMatchesFiniteDifferences()
    {
        const int n = 37;
        var rng = new Random(12);
        var (gate, up, dy) = (Uniform(rng, n, 6f), Uniform(rng, n, 2f), Uniform(rng, n, 1f));
        double[] gd = ToDouble(gate), ud = ToDouble(up), dyd = ToDouble(dy);
        // loss = Σ dy·silu(gate)·up, from the reference's double silu
        double Loss(double[] g, double[] u)
        {
            double s = 0;
            for (int i = 0; i < n; i++) s += dyd[i] * Ref.Silu.Value(g[i]) * u[i];
            return s;
        }
        double[] numericGate = NumericGradient(v => Loss(v, ud), gd), numericUp = NumericGradient(v => Loss(gd, v), ud);
        var (dgate, dup) = (new float[n], new float[n]);
        SwiGlu.Backward(dgate, dup, dy, gate, up);
        Close(numericGate, dgate, FiniteDifferenceAbsTol, 0, "swiglu dgate vs finite differences");
        Close(numericUp, dup, FiniteDifferenceAbsTol, 0, "swiglu dup vs finite differences");
    }

    [Fact]
    public void ReluGradientAtZeroIsZero()
    {
        var dx = new float[3];
        Relu.Backward(dx, [1f, 1f, 1f], [-0f, 0f, 1e-30f]);
        Assert.Equal(new[] { 0f, 0f, 1f }, dx);
    }

    /// <summary>
    /// The erf form on a dense grid over ±12, every ten-thousandth, against x·Φ(x) in double, relative to the value:
    /// erfc keeps Φ's relative accuracy in the left tail (GELU(−8) ≈ −5e-15), where ½(1 + erf) would have lost it all.
    /// The tolerance grows as x², Φ's own condition number there (x/√2 is rounded to float before erfc reads it).
    /// </summary>
    [Fact]
    public void GeluErfFormIsAccurateRelativeToItsValueOnADenseGrid()
    {
        var x = new float[240_001];
        for (int i = 0; i < x.Length; i++) x[i] = -12f + i * 1e-4f;
        var (y, dx, dy) = (new float[x.Length], new float[x.Length], new float[x.Length]);
        Array.Fill(dy, 1f);
        Gelu.Forward(y, x, GeluApproximation.None);
        Gelu.Backward(dx, dy, x, GeluApproximation.None, accumulate: false);
        double worst = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i], expected = v * Ref.Gelu.Cdf(v);
            double error = Math.Abs(y[i] - expected) / Math.Max(Math.Abs(expected), 1e-30);
            double tolerance = 1e-6 + 2e-7 * v * v;
            Assert.True(error <= tolerance, $"GELU({v:R}) = {y[i]:R}, reference {expected:R}: relative error {error:G3}");
            worst = Math.Max(worst, error / tolerance);
            // Φ(x) + x·φ(x), the same way
            double slope = Ref.Gelu.Cdf(v) + v * Math.Exp(-0.5 * v * v) / Math.Sqrt(2 * Math.PI);
            Assert.True(Math.Abs(dx[i] - slope) <= 1e-6 * Math.Max(1, Math.Abs(slope)) + tolerance * Math.Abs(Ref.Gelu.Cdf(v)),
                $"GELU'({v:R}) = {dx[i]:R}, reference {slope:R}");
        }
        Assert.True(worst > 0);   // the grid was compared, not skipped
    }

    [Fact]
    public void ReferenceErfIsAccurate()
    {
        // erf values to 16 digits, checked to 1e-15 (Abramowitz & Stegun, Table 7.1; DLMF 7.2).
        Assert.Equal(0.5204998778130465, Ref.Gelu.Erf(0.5), tolerance: 1e-15);
        Assert.Equal(0.8427007929497149, Ref.Gelu.Erf(1.0), tolerance: 1e-15);
        Assert.Equal(-0.9953222650189527, Ref.Gelu.Erf(-2.0), tolerance: 1e-15);
        Assert.Equal(0.9999999845827421, Ref.Gelu.Erf(4.0), tolerance: 1e-15);
        // Φ in the left tail, relative (DLMF 7.2: erfc 3 = 2.209049699858544e-5, erfc 6 = 2.151973671249892e-17).
        Assert.Equal(1, Ref.Gelu.Cdf(-3 * Math.Sqrt(2)) / (0.5 * 2.209049699858544e-5), tolerance: 1e-13);
        Assert.Equal(1, Ref.Gelu.Cdf(-6 * Math.Sqrt(2)) / (0.5 * 2.151973671249892e-17), tolerance: 1e-13);
        Assert.Equal(0.5 * (1 + Ref.Gelu.Erf(0.5 / Math.Sqrt(2))), Ref.Gelu.Cdf(0.5), tolerance: 1e-16);
    }

    [Fact]
    public void MismatchedLengthsNameTheArgument()
    {
        var ex = Assert.Throws<ArgumentException>(() => Gelu.Backward(new float[3], new float[2], new float[3], GeluApproximation.None));
        Assert.Equal("dy", ex.ParamName);
    }
}
