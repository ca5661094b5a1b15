// Sources: Ba, Kiros & Hinton, "Layer Normalization" (2016); Karpathy, llm.c train_gpt2.cu (layernorm kernels); the CPU
// engine's Kernels/LayerNorm.cs (biased variance, eps inside the square root, two passes over the row).
using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// Layer normalisation over the last dimension of a rows × cols matrix, as the CPU engine's LayerNorm: biased variance,
/// eps inside the square root; weight and bias (length cols) may be null, meaning 1 and 0. The forward pass saves the
/// per-row mean and rstd = 1/√(var + eps). One group reduces one row.
/// </summary>
public sealed class GpuLayerNorm
{
    readonly GpuDevice _device;
    readonly Action<KernelConfig, LayerNormArgs> _forward, _inputGradient, _parameterGradient;

    internal GpuLayerNorm(GpuDevice device)
    {
        _device = device;
        _forward = device.Load<LayerNormArgs>(ForwardKernel, ForwardKernel);
        _inputGradient = device.Load<LayerNormArgs>(InputGradientKernel, InputGradientKernel);
        _parameterGradient = device.Load<LayerNormArgs>(ParameterGradientKernel, ParameterGradientKernel);
    }

    /// <summary>
    /// y = (x − mean)·rstd·weight + bias, per row; writes <paramref name="mean"/> and <paramref name="rstd"/> (length rows).
    /// </summary>
    public void Forward(GpuTensor y, GpuTensor mean, GpuTensor rstd, GpuTensor x, GpuTensor? weight, GpuTensor? bias,
        int rows, int cols, float eps = 1e-5f)
    {
        var args = Arguments(x, weight, bias, mean, rstd, rows, cols);
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"eps must be non-negative; got {eps}.");
        Check.Count(_device, y, (long)rows * cols, nameof(y), "rows × cols");
        if (rows == 0 || cols == 0) return;
        args.Out = y.View;
        args.Eps = eps;
        _forward(_device.RowLaunch(rows), args);
    }

    /// <summary>
    /// Accumulates the gradients of <see cref="Forward"/>: dx += ∂L/∂x and, where not null, dweight += Σ_rows dy·x̂ and
    /// dbias += Σ_rows dy, from dy, the forward input x, weight (null = 1) and the saved mean and rstd. The parameter
    /// sums are split over chunks of rows and added with atomics, so their order varies from run to run.
    /// </summary>
    public void Backward(GpuTensor dx, GpuTensor? dweight, GpuTensor? dbias, GpuTensor dy, GpuTensor x, GpuTensor? weight,
        GpuTensor mean, GpuTensor rstd, int rows, int cols)
    {
        var args = Arguments(x, weight, null, mean, rstd, rows, cols);
        Check.Count(_device, dx, (long)rows * cols, nameof(dx), "rows × cols");
        Check.Count(_device, dy, (long)rows * cols, nameof(dy), "rows × cols");
        if (dweight is not null) Check.Count(_device, dweight, cols, nameof(dweight), "cols");
        if (dbias is not null) Check.Count(_device, dbias, cols, nameof(dbias), "cols");
        if (rows == 0 || cols == 0) return;
        args.Out = dx.View;
        args.Dy = dy.View;
        _inputGradient(_device.RowLaunch(rows), args);
        if (dweight is null && dbias is null) return;
        args.DWeight = (dweight ?? dx).View;
        args.DBias = (dbias ?? dx).View;
        args.HasDWeight = dweight is null ? 0 : 1;
        args.HasDBias = dbias is null ? 0 : 1;
        _parameterGradient(GpuReduce.ColumnLaunch(_device, rows, cols), args);
    }

    LayerNormArgs Arguments(GpuTensor x, GpuTensor? weight, GpuTensor? bias, GpuTensor mean, GpuTensor rstd, int rows, int cols)
    {
        Check.NonNegative(rows, nameof(rows));
        Check.NonNegative(cols, nameof(cols));
        Check.Count(_device, x, (long)rows * cols, nameof(x), "rows × cols");
        Check.Count(_device, mean, rows, nameof(mean), "rows");
        Check.Count(_device, rstd, rows, nameof(rstd), "rows");
        if (weight is not null) Check.Count(_device, weight, cols, nameof(weight), "cols");
        if (bias is not null) Check.Count(_device, bias, cols, nameof(bias), "cols");
        // An absent weight or bias is passed as any view and flagged off: kernel arguments cannot be null.
        return new LayerNormArgs
        {
            X = x.View, Mean = mean.View, Rstd = rstd.View,
            Out = x.View, Dy = x.View, DWeight = x.View, DBias = x.View,
            Weight = (weight ?? x).View, Bias = (bias ?? x).View,
            HasWeight = weight is null ? 0 : 1, HasBias = bias is null ? 0 : 1,
            Rows = rows, Cols = cols,
        };
    }

    /// <summary>Row Grid.IdxX: two passes (mean, then the variance about it), then the normalised row.</summary>
    [Kernel]
    static void ForwardKernel(LayerNormArgs p)
    {
        int r = Grid.IdxX, t = Group.IdxX, threads = Group.DimX, cols = p.Cols;
        long o = (long)r * cols;
        // μ = (1/C) Σ_j x_j
        float sum = 0f;
        for (int j = t; j < cols; j += threads) sum += p.X[o + j];
        float mu = GpuMath.GroupSum(sum) / cols;
        // σ² = (1/C) Σ_j (x_j − μ)²; rstd = 1/√(σ² + eps)
        float squares = 0f;
        for (int j = t; j < cols; j += threads)
        {
            float d = p.X[o + j] - mu;
            squares = GpuMath.Fma(d, d, squares);
        }
        float s = 1f / MathF.Sqrt(GpuMath.GroupSum(squares) / cols + p.Eps);
        if (t == 0)
        {
            p.Mean[r] = mu;
            p.Rstd[r] = s;
        }
        // y_j = (x_j − μ)·rstd·w_j + b_j
        for (int j = t; j < cols; j += threads)
        {
            float xhat = (p.X[o + j] - mu) * s;
            float y;
            if (p.HasWeight != 0 && p.HasBias != 0) y = GpuMath.Fma(xhat, p.Weight[j], p.Bias[j]);
            else if (p.HasWeight != 0) y = xhat * p.Weight[j];
            else if (p.HasBias != 0) y = xhat + p.Bias[j];
            else y = xhat;
            p.Out[o + j] = y;
        }
    }

    /// <summary>Row Grid.IdxX of dx.</summary>
    [Kernel]
    static void InputGradientKernel(LayerNormArgs p)
    {
        int r = Grid.IdxX, t = Group.IdxX, threads = Group.DimX, cols = p.Cols;
        long o = (long)r * cols;
        float mu = p.Mean[r], s = p.Rstd[r];
        // x̂_j = (x_j − μ)·rstd, g_j = w_j·dy_j; a = (1/C) Σ_j g_j, b = (1/C) Σ_j g_j·x̂_j
        float a = 0f, b = 0f;
        for (int j = t; j < cols; j += threads)
        {
            float g = p.HasWeight != 0 ? p.Weight[j] * p.Dy[o + j] : p.Dy[o + j];
            a += g;
            b = GpuMath.Fma(g, (p.X[o + j] - mu) * s, b);
        }
        a = GpuMath.GroupSum(a) / cols;
        b = GpuMath.GroupSum(b) / cols;
        // dx_j += rstd·(g_j − a − x̂_j·b)
        for (int j = t; j < cols; j += threads)
        {
            float g = p.HasWeight != 0 ? p.Weight[j] * p.Dy[o + j] : p.Dy[o + j];
            float xhat = (p.X[o + j] - mu) * s;
            p.Out[o + j] = GpuMath.Fma(s, g - a - xhat * b, p.Out[o + j]);
        }
    }

    /// <summary>Column j over one chunk of rows: dw_j += Σ dy·x̂, db_j += Σ dy.</summary>
    [Kernel]
    static void ParameterGradientKernel(LayerNormArgs p)
    {
        int j = Grid.IdxX * Group.DimX + Group.IdxX;
        if (j >= p.Cols) return;
        int r0 = Grid.IdxY * GpuReduce.RowsPerChunk, r1 = Math.Min(p.Rows, r0 + GpuReduce.RowsPerChunk);
        float dw = 0f, db = 0f;
        for (int r = r0; r < r1; r++)
        {
            long o = (long)r * p.Cols + j;
            float g = p.Dy[o];
            dw = GpuMath.Fma(g, (p.X[o] - p.Mean[r]) * p.Rstd[r], dw);
            db += g;
        }
        if (p.HasDWeight != 0) Atomic.Add(ref p.DWeight[j], dw);
        if (p.HasDBias != 0) Atomic.Add(ref p.DBias[j], db);
    }
}

internal struct LayerNormArgs
{
    public ArrayView<float> Out, Dy, X, Weight, Bias, Mean, Rstd, DWeight, DBias;
    public int HasWeight, HasBias, HasDWeight, HasDBias, Rows, Cols;
    public float Eps;
}
