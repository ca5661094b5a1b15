using System.Runtime.Intrinsics;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Tests.Kernels;

/// <summary>
/// SimdMath's exponential and the clamp under it, on each register width this machine accelerates (the CI runs the
/// kernel tests again with AVX-512, AVX2 and all SIMD switched off, so every width is reached somewhere): the far tails,
/// signed zeros, infinities and NaN, which must come out NaN so that anomaly checks see it.
/// </summary>
[Trait("Category", "Kernels")]
public unsafe class SimdMathTests
{
    static readonly float[] Specials =
    [
        float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 1f, -1f, 0.5f, 10f, -10f, 88.5f, 88.8f, 89f,
        100f, -87f, -100f, -103.9f, -104f, -110f, 1e30f, -1e30f, float.Epsilon, -float.Epsilon, 3.4e38f, -3.4e38f,
    ];

    [Fact]
    public void ExpMatchesDoublePrecisionOnEveryWidth()
    {
        Check<Vec1>();
        if (Vector256.IsHardwareAccelerated) Check<Vec256>();
        if (Vector512.IsHardwareAccelerated) Check<Vec512>();
    }

    [Fact]
    public void ClampKeepsNaNAndBoundsEverythingElseOnEveryWidth()
    {
        CheckClamp<Vec1>();
        if (Vector256.IsHardwareAccelerated) CheckClamp<Vec256>();
        if (Vector512.IsHardwareAccelerated) CheckClamp<Vec512>();
    }

    static void Check<T>() where T : unmanaged, ISimd<T>
    {
        float* input = stackalloc float[T.Count];
        float* output = stackalloc float[T.Count];
        foreach (float x in Specials)
        {
            // Every lane holds x, and also x at one lane among ordinary values, so a lane-order slip shows.
            for (int lane = -1; lane < T.Count; lane++)
            {
                for (int i = 0; i < T.Count; i++) input[i] = lane < 0 || i == lane ? x : 0.25f * i - 1f;
                T.Store(SimdMath.Exp(T.Load(in input[0])), ref output[0]);
                for (int i = 0; i < T.Count; i++)
                {
                    double expected = Math.Exp(input[i]);
                    string what = $"{typeof(T).Name}: exp({input[i]:R}) at lane {i} gave {output[i]:R}, expected {expected:R}";
                    if (float.IsNaN(input[i])) Assert.True(float.IsNaN(output[i]), what);
                    else if (expected > float.MaxValue) Assert.True(float.IsPositiveInfinity(output[i]), what);
                    else Assert.True(Math.Abs(output[i] - expected) <= 3e-7 * expected + 1e-45, what);
                }
            }
        }
    }

    static void CheckClamp<T>() where T : unmanaged, ISimd<T>
    {
        const float low = -2.5f, high = 7f;
        float* input = stackalloc float[T.Count];
        float* output = stackalloc float[T.Count];
        foreach (float x in Specials)
        {
            for (int i = 0; i < T.Count; i++) input[i] = i % 2 == 0 ? x : i - 4f;
            T.Store(T.Clamp(T.Load(in input[0]), low, high), ref output[0]);
            for (int i = 0; i < T.Count; i++)
            {
                string what = $"{typeof(T).Name}: clamp({input[i]:R}, {low}, {high}) at lane {i} gave {output[i]:R}";
                if (float.IsNaN(input[i])) Assert.True(float.IsNaN(output[i]), what);
                else Assert.True(output[i] == Math.Min(Math.Max(input[i], low), high), what);
            }
        }
    }
}
