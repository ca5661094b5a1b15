// Source: Nair & Hinton, "Rectified Linear Units Improve Restricted Boltzmann Machines" (2010); PyTorch torch.relu.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>ReLU, element-wise over whole spans. The gradient at x = 0 is 0, as in PyTorch; NaN passes through.</summary>
public static class Relu
{
    /// <summary>y = max(x, 0).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x)
    {
        Guard.SameLength(nameof(y), y.Length, x.Length, nameof(x));
        ElementWise.Map<Value>(y, x);
    }

    /// <summary>dx += dy·[x > 0].</summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x)
    {
        Guard.SameLength(nameof(dx), dx.Length, x.Length, nameof(x));
        Guard.SameLength(nameof(dy), dy.Length, x.Length, nameof(x));
        ElementWise.Accumulate<Gradient>(dx, dy, x);
    }

    readonly struct Value : IUnaryOperator
    {
        // y = max(x, 0)
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T x) where T : unmanaged, ISimd<T> => T.Max(x, T.Create(0f));
    }

    readonly struct Gradient : IBinaryOperator
    {
        // dy·[x > 0]
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T dy, T x) where T : unmanaged, ISimd<T> =>
            T.Select(T.GreaterThan(x, T.Create(0f)), dy, T.Create(0f));
    }
}
