// Sources: Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)" (2016); PyTorch torch.nn.GELU (approximate='none'
// and 'tanh'). erfc and exp come from SimdMath; the tanh form is evaluated as x·σ(2u), the same function.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>Which form of GELU to compute, as PyTorch's <c>approximate</c> argument.</summary>
public enum GeluApproximation
{
    /// <summary>The exact form x·Φ(x) = ½x(1 + erf(x/√2)), PyTorch's default.</summary>
    None,

    /// <summary>The tanh form ½x(1 + tanh(√(2/π)(x + 0.044715x³))), PyTorch's approximate='tanh' (GPT-2's).</summary>
    Tanh,
}

/// <summary>GELU, element-wise over whole spans.</summary>
public static class Gelu
{
    const float InvSqrt2 = 0.70710678118654752f;
    const float InvSqrt2Pi = 0.39894228040143268f;
    const float Sqrt2OverPi = 0.79788456080286536f;
    const float Cubic = 0.044715f;

    /// <summary>y = GELU(x).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, GeluApproximation approximation)
    {
        Guard.SameLength(nameof(y), y.Length, x.Length, nameof(x));
        if (approximation == GeluApproximation.Tanh) ElementWise.Map<TanhForm>(y, x);
        else if (approximation == GeluApproximation.None) ElementWise.Map<ErfForm>(y, x);
        else throw Unknown(approximation);
    }

    /// <summary>dx += dy·GELU′(x), or dx = dy·GELU′(x) when <paramref name="accumulate"/> is false.</summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, GeluApproximation approximation,
        bool accumulate = true)
    {
        Guard.SameLength(nameof(dx), dx.Length, x.Length, nameof(x));
        Guard.SameLength(nameof(dy), dy.Length, x.Length, nameof(x));
        if (approximation == GeluApproximation.Tanh)
        {
            if (accumulate) ElementWise.Accumulate<TanhFormGradient>(dx, dy, x);
            else ElementWise.Map<TanhFormGradient>(dx, dy, x);
        }
        else if (approximation == GeluApproximation.None)
        {
            if (accumulate) ElementWise.Accumulate<ErfFormGradient>(dx, dy, x);
            else ElementWise.Map<ErfFormGradient>(dx, dy, x);
        }
        else throw Unknown(approximation);
    }

    /// <summary>
    /// y = GELU(x) and d = GELU′(x) in one pass, for a backward pass that needs both (<c>Tensor.GeluLinear</c>'s: y for
    /// dW, d for dx): the erf form computes Φ(x) once for the two. y has the bits <see cref="Forward"/> gives, and dy·d
    /// those <see cref="Backward"/> gives without accumulating.
    /// </summary>
    public static void ForwardAndDerivative(Span<float> y, Span<float> derivative, ReadOnlySpan<float> x,
        GeluApproximation approximation)
    {
        Guard.SameLength(nameof(y), y.Length, x.Length, nameof(x));
        Guard.SameLength(nameof(derivative), derivative.Length, x.Length, nameof(x));
        if (approximation == GeluApproximation.Tanh) ElementWise.MapPair<TanhFormWithDerivative>(y, derivative, x);
        else if (approximation == GeluApproximation.None) ElementWise.MapPair<ErfFormWithDerivative>(y, derivative, x);
        else throw Unknown(approximation);
    }

    static ArgumentOutOfRangeException Unknown(GeluApproximation approximation) =>
        new(nameof(approximation), approximation, $"approximation must be None or Tanh; got {approximation}.");

    /// <summary>
    /// Φ(x) = ½(1 + erf(x/√2)) = ½·erfc(−x/√2): the complementary form keeps Φ's relative accuracy for x &lt; 0, where
    /// 1 + erf cancels.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static T Cdf<T>(T x) where T : unmanaged, ISimd<T> => T.Create(0.5f) * SimdMath.Erfc(x * T.Create(-InvSqrt2));

    readonly struct ErfForm : IUnaryOperator
    {
        // y = x·Φ(x)
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T x) where T : unmanaged, ISimd<T> => x * Cdf(x);
    }

    readonly struct ErfFormGradient : IBinaryOperator
    {
        // dy·GELU′(x)
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T dy, T x) where T : unmanaged, ISimd<T> => dy * ErfDerivative(x, Cdf(x));
    }

    readonly struct ErfFormWithDerivative : IPairOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T x, out T derivative) where T : unmanaged, ISimd<T>
        {
            T cdf = Cdf(x);
            derivative = ErfDerivative(x, cdf);
            return x * cdf;
        }
    }

    /// <summary>GELU′(x) = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π), given Φ(x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static T ErfDerivative<T>(T x, T cdf) where T : unmanaged, ISimd<T> =>
        T.MultiplyAdd(x, T.Create(InvSqrt2Pi) * SimdMath.Exp(T.Create(-0.5f) * x * x), cdf);

    /// <summary>
    /// 2u, u = √(2/π)(x + 0.044715x³). ½(1 + tanh u) = σ(2u) = 1 / (1 + e^(−2u)): one exponential, and no cancellation in
    /// 1 + tanh u for x &lt; 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static T TwoU<T>(T x, T x2) where T : unmanaged, ISimd<T> =>
        T.Create(2f * Sqrt2OverPi) * T.MultiplyAdd(T.Create(Cubic) * x2, x, x);

    readonly struct TanhForm : IUnaryOperator
    {
        // y = ½x(1 + tanh u) = x·σ(2u) = x / (1 + e^(−2u)); far left e^(−2u) = +∞ and y = −0, as ½x(1 + tanh u)
        // gives.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T x) where T : unmanaged, ISimd<T> =>
            x / (T.Create(1f) + SimdMath.Exp(-TwoU(x, x * x)));
    }

    readonly struct TanhFormGradient : IBinaryOperator
    {
        // dy·GELU′(x)
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T dy, T x) where T : unmanaged, ISimd<T> => dy * TanhDerivative(x);
    }

    readonly struct TanhFormWithDerivative : IPairOperator
    {
        // The value's exponential is of x itself, the derivative's of x clamped: two, as in the separate passes.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T x, out T derivative) where T : unmanaged, ISimd<T>
        {
            derivative = TanhDerivative(x);
            return TanhForm.Invoke(x);
        }
    }

    /// <summary>
    /// GELU′(x) = s + x·s(1 − s)·2u′, s = σ(2u), 1 − s = e·s with e = e^(−2u) (no cancellation),
    /// u′ = √(2/π)(1 + 3·0.044715x²). x is taken within [−9, 20] first: beyond, the gradient is 0 or 1 to float
    /// precision (below 1e-26 off), and e·s and x·s(1 − s)·u′ stay finite (no ∞·0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static T TanhDerivative<T>(T x) where T : unmanaged, ISimd<T>
    {
        T one = T.Create(1f);
        x = T.Clamp(x, -9f, 20f);
        T x2 = x * x;
        T e = SimdMath.Exp(-TwoU(x, x2));
        T sig = one / (one + e);
        T du2 = T.Create(2f * Sqrt2OverPi) * T.MultiplyAdd(T.Create(3f * Cubic), x2, one);
        return T.MultiplyAdd(x * sig * (e * sig), du2, sig);
    }
}
