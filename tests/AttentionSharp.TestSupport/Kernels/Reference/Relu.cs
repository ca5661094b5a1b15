// Reference twin of Kernels.Relu.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain ReLU; gradient 0 at x = 0.</summary>
public static class Relu
{
    public static void Forward(Span<float> y, ReadOnlySpan<float> x)
    {
        Guard.SameLength(nameof(y), y.Length, x.Length, nameof(x));
        // y = max(x, 0), NaN passing through
        for (int i = 0; i < x.Length; i++) y[i] = float.IsNaN(x[i]) ? x[i] : x[i] > 0 ? x[i] : 0f;
    }

    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x)
    {
        Guard.SameLength(nameof(dx), dx.Length, x.Length, nameof(x));
        Guard.SameLength(nameof(dy), dy.Length, x.Length, nameof(x));
        // dx += dy·[x > 0]
        for (int i = 0; i < x.Length; i++) if (x[i] > 0) dx[i] += dy[i];
    }
}
