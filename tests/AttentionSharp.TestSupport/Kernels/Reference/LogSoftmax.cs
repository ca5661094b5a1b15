// Reference twin of Kernels.LogSoftmax: plain loops in double.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain log-softmax along rows; all −∞ rows give all −∞, as the fast kernel.</summary>
public static class LogSoftmax
{
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int rows, int cols)
    {
        Guard.RowForward(y.Length, x.Length, rows, cols);
        var yd = new double[y.Length];
        Forward(yd, Widen.From(x), rows, cols);
        Widen.Store(y, yd);
    }

    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, int rows, int cols)
    {
        Guard.RowBackward(dx.Length, dy.Length, y.Length, rows, cols);
        var dxd = new double[dx.Length];
        Backward(dxd, Widen.From(dy), Widen.From(y), rows, cols);
        Widen.Accumulate(dx, dxd);
    }

    /// <summary>log Σ_j e^(x_j) with the maximum subtracted first; −∞ for an all −∞ row.</summary>
    internal static double LogSumExp(ReadOnlySpan<double> x)
    {
        double max = double.NegativeInfinity;
        foreach (double v in x) max = Math.Max(max, v);
        if (double.IsNegativeInfinity(max)) return max;
        double sum = 0;
        foreach (double v in x) sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    internal static void Forward(Span<double> y, ReadOnlySpan<double> x, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            // y_j = x_j − log Σ_k e^(x_k)
            double lse = LogSumExp(x.Slice(r * cols, cols));
            for (int j = 0; j < cols; j++)
                y[r * cols + j] = double.IsNegativeInfinity(lse) ? double.NegativeInfinity : x[r * cols + j] - lse;
        }
    }

    internal static void Backward(Span<double> dx, ReadOnlySpan<double> dy, ReadOnlySpan<double> y, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            // dx_j += dy_j − e^(y_j)·Σ_k dy_k
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += dy[o + j];
            for (int j = 0; j < cols; j++) dx[o + j] += dy[o + j] - Math.Exp(y[o + j]) * sum;
        }
    }
}
