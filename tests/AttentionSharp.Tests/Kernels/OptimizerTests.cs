using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class OptimizerTests
{
    // A handful of float operations per element, compared with the same formula in double.
    const double StateAbsTol = 1e-6, StateRelTol = 1e-5;

    [Fact]
    public void AdamWMatchesReferenceOverThreeSteps()
    {
        foreach (int n in Lengths())
        {
            var rng = new Random(n);
            var p = Uniform(rng, n, 1f);
            var (m, v) = (new float[n], new float[n]);
            var (pe, me, ve) = ((float[])p.Clone(), new float[n], new float[n]);
            for (int step = 1; step <= 3; step++)
            {
                var g = Uniform(rng, n, 0.5f);
                AdamW.Step(p, g, m, v, lr: 1e-2f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f, weightDecay: 0.1f, step);
                Ref.AdamW.Step(pe, g, me, ve, lr: 1e-2f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f, weightDecay: 0.1f, step);
            }
            Close(pe, p, StateAbsTol, StateRelTol, $"adamw param n={n}");
            Close(me, m, StateAbsTol, StateRelTol, $"adamw m n={n}");
            Close(ve, v, StateAbsTol, StateRelTol, $"adamw v n={n}");
        }
    }

    /// <summary>A gradient scale (clipping folded into the step) equals scaling the gradient first, to the bit.</summary>
    [Fact]
    public void AdamWGradScaleEqualsScalingTheGradientFirst()
    {
        foreach (int n in Lengths())
        {
            var rng = new Random(n + 7);
            var p = Uniform(rng, n, 1f);
            var (m, v) = (new float[n], new float[n]);
            var (ps, ms, vs) = ((float[])p.Clone(), new float[n], new float[n]);
            var (pe, me, ve) = ((float[])p.Clone(), new float[n], new float[n]);
            for (int step = 1; step <= 3; step++)
            {
                var g = Uniform(rng, n, 0.5f);
                const float scale = 0.37f;
                var scaled = g.Select(x => x * scale).ToArray();
                AdamW.Step(p, g, m, v, lr: 1e-2f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f, weightDecay: 0.1f, step, gradScale: scale);
                AdamW.Step(ps, scaled, ms, vs, lr: 1e-2f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f, weightDecay: 0.1f, step);
                Ref.AdamW.Step(pe, g, me, ve, lr: 1e-2f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f, weightDecay: 0.1f, step, gradScale: scale);
            }
            Close(ps, p, 0, 0, $"scaled first vs gradScale, param n={n}");
            Close(vs, v, 0, 0, $"scaled first vs gradScale, v n={n}");
            Close(pe, p, StateAbsTol, StateRelTol, $"adamw gradScale vs reference, param n={n}");
            Close(me, m, StateAbsTol, StateRelTol, $"adamw gradScale vs reference, m n={n}");
        }
    }

    [Theory]
    [InlineData(0f, 0f, 0f, false)]
    [InlineData(0.9f, 0f, 0f, false)]
    [InlineData(0.9f, 0.1f, 0.01f, false)]
    [InlineData(0.9f, 0f, 0.01f, true)]
    public void SgdMatchesReferenceOverThreeSteps(float momentum, float dampening, float weightDecay, bool nesterov)
    {
        foreach (int n in Lengths())
        {
            var rng = new Random(n);
            var p = Uniform(rng, n, 1f);
            var b = momentum != 0 ? new float[n] : [];
            var (pe, be) = ((float[])p.Clone(), (float[])b.Clone());
            for (int step = 1; step <= 3; step++)
            {
                var g = Uniform(rng, n, 0.5f);
                Sgd.Step(p, g, b, 0.1f, momentum, dampening, weightDecay, nesterov, firstStep: step == 1);
                Ref.Sgd.Step(pe, g, be, 0.1f, momentum, dampening, weightDecay, nesterov, firstStep: step == 1);
            }
            Close(pe, p, StateAbsTol, StateRelTol, $"sgd param n={n}");
            Close(be, b, StateAbsTol, StateRelTol, $"sgd buffer n={n}");
        }
    }

    [Fact]
    public void InvalidHyperParametersThrow()
    {
        float[] one = [1f];
        Assert.Equal("step", Assert.Throws<ArgumentOutOfRangeException>(() => AdamW.Step(one, one, [0f], [0f], 0.1f, 0.9f, 0.999f, 1e-8f, 0f, 0)).ParamName);
        Assert.Equal("beta2", Assert.Throws<ArgumentOutOfRangeException>(() => AdamW.Step(one, one, [0f], [0f], 0.1f, 0.9f, 1f, 1e-8f, 0f, 1)).ParamName);
        Assert.Equal("m", Assert.Throws<ArgumentException>(() => AdamW.Step(one, one, [], [0f], 0.1f, 0.9f, 0.999f, 1e-8f, 0f, 1)).ParamName);
        Assert.Equal("nesterov", Assert.Throws<ArgumentException>(() => Sgd.Step(one, one, [0f], 0.1f, 0.9f, 0.5f, 0f, true, true)).ParamName);
        Assert.Equal("momentumBuffer", Assert.Throws<ArgumentException>(() => Sgd.Step(one, one, [], 0.1f, 0.9f, 0f, 0f, false, true)).ParamName);
    }

    [Fact]
    public void NormsMatchReferenceAndDoNotDependOnThreadCount()
    {
        foreach (int n in Lengths().Append(1_000_003))
        {
            var x = Uniform(new Random(n), n, 3f);
            double expected = Ref.Norms.SumOfSquares(x);
            // Blocks of 4096 squares are summed in float: relative error ≈ 1e-6 at worst.
            Assert.True(Math.Abs(Norms.SumOfSquares(x) - expected) <= 1e-6 * expected, $"sum of squares n={n}");

            var (y, ye) = ((float[])x.Clone(), (float[])x.Clone());
            Norms.Scale(y, 0.37f);
            Ref.Norms.Scale(ye, 0.37f);
            Close(ye, y, 0, 0, $"scale n={n}");
        }
        var big = Uniform(new Random(2), 1_000_003, 3f);
        int saved = AttentionSharp.Kernels.Parallel.ThreadCount;
        try
        {
            AttentionSharp.Kernels.Parallel.ThreadCount = 1;
            double one = Norms.SumOfSquares(big);
            AttentionSharp.Kernels.Parallel.ThreadCount = 2;
            Assert.Equal(one, Norms.SumOfSquares(big));
        }
        finally { AttentionSharp.Kernels.Parallel.ThreadCount = saved; }
    }
}
