// Sources: Elfwing, Uchibe & Doya, "Sigmoid-Weighted Linear Units" (2017); Ramachandran et al., "Searching for
// Activation Functions" (2017, Swish); PyTorch torch.nn.functional.silu.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>SiLU (swish), element-wise over whole spans.</summary>
public static class Silu
{
    /// <summary>y = x·σ(x).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x)
    {
        Guard.SameLength(nameof(y), y.Length, x.Length, nameof(x));
        ElementWise.Map<Value>(y, x);
    }

    /// <summary>dx += dy·σ(x)(1 + x(1 − σ(x))).</summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x)
    {
        Guard.SameLength(nameof(dx), dx.Length, x.Length, nameof(x));
        Guard.SameLength(nameof(dy), dy.Length, x.Length, nameof(x));
        ElementWise.Accumulate<Gradient>(dx, dy, x);
    }

    /// <summary>silu(x) = x·σ(x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T Of<T>(T x) where T : unmanaged, ISimd<T> => x * SimdMath.Sigmoid(x);

    /// <summary>silu′(x) = σ(x)(1 + x(1 − σ(x))).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T Derivative<T>(T x) where T : unmanaged, ISimd<T>
    {
        T s = SimdMath.Sigmoid(x), one = T.Create(1f);
        return s * T.MultiplyAdd(x, one - s, one);
    }

    readonly struct Value : IUnaryOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T x) where T : unmanaged, ISimd<T> => Of(x);
    }

    readonly struct Gradient : IBinaryOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T dy, T x) where T : unmanaged, ISimd<T> => dy * Derivative(x);
    }
}
