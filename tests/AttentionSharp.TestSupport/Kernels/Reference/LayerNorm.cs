// Reference twin of Kernels.LayerNorm: plain loops in double. Sources: Ba, Kiros & Hinton (2016); llm.c.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain layer normalisation (biased variance, eps inside the square root); empty weight/bias mean 1/0.</summary>
public static class LayerNorm
{
    public static void Forward(Span<float> y, Span<float> mean, Span<float> rstd, ReadOnlySpan<float> x,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int rows, int cols, float eps)
    {
        Kernels.LayerNorm.Validate(rows, cols, eps, y.Length, mean.Length, rstd.Length, x.Length, weight.Length, bias.Length);
        if (cols == 0) return;
        var yd = new double[y.Length];
        var meand = new double[rows];
        var rstdd = new double[rows];
        Forward(yd, meand, rstdd, Widen.From(x), Widen.From(weight), Widen.From(bias), rows, cols, eps);
        Widen.Store(y, yd);
        Widen.Store(mean, meand);
        Widen.Store(rstd, rstdd);
    }

    public static void Backward(Span<float> dx, Span<float> dweight, Span<float> dbias, ReadOnlySpan<float> dy,
        ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, int rows, int cols)
    {
        Kernels.LayerNorm.ValidateBackward(rows, cols, dx.Length, dweight.Length, dbias.Length, dy.Length, x.Length, weight.Length, mean.Length, rstd.Length);
        if (cols == 0) return;
        var dxd = new double[dx.Length];
        var dwd = new double[dweight.Length];
        var dbd = new double[dbias.Length];
        Backward(dxd, dwd, dbd, Widen.From(dy), Widen.From(x), Widen.From(weight), Widen.From(mean), Widen.From(rstd), rows, cols);
        Widen.Accumulate(dx, dxd);
        Widen.Accumulate(dweight, dwd);
        Widen.Accumulate(dbias, dbd);
    }

    internal static void Forward(Span<double> y, Span<double> mean, Span<double> rstd, ReadOnlySpan<double> x,
        ReadOnlySpan<double> weight, ReadOnlySpan<double> bias, int rows, int cols, double eps)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            // μ = (1/C) Σ x_j; σ² = (1/C) Σ (x_j − μ)²; rstd = 1/√(σ² + eps)
            double mu = 0;
            foreach (double v in xr) mu += v;
            mu /= cols;
            double var = 0;
            foreach (double v in xr) var += (v - mu) * (v - mu);
            var /= cols;
            double s = 1 / Math.Sqrt(var + eps);
            mean[r] = mu;
            rstd[r] = s;
            // y_j = (x_j − μ)·rstd·w_j + b_j
            for (int j = 0; j < cols; j++)
                y[r * cols + j] = (xr[j] - mu) * s * (weight.IsEmpty ? 1 : weight[j]) + (bias.IsEmpty ? 0 : bias[j]);
        }
    }

    internal static void Backward(Span<double> dx, Span<double> dweight, Span<double> dbias, ReadOnlySpan<double> dy,
        ReadOnlySpan<double> x, ReadOnlySpan<double> weight, ReadOnlySpan<double> mean, ReadOnlySpan<double> rstd, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            double mu = mean[r], s = rstd[r];
            // g_j = w_j·dy_j, x̂_j = (x_j − μ)·rstd; a = mean g, b = mean g·x̂
            double a = 0, b = 0;
            for (int j = 0; j < cols; j++)
            {
                double g = (weight.IsEmpty ? 1 : weight[j]) * dy[o + j];
                a += g;
                b += g * (x[o + j] - mu) * s;
            }
            a /= cols;
            b /= cols;
            for (int j = 0; j < cols; j++)
            {
                double g = (weight.IsEmpty ? 1 : weight[j]) * dy[o + j], xhat = (x[o + j] - mu) * s;
                // dx_j += rstd·(g_j − a − x̂_j·b); dw_j += dy_j·x̂_j; db_j += dy_j
                dx[o + j] += s * (g - a - xhat * b);
                if (!dweight.IsEmpty) dweight[j] += dy[o + j] * xhat;
                if (!dbias.IsEmpty) dbias[j] += dy[o + j];
            }
        }
    }
}
