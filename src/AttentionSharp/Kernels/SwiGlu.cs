// Source: Shazeer, "GLU Variants Improve Transformer" (2020), the SwiGLU feed-forward.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>The SwiGLU gate, element-wise over whole spans: y = silu(gate)·up.</summary>
public static unsafe class SwiGlu
{
    /// <summary>y = silu(gate)·up.</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        Guard.SameLength(nameof(y), y.Length, gate.Length, nameof(gate));
        Guard.SameLength(nameof(up), up.Length, gate.Length, nameof(gate));
        ElementWise.Map<Value>(y, gate, up);
    }

    /// <summary>dgate += dy·up·silu′(gate); dup += dy·silu(gate).</summary>
    public static void Backward(Span<float> dgate, Span<float> dup, ReadOnlySpan<float> dy, ReadOnlySpan<float> gate,
        ReadOnlySpan<float> up)
    {
        Guard.SameLength(nameof(dgate), dgate.Length, gate.Length, nameof(gate));
        Guard.SameLength(nameof(dup), dup.Length, gate.Length, nameof(gate));
        Guard.SameLength(nameof(dy), dy.Length, gate.Length, nameof(gate));
        Guard.SameLength(nameof(up), up.Length, gate.Length, nameof(gate));
        fixed (float* pdg = dgate)
        fixed (float* pdu = dup)
        fixed (float* pdy = dy)
        fixed (float* pg = gate)
        fixed (float* pu = up)
            Work.Elements(gate.Length, new BackwardKernel(pdg, pdu, pdy, pg, pu));
    }

    readonly struct Value : IBinaryOperator
    {
        // y = silu(gate)·up
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T gate, T up) where T : unmanaged, ISimd<T> => Silu.Of(gate) * up;
    }

    readonly struct BackwardKernel(float* dgate, float* dup, float* dy, float* gate, float* up) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int i = start;
            for (; i <= end - T.Count; i += T.Count) Step<T>(i);
            for (; i < end; i++) Step<Vec1>(i);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        void Step<T>(int i) where T : unmanaged, ISimd<T>
        {
            T g = T.Load(in gate[i]), d = T.Load(in dy[i]);
            // dgate += dy·up·silu′(gate)
            T.Store(T.MultiplyAdd(d * T.Load(in up[i]), Silu.Derivative(g), T.Load(in dgate[i])), ref dgate[i]);
            // dup += dy·silu(gate)
            T.Store(T.MultiplyAdd(d, Silu.Of(g), T.Load(in dup[i])), ref dup[i]);
        }
    }
}
