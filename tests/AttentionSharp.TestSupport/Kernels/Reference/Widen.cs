namespace AttentionSharp.Kernels.Reference;

/// <summary>float ↔ double copies: the reference kernels compute in double and round once at the end.</summary>
internal static class Widen
{
    public static double[] From(ReadOnlySpan<float> x)
    {
        var d = new double[x.Length];
        for (int i = 0; i < x.Length; i++) d[i] = x[i];
        return d;
    }

    /// <summary>y = (float)d.</summary>
    public static void Store(Span<float> y, ReadOnlySpan<double> d)
    {
        for (int i = 0; i < d.Length; i++) y[i] = (float)d[i];
    }

    /// <summary>y += (float)d: float gradients accumulate what the double kernel computed.</summary>
    public static void Accumulate(Span<float> y, ReadOnlySpan<double> d)
    {
        for (int i = 0; i < d.Length; i++) y[i] = (float)(y[i] + d[i]);
    }
}
