// Sources: Press et al., Numerical Recipes (erfc), the fit the CPU engine's SimdMath uses, so GELU's erf form agrees
// with it to float rounding.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Algorithms.ScanReduceOperations;

namespace AttentionSharp.Gpu;

/// <summary>Scalar device math and group reductions shared by the kernels.</summary>
internal static class GpuMath
{
    /// <summary>
    /// a·b + c. ILGPU 1.5 has no float FMA intrinsic (MathF.FusedMultiplyAdd would stay an unresolved call in the
    /// PTX); the PTX it emits for a·b + c carries no rounding modifier, which lets ptxas contract it into one fma, as it
    /// does by default. On the CPU simulator it is a multiply and an add.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Fma(float a, float b, float c) => a * b + c;

    /// <summary>
    /// erfc x = 1 − erf x, as the CPU engine's SimdMath.Erfc: for a = |x|, t·e^(−a² + P(t)) with t = 1 / (1 + a/2),
    /// and erfc(−a) = 2 − erfc a.
    /// </summary>
    public static float Erfc(float x)
    {
        float a = MathF.Abs(x);
        float t = 1f / Fma(a, 0.5f, 1f);
        float p = Fma(0.17087277f, t, -0.82215223f);
        p = Fma(p, t, 1.48851587f);
        p = Fma(p, t, -1.13520398f);
        p = Fma(p, t, 0.27886807f);
        p = Fma(p, t, -0.18628806f);
        p = Fma(p, t, 0.09678418f);
        p = Fma(p, t, 0.37409196f);
        p = Fma(p, t, 1.00002368f);
        p = Fma(p, t, -1.26551223f);
        float e = t * MathF.Exp(MathF.Max(Fma(-a, a, p), -104f));
        return x < 0 ? 2f - e : e;
    }

    /// <summary>σ(x) = 1 / (1 + e⁻ˣ), as the CPU engine's SimdMath.Sigmoid.</summary>
    public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    /// <summary>
    /// tanh x and sech²x = 1 − tanh²x, as the CPU engine's SimdMath.Tanh: the Cephes polynomial below |x| = 0.625, and
    /// q = 1 − tanh|x| = 2 / (e^{2|x|} + 1) above it, with sech²x = q(2 − q) free of the cancellation of 1 − t².
    /// </summary>
    public static float Tanh(float x, out float sech2)
    {
        float a = MathF.Abs(x);
        if (a < 0.625f)
        {
            float s = x * x;
            float p = Fma(-5.70498872745e-3f, s, 2.06390887954e-2f);
            p = Fma(p, s, -5.37397155531e-2f);
            p = Fma(p, s, 1.33314422036e-1f);
            p = Fma(p, s, -3.33332819422e-1f);
            float small = Fma(p * s, x, x);
            sech2 = 1f - small * small;
            return small;
        }
        float q = 2f / (MathF.Exp(MathF.Min(a + a, 88f)) + 1f);
        sech2 = q * (2f - q);
        return x < 0 ? q - 1f : 1f - q;
    }

    /// <summary>Σ of <paramref name="value"/> over the group, returned to every thread.</summary>
    public static float GroupSum(float value) => GroupExtensions.AllReduce<float, AddFloat>(value);

    /// <summary>max of <paramref name="value"/> over the group, returned to every thread; −∞ when all are −∞.</summary>
    public static float GroupMax(float value) => GroupExtensions.AllReduce<float, Max>(value);

    /// <summary>
    /// max with identity −∞. ILGPU's MaxFloat starts from float.MinValue, so a row of −∞ (fully masked) would come out
    /// finite and its softmax 0/0.
    /// </summary>
    readonly struct Max : IScanReduceOperation<float>
    {
        public string CLCommand => "max";

        public float Identity => float.NegativeInfinity;

        public float Apply(float first, float second) => MathF.Max(first, second);

        public void AtomicApply(ref float target, float value) => Atomic.Max(ref target, value);
    }

    /// <summary>
    /// The CPU engine's dropout factor for element <paramref name="index"/> of the counter-based stream seeded with
    /// <paramref name="seed"/> (Kernels.Dropout): SplitMix64's output there, its top 24 bits as u on a 2⁻²⁴ grid, kept
    /// when u ≥ p; 1/(1 − p) for a kept element and 0 for a dropped one, so the device drops what the CPU drops.
    /// </summary>
    public static float DropoutFactor(ulong seed, ulong index, float p)
    {
        ulong z = seed + (index + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 40) * (1f / (1 << 24)) >= p ? 1f / (1f - p) : 0f;
    }

    /// <summary>This thread's first index in a grid-stride loop.</summary>
    public static int GridFirst => Grid.IdxX * Group.DimX + Group.IdxX;

    /// <summary>The stride of a grid-stride loop: every thread of the grid.</summary>
    public static int GridStride => Grid.DimX * Group.DimX;
}
