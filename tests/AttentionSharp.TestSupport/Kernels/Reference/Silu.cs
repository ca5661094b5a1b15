// Reference twin of Kernels.Silu: plain loops in double.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain SiLU.</summary>
public static class Silu
{
    public static void Forward(Span<float> y, ReadOnlySpan<float> x)
    {
        Guard.SameLength(nameof(y), y.Length, x.Length, nameof(x));
        for (int i = 0; i < x.Length; i++) y[i] = (float)Value(x[i]);
    }

    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x)
    {
        Guard.SameLength(nameof(dx), dx.Length, x.Length, nameof(x));
        Guard.SameLength(nameof(dy), dy.Length, x.Length, nameof(x));
        for (int i = 0; i < x.Length; i++) dx[i] = (float)(dx[i] + dy[i] * Derivative(x[i]));
    }

    // σ(x) = 1/(1 + e⁻ˣ)
    internal static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    // silu(x) = x·σ(x)
    internal static double Value(double x) => x * Sigmoid(x);

    // silu′(x) = σ(x)(1 + x(1 − σ(x)))
    internal static double Derivative(double x)
    {
        double s = Sigmoid(x);
        return s * (1 + x * (1 - s));
    }
}
