// Reference twin of Kernels.SwiGlu: plain loops in double. Source: Shazeer (2020).
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain SwiGLU gate.</summary>
public static class SwiGlu
{
    public static void Forward(Span<float> y, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        Guard.SameLength(nameof(y), y.Length, gate.Length, nameof(gate));
        Guard.SameLength(nameof(up), up.Length, gate.Length, nameof(gate));
        // y = silu(gate)·up
        for (int i = 0; i < gate.Length; i++) y[i] = (float)(Silu.Value(gate[i]) * up[i]);
    }

    public static void Backward(Span<float> dgate, Span<float> dup, ReadOnlySpan<float> dy, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        Guard.SameLength(nameof(dgate), dgate.Length, gate.Length, nameof(gate));
        Guard.SameLength(nameof(dup), dup.Length, gate.Length, nameof(gate));
        Guard.SameLength(nameof(dy), dy.Length, gate.Length, nameof(gate));
        Guard.SameLength(nameof(up), up.Length, gate.Length, nameof(gate));
        for (int i = 0; i < gate.Length; i++)
        {
            // dgate += dy·up·silu′(gate); dup += dy·silu(gate)
            dgate[i] = (float)(dgate[i] + (double)dy[i] * up[i] * Silu.Derivative(gate[i]));
            dup[i] = (float)(dup[i] + dy[i] * Silu.Value(gate[i]));
        }
    }
}
