using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class DropoutTests
{
    // The kernel fuses dy·scale + dx into one rounding, the reference rounds twice: ≤ 1 ulp of dy·scale (|dy·scale| ≤ 10).
    const double GradientAbsTol = 2e-6;

    [Fact]
    public void MatchesReferenceExactly()
    {
        foreach (int n in Lengths())
            foreach (float p in new[] { 0f, 0.1f, 0.5f, 0.9f })
            {
                var x = Uniform(new Random(n), n, 5f);
                var (y, mask, ye, maske) = (new float[n], new byte[n], new float[n], new byte[n]);
                Dropout.Forward(y, mask, x, p, seed: 42, offset: 1000);
                Ref.Dropout.Forward(ye, maske, x, p, seed: 42, offset: 1000);
                Assert.Equal(maske, mask);
                Close(ye, y, 0, 0, $"dropout n={n} p={p}");

                var dy = Uniform(new Random(n + 1), n, 1f);
                var dx = Uniform(new Random(n + 2), n, 1f);
                var dxe = (float[])dx.Clone();
                Dropout.Backward(dx, dy, mask, p);
                Ref.Dropout.Backward(dxe, dy, mask, p);
                Close(dxe, dx, GradientAbsTol, 0, $"dropout backward n={n} p={p}");
            }
    }

    /// <summary>
    /// The flags formed four at a time equal <see cref="Dropout.Keep"/> one at a time: every count (vector tails), starts
    /// where the 64-bit counter wraps, and probabilities that are exact multiples of 2⁻²⁴ (where kept is decided by ≥).
    /// </summary>
    [Fact]
    public unsafe void KeepFlagsEqualKeepOneAtATime()
    {
        var random = new Random(5);
        var probabilities = new[] { 0f, 1f / (1 << 24), 0.1f, 0.25f, 0.5f, 4095f / 4096f, 0.9999999f };
        var starts = new[] { 0UL, 1UL, 1000UL, ulong.MaxValue - 5, (ulong)random.NextInt64() };
        var flags = new byte[64];
        foreach (float p in probabilities)
            foreach (ulong start in starts)
                for (int count = 0; count <= 41; count++)
                {
                    ulong seed = (ulong)random.NextInt64();
                    Array.Fill(flags, (byte)7);
                    fixed (byte* f = flags) Dropout.KeepFlags(seed, start, count, p, f);
                    for (int i = 0; i < count; i++)
                        Assert.True((Dropout.Keep(seed, start + (ulong)i, p) ? 1 : 0) == flags[i],
                            $"p = {p}, start = {start}, count = {count}: flag {i} is {flags[i]}");
                    for (int i = count; i < flags.Length; i++) Assert.Equal(7, flags[i]); // nothing past count
                }
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        // With the seed fixed, dropout is linear in x; the reference forward is differentiated numerically.
        const int n = 29;
        const float p = 0.4f;
        var rng = new Random(6);
        var (x, dy) = (Uniform(rng, n, 2f), Uniform(rng, n, 1f));
        double[] numeric = NumericGradient(v =>
        {
            var (y, m) = (new float[n], new byte[n]);
            Ref.Dropout.Forward(y, m, Array.ConvertAll(v, e => (float)e), p, 11, 0);
            return Dot(ToDouble(dy), ToDouble(y));
        }, ToDouble(x), h: 1e-3);
        var (yf, mask) = (new float[n], new byte[n]);
        Dropout.Forward(yf, mask, x, p, 11, 0);
        var dx = new float[n];
        Dropout.Backward(dx, dy, mask, p);
        // Steps of 1e-3 on float inputs: the float forward rounds each perturbed value, ≈ 1e-4 relative.
        Close(numeric, dx, 1e-3, 1e-3, "dropout dx vs finite differences");
    }

    [Fact]
    public void StreamIsCounterBased()
    {
        const int n = 1000;
        var x = Uniform(new Random(1), n, 1f);
        var (y, mask) = (new float[n], new byte[n]);
        Dropout.Forward(y, mask, x, 0.3f, seed: 7, offset: 50);
        // The second half alone, started at offset 50 + 400, draws the same numbers.
        var (y2, mask2) = (new float[n - 400], new byte[n - 400]);
        Dropout.Forward(y2, mask2, x.AsSpan(400), 0.3f, seed: 7, offset: 450);
        Assert.Equal(mask[400..], mask2);
        Assert.Equal(y[400..], y2);
        // Another seed draws another mask.
        var mask3 = new byte[n];
        Dropout.Forward(new float[n], mask3, x, 0.3f, seed: 8, offset: 50);
        Assert.NotEqual(mask, mask3);
    }

    [Fact]
    public void KeepsAboutOneMinusPAndScales()
    {
        const int n = 200_000;
        var x = Enumerable.Repeat(1f, n).ToArray();
        var (y, mask) = (new float[n], new byte[n]);
        Dropout.Forward(y, mask, x, 0.25f, seed: 3, offset: 0);
        double kept = mask.Count(m => m == 1) / (double)n;
        // Binomial standard deviation √(p(1−p)/n) ≈ 1e-3; allow 5σ.
        Assert.InRange(kept, 0.75 - 5e-3, 0.75 + 5e-3);
        Assert.All(y, v => Assert.True(v == 0f || v == 1f / 0.75f));
    }

    [Fact]
    public void SplitMix64MatchesPublishedSequence()
    {
        // First outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        Assert.Equal(0xE220A8397B1DCDAFUL, Dropout.SplitMix64(0, 0));
        Assert.Equal(0x6E789E6AA1B965F4UL, Dropout.SplitMix64(0, 1));
    }

    [Fact]
    public void ZeroProbabilityCopiesAndInvalidProbabilityThrows()
    {
        var x = new[] { 1f, -2f, 3f };
        var (y, mask) = (new float[3], new byte[3]);
        Dropout.Forward(y, mask, x, 0f, 1, 0);
        Assert.Equal(x, y);
        Assert.Equal(new byte[] { 1, 1, 1 }, mask);
        foreach (float p in new[] { 1f, -0.1f, float.NaN })
        {
            var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Dropout.Forward(y, mask, x, p, 1, 0));
            Assert.Equal("p", ex.ParamName);
        }
    }
}
