// Reference twin of Kernels.Softmax: plain loops in double. Source: Bridle (1990).
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain softmax along rows; all −∞ rows give zeros, as the fast kernel.</summary>
public static class Softmax
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

    internal static void Forward(Span<double> y, ReadOnlySpan<double> x, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            var yr = y.Slice(r * cols, cols);
            double max = double.NegativeInfinity;
            foreach (double v in xr) max = Math.Max(max, v);
            if (double.IsNegativeInfinity(max))
            {
                yr.Clear();
                continue;
            }
            // y_j = e^(x_j − max) / Σ_k e^(x_k − max)
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += yr[j] = Math.Exp(xr[j] - max);
            for (int j = 0; j < cols; j++) yr[j] /= sum;
        }
    }

    internal static void Backward(Span<double> dx, ReadOnlySpan<double> dy, ReadOnlySpan<double> y, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            // dx_j += y_j·(dy_j − Σ_k dy_k·y_k)
            double dot = 0;
            for (int j = 0; j < cols; j++) dot += dy[o + j] * y[o + j];
            for (int j = 0; j < cols; j++) dx[o + j] += y[o + j] * (dy[o + j] - dot);
        }
    }
}
