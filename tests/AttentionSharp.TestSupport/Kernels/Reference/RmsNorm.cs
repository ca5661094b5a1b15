// Reference twin of Kernels.RmsNorm: plain loops in double. Source: Zhang & Sennrich (2019).
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain RMS normalisation; an empty weight means 1.</summary>
public static class RmsNorm
{
    public static void Forward(Span<float> y, Span<float> rstd, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
        int rows, int cols, float eps)
    {
        Kernels.RmsNorm.Validate(rows, cols, eps, y.Length, rstd.Length, x.Length, weight.Length);
        if (cols == 0) return;
        var yd = new double[y.Length];
        var rstdd = new double[rows];
        Forward(yd, rstdd, Widen.From(x), Widen.From(weight), rows, cols, eps);
        Widen.Store(y, yd);
        Widen.Store(rstd, rstdd);
    }

    public static void Backward(Span<float> dx, Span<float> dweight, ReadOnlySpan<float> dy, ReadOnlySpan<float> x,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, int rows, int cols)
    {
        Kernels.RmsNorm.ValidateBackward(rows, cols, dx.Length, dweight.Length, dy.Length, x.Length, weight.Length, rstd.Length);
        if (cols == 0) return;
        var dxd = new double[dx.Length];
        var dwd = new double[dweight.Length];
        Backward(dxd, dwd, Widen.From(dy), Widen.From(x), Widen.From(weight), Widen.From(rstd), rows, cols);
        Widen.Accumulate(dx, dxd);
        Widen.Accumulate(dweight, dwd);
    }

    internal static void Forward(Span<double> y, Span<double> rstd, ReadOnlySpan<double> x, ReadOnlySpan<double> weight,
        int rows, int cols, double eps)
    {
        for (int r = 0; r < rows; r++)
        {
            // rstd = 1/√((1/C) Σ x_j² + eps); y_j = x_j·rstd·w_j
            double ss = 0;
            for (int j = 0; j < cols; j++) ss += x[r * cols + j] * x[r * cols + j];
            double s = 1 / Math.Sqrt(ss / cols + eps);
            rstd[r] = s;
            for (int j = 0; j < cols; j++) y[r * cols + j] = x[r * cols + j] * s * (weight.IsEmpty ? 1 : weight[j]);
        }
    }

    internal static void Backward(Span<double> dx, Span<double> dweight, ReadOnlySpan<double> dy, ReadOnlySpan<double> x,
        ReadOnlySpan<double> weight, ReadOnlySpan<double> rstd, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            double s = rstd[r];
            // g_j = w_j·dy_j, x̂_j = x_j·rstd; b = mean g·x̂
            double b = 0;
            for (int j = 0; j < cols; j++) b += (weight.IsEmpty ? 1 : weight[j]) * dy[o + j] * x[o + j] * s;
            b /= cols;
            for (int j = 0; j < cols; j++)
            {
                double g = (weight.IsEmpty ? 1 : weight[j]) * dy[o + j], xhat = x[o + j] * s;
                // dx_j += rstd·(g_j − x̂_j·b); dw_j += dy_j·x̂_j
                dx[o + j] += s * (g - xhat * b);
                if (!dweight.IsEmpty) dweight[j] += dy[o + j] * xhat;
            }
        }
    }
}
