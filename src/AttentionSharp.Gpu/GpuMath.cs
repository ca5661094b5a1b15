// Sources: Cephes Math Library (S. L. Moshier), single-precision ndtrf.c (erff/erfcf), the coefficients the CPU engine's
// SimdMath uses, so GELU's erf form agrees with it to float rounding.
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

    /// <summary>erf x = 2/√π ∫₀ˣ e^(−t²) dt, as the CPU engine's SimdMath.Erf.</summary>
    public static float Erf(float x)
    {
        float a = MathF.Abs(x);
        if (a < 1f)
        {
            // |x| < 1: erf x = x·T(x²)
            float s = x * x;
            float t = Fma(7.853861353153693e-5f, s, -8.010193625184903e-4f);
            t = Fma(t, s, 5.188327685732524e-3f);
            t = Fma(t, s, -2.685381193529856e-2f);
            t = Fma(t, s, 1.128358514861418e-1f);
            t = Fma(t, s, -3.761262582423300e-1f);
            t = Fma(t, s, 1.128379165726710f);
            return x * t;
        }
        // |x| ≥ 1: erf x = sign(x)·(1 − erfc|x|), erfc a = e^(−a²)·(1/a)·P(1/a²) for a < 2, ·R(1/a²) beyond; a is capped
        // at 10, where erfc is far below float resolution next to 1
        float c = MathF.Min(a, 10f);
        float q = 1f / c;
        float y = q * q;
        float p;
        if (a < 2f)
        {
            p = Fma(2.326819970068386e-2f, y, -1.387039388740657e-1f);
            p = Fma(p, y, 3.687424674597105e-1f);
            p = Fma(p, y, -5.824733027278666e-1f);
            p = Fma(p, y, 6.210004621745983e-1f);
            p = Fma(p, y, -4.944515323274145e-1f);
            p = Fma(p, y, 3.404879937665872e-1f);
            p = Fma(p, y, -2.741127028184656e-1f);
            p = Fma(p, y, 5.638259427386472e-1f);
        }
        else
        {
            p = Fma(-1.047766399936249e+1f, y, 1.297719955372516e+1f);
            p = Fma(p, y, -7.495518717768503f);
            p = Fma(p, y, 2.921019019210786f);
            p = Fma(p, y, -1.015265279202700f);
            p = Fma(p, y, 4.218463358204948e-1f);
            p = Fma(p, y, -2.820767439740514e-1f);
            p = Fma(p, y, 5.641895067754075e-1f);
        }
        float erfc = MathF.Exp(-(c * c)) * q * p;
        return x < 0 ? erfc - 1f : 1f - erfc;
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

    /// <summary>This thread's first index in a grid-stride loop.</summary>
    public static int GridFirst => Grid.IdxX * Group.DimX + Group.IdxX;

    /// <summary>The stride of a grid-stride loop: every thread of the grid.</summary>
    public static int GridStride => Grid.DimX * Group.DimX;
}
