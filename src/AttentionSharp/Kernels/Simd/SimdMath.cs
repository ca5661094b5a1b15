// Sources: Cephes Math Library (S. L. Moshier), single-precision expf.c and tanhf.c, whose coefficients are reused
// here; Press et al., Numerical Recipes (erfc); Cody & Waite, "Software Manual for the Elementary Functions" (1980)
// for the split ln 2.
using System.Runtime.CompilerServices;

namespace AttentionSharp.Kernels.Simd;

/// <summary>
/// Transcendental functions over any <see cref="ISimd{TSelf}"/> width, branch-free so every lane takes the same path.
/// Accuracy against double precision on [−10, 10]: exp ≈ 2 ulp, tanh ≈ 2e-7 absolute, erfc ≈ 3e-7 relative.
/// NaN propagates through all of them.
/// </summary>
internal static class SimdMath
{
    // Inputs are clamped here: e^-104 rounds to 0 and e^89 to +∞ in float, so the clamp changes no result.
    const float ExpLow = -104f, ExpHigh = 89f;
    const float Log2E = 1.44269504088896341f;
    const float Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;

    /// <summary>eˣ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Exp<T>(T x) where T : unmanaged, ISimd<T>
    {
        x = T.Clamp(x, ExpLow, ExpHigh);
        // eˣ = 2ⁿ · eʳ with n = round(x · log₂e) and r = x − n·ln 2 (ln 2 = Ln2Hi + Ln2Lo, so n·Ln2Hi is exact), |r| ≤ ln2/2
        T n = T.Round(x * T.Create(Log2E));
        T r = T.MultiplyAdd(n, T.Create(-Ln2Hi), x);
        r = T.MultiplyAdd(n, T.Create(-Ln2Lo), r);
        // eʳ ≈ 1 + r + r²·P(r) (Cephes expf minimax polynomial)
        T p = T.MultiplyAdd(T.Create(1.9875691500e-4f), r, T.Create(1.3981999507e-3f));
        p = T.MultiplyAdd(p, r, T.Create(8.3334519073e-3f));
        p = T.MultiplyAdd(p, r, T.Create(4.1665795894e-2f));
        p = T.MultiplyAdd(p, r, T.Create(1.6666665459e-1f));
        p = T.MultiplyAdd(p, r, T.Create(5.0000001201e-1f));
        p = T.MultiplyAdd(p, r * r, r) + T.Create(1f);
        // 2ⁿ = 2^n₁ · 2^n₂ with n₁ = round(n/2): both halves stay normal for n in [−150, 129], so over- and underflow
        // (including gradual underflow to subnormals) come out of the final multiplications correctly rounded
        T n1 = T.Round(n * T.Create(0.5f));
        return p * T.Pow2(n1) * T.Pow2(n - n1);
    }

    /// <summary>σ(x) = 1 / (1 + e⁻ˣ).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sigmoid<T>(T x) where T : unmanaged, ISimd<T>
    {
        T one = T.Create(1f);
        return one / (one + Exp(-x));
    }

    /// <summary>tanh x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Tanh<T>(T x) where T : unmanaged, ISimd<T> => Tanh(x, out _);

    /// <summary>
    /// tanh x, and sech²x = 1 − tanh²x computed without the cancellation of 1 − t² near |t| = 1 (which would leave an
    /// absolute error of ≈ 1e-7 on a value that may be far smaller): sech²x = q(2 − q) with q = 1 − |tanh x|.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Tanh<T>(T x, out T sech2) where T : unmanaged, ISimd<T>
    {
        T one = T.Create(1f);
        T a = T.Abs(x);
        // |x| < 0.625: tanh x = x + x·x²·P(x²) (Cephes tanhf), free of the cancellation in the form below
        T s = x * x;
        T p = T.MultiplyAdd(T.Create(-5.70498872745e-3f), s, T.Create(2.06390887954e-2f));
        p = T.MultiplyAdd(p, s, T.Create(-5.37397155531e-2f));
        p = T.MultiplyAdd(p, s, T.Create(1.33314422036e-1f));
        p = T.MultiplyAdd(p, s, T.Create(-3.33332819422e-1f));
        T small = T.MultiplyAdd(p * s, x, x);
        // |x| ≥ 0.625: q = 1 − tanh|x| = 2 / (e^{2|x|} + 1); |x| is capped at 44, where e^{2|x|} is still finite
        T q = T.Create(2f) / (Exp(T.Clamp(a + a, 0f, 88f)) + one);
        T isSmall = T.LessThan(a, T.Create(0.625f));
        sech2 = T.Select(isSmall, one - small * small, q * (T.Create(2f) - q));
        return T.Select(isSmall, small, T.CopySign(one - q, x));
    }

    /// <summary>
    /// erfc x = 1 − erf x = 2/√π ∫ₓ^∞ e^(−t²) dt, with its relative accuracy kept in the right tail, where 1 − erf x
    /// would cancel to nothing: for a = |x|, erfc a = t·e^(−a² + P(t)) with t = 1 / (1 + a/2) and P of degree 9 (the
    /// Chebyshev fit of Press et al., Numerical Recipes, §6.2, fractional error below 1.2e-7 in exact arithmetic), and
    /// erfc(−a) = 2 − erfc a. One division and one exponential, on one path for every x.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Erfc<T>(T x) where T : unmanaged, ISimd<T>
    {
        T a = T.Abs(x);
        T t = T.Create(1f) / T.MultiplyAdd(a, T.Create(0.5f), T.Create(1f));
        T p = T.MultiplyAdd(T.Create(0.17087277f), t, T.Create(-0.82215223f));
        p = T.MultiplyAdd(p, t, T.Create(1.48851587f));
        p = T.MultiplyAdd(p, t, T.Create(-1.13520398f));
        p = T.MultiplyAdd(p, t, T.Create(0.27886807f));
        p = T.MultiplyAdd(p, t, T.Create(-0.18628806f));
        p = T.MultiplyAdd(p, t, T.Create(0.09678418f));
        p = T.MultiplyAdd(p, t, T.Create(0.37409196f));
        p = T.MultiplyAdd(p, t, T.Create(1.00002368f));
        p = T.MultiplyAdd(p, t, T.Create(-1.26551223f));
        // −a² + P(t); past a ≈ 10 the exponent is below Exp's clamp and erfc is 0, as in float
        T e = t * Exp(T.MultiplyAdd(-a, a, p));
        return T.Select(T.LessThan(x, T.Create(0f)), T.Create(2f) - e, e);
    }
}
