// Reference twin of Kernels.Norms.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain sum of squares (in double) and scale.</summary>
public static class Norms
{
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        // Σ x_i²
        double sum = 0;
        foreach (float v in x) sum += (double)v * v;
        return sum;
    }

    public static void Scale(Span<float> x, float s)
    {
        // x ← s·x
        for (int i = 0; i < x.Length; i++) x[i] *= s;
    }
}
