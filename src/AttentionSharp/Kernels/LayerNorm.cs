// Sources: Ba, Kiros & Hinton, "Layer Normalization" (2016); Karpathy, llm.c train_gpt2.c (layernorm_forward/backward);
// PyTorch torch.nn.LayerNorm (biased variance, eps inside the square root).
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// Layer normalisation over the last dimension of a rows × cols matrix (row-major), with PyTorch semantics: biased
/// variance and eps inside the square root. <c>weight</c> and <c>bias</c> (length cols) may be empty, meaning 1 and 0.
/// The forward pass saves per-row mean and rstd = 1/√(var + eps) for the backward pass. cols = 0 does nothing.
/// </summary>
public static unsafe class LayerNorm
{
    /// <summary>
    /// y = (x − mean)·rstd·weight + bias, per row; writes <paramref name="mean"/> and <paramref name="rstd"/> (length rows).
    /// </summary>
    public static void Forward(Span<float> y, Span<float> mean, Span<float> rstd, ReadOnlySpan<float> x,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int rows, int cols, float eps)
    {
        Validate(rows, cols, eps, y.Length, mean.Length, rstd.Length, x.Length, weight.Length, bias.Length);
        if (cols == 0) return;
        fixed (float* py = y)
        fixed (float* pmean = mean)
        fixed (float* prstd = rstd)
        fixed (float* px = x)
        fixed (float* pw = weight)
        fixed (float* pb = bias)
            Work.Rows(rows, cols, new ForwardKernel(py, pmean, prstd, px, pw, pb, cols, eps));
    }

    /// <summary>
    /// Accumulates the gradients of <see cref="Forward"/>: dx, and (unless empty) dweight and dbias, from dy, the forward
    /// input x, weight (empty = 1) and the saved mean and rstd. With <paramref name="accumulateInput"/> false, dx is
    /// written instead of added to (its old contents are not read).
    /// </summary>
    public static void Backward(Span<float> dx, Span<float> dweight, Span<float> dbias, ReadOnlySpan<float> dy,
        ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, int rows, int cols,
        bool accumulateInput = true)
    {
        ValidateBackward(rows, cols, dx.Length, dweight.Length, dbias.Length, dy.Length, x.Length, weight.Length, mean.Length,
            rstd.Length);
        if (cols == 0) return;
        fixed (float* pdx = dx)
        fixed (float* pdw = dweight)
        fixed (float* pdb = dbias)
        fixed (float* pdy = dy)
        fixed (float* px = x)
        fixed (float* pw = weight)
        fixed (float* pmean = mean)
        fixed (float* prstd = rstd)
        {
            Work.Rows(rows, cols, new InputGradientKernel(pdx, pdy, px, pw, pmean, prstd, cols, accumulateInput));
            if (pdw != null || pdb != null)
                Work.Columns(rows, cols, new ParameterGradientKernel(pdw, pdb, pdy, px, pmean, prstd, rows, cols));
        }
    }

    /// <summary>Length checks of <see cref="Backward"/>, shared with the reference twin.</summary>
    internal static void ValidateBackward(int rows, int cols, int dx, int dweight, int dbias, int dy,
        int x, int weight, int mean, int rstd)
    {
        Guard.Shape(rows, cols);
        Guard.Matrix(nameof(dx), dx, rows, cols);
        Guard.OptionalVector(nameof(dweight), dweight, cols, nameof(cols));
        Guard.OptionalVector(nameof(dbias), dbias, cols, nameof(cols));
        Guard.Matrix(nameof(dy), dy, rows, cols);
        Guard.Matrix(nameof(x), x, rows, cols);
        Guard.OptionalVector(nameof(weight), weight, cols, nameof(cols));
        Guard.Vector(nameof(mean), mean, rows, nameof(rows));
        Guard.Vector(nameof(rstd), rstd, rows, nameof(rows));
    }

    /// <summary>Length and eps checks of <see cref="Forward"/>, shared with the reference twin.</summary>
    internal static void Validate(int rows, int cols, float eps, int y, int mean, int rstd, int x, int weight, int bias)
    {
        Guard.Shape(rows, cols);
        Guard.Matrix(nameof(y), y, rows, cols);
        Guard.Vector(nameof(mean), mean, rows, nameof(rows));
        Guard.Vector(nameof(rstd), rstd, rows, nameof(rows));
        Guard.Matrix(nameof(x), x, rows, cols);
        Guard.OptionalVector(nameof(weight), weight, cols, nameof(cols));
        Guard.OptionalVector(nameof(bias), bias, cols, nameof(cols));
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"eps must be non-negative; got {eps}.");
    }

    readonly struct ForwardKernel(float* y, float* mean, float* rstd, float* x, float* w, float* b,
        int cols, float eps) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int r = start; r < end; r++)
            {
                float* xr = x + (long)r * cols, yr = y + (long)r * cols;
                var output = new Span<float>(yr, cols);
                // μ = (1/C) Σ_j x_j
                float mu = TensorPrimitives.Sum(new ReadOnlySpan<float>(xr, cols)) / cols;
                // σ² = (1/C) Σ_j (x_j − μ)² (biased, two-pass so no cancellation)
                T vmu = T.Create(mu), acc = T.Create(0f);
                int j = 0;
                for (; j <= cols - T.Count; j += T.Count)
                {
                    T d = T.Load(in xr[j]) - vmu;
                    acc = T.MultiplyAdd(d, d, acc);
                }
                float ss = T.Sum(acc);
                for (; j < cols; j++) ss += (xr[j] - mu) * (xr[j] - mu);
                // rstd = 1/√(σ² + eps)
                float s = 1f / MathF.Sqrt(ss / cols + eps);
                mean[r] = mu;
                rstd[r] = s;
                // y_j = (x_j − μ)·rstd·w_j + b_j
                T vs = T.Create(s);
                j = 0;
                if (w != null && b != null)
                {
                    for (; j <= cols - T.Count; j += T.Count)
                        T.Store(T.MultiplyAdd((T.Load(in xr[j]) - vmu) * vs, T.Load(in w[j]), T.Load(in b[j])), ref yr[j]);
                    for (; j < cols; j++) yr[j] = (xr[j] - mu) * s * w[j] + b[j];
                    continue;
                }
                for (; j <= cols - T.Count; j += T.Count) T.Store((T.Load(in xr[j]) - vmu) * vs, ref yr[j]);
                for (; j < cols; j++) yr[j] = (xr[j] - mu) * s;
                if (w != null) TensorPrimitives.Multiply(output, new ReadOnlySpan<float>(w, cols), output);
                if (b != null) TensorPrimitives.Add(output, new ReadOnlySpan<float>(b, cols), output);
            }
        }
    }

    readonly struct InputGradientKernel(float* dx, float* dy, float* x, float* w, float* mean, float* rstd,
        int cols, bool accumulate) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int r = start; r < end; r++)
            {
                long o = (long)r * cols;
                float* dxr = dx + o, dyr = dy + o, xr = x + o;
                float mu = mean[r], s = rstd[r];
                T vmu = T.Create(mu), vs = T.Create(s);
                // x̂_j = (x_j − μ)·rstd, g_j = w_j·dy_j; a = (1/C) Σ_j g_j, b = (1/C) Σ_j g_j·x̂_j
                T accA = T.Create(0f), accB = T.Create(0f);
                int j = 0;
                for (; j <= cols - T.Count; j += T.Count)
                {
                    T g = w != null ? T.Load(in w[j]) * T.Load(in dyr[j]) : T.Load(in dyr[j]);
                    accA += g;
                    accB = T.MultiplyAdd(g, (T.Load(in xr[j]) - vmu) * vs, accB);
                }
                float a = T.Sum(accA), b = T.Sum(accB);
                for (; j < cols; j++)
                {
                    float g = w != null ? w[j] * dyr[j] : dyr[j];
                    a += g;
                    b += g * ((xr[j] - mu) * s);
                }
                a /= cols;
                b /= cols;
                // dx_j += rstd·(g_j − a − x̂_j·b), added to 0 when dx is only written
                T va = T.Create(a), vb = T.Create(b);
                j = 0;
                for (; j <= cols - T.Count; j += T.Count)
                {
                    T g = w != null ? T.Load(in w[j]) * T.Load(in dyr[j]) : T.Load(in dyr[j]);
                    T xhat = (T.Load(in xr[j]) - vmu) * vs;
                    T.Store(T.MultiplyAdd(vs, g - va - xhat * vb, accumulate ? T.Load(in dxr[j]) : T.Create(0f)), ref dxr[j]);
                }
                for (; j < cols; j++)
                {
                    float g = w != null ? w[j] * dyr[j] : dyr[j];
                    dxr[j] = (accumulate ? dxr[j] : 0f) + s * (g - a - (xr[j] - mu) * s * b);
                }
            }
        }
    }

    readonly struct ParameterGradientKernel(float* dw, float* db, float* dy, float* x, float* mean, float* rstd,
        int rows, int cols) : IRangeKernel
    {
        // Runs over columns [start, end), adding rows in order.
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int r = 0; r < rows; r++)
            {
                long o = (long)r * cols;
                float* dyr = dy + o, xr = x + o;
                float mu = mean[r], s = rstd[r];
                T vmu = T.Create(mu), vs = T.Create(s);
                int j = start;
                // dw_j += dy_j·x̂_j, db_j += dy_j
                for (; j <= end - T.Count; j += T.Count)
                {
                    T g = T.Load(in dyr[j]);
                    if (dw != null) T.Store(T.MultiplyAdd(g, (T.Load(in xr[j]) - vmu) * vs, T.Load(in dw[j])), ref dw[j]);
                    if (db != null) T.Store(T.Load(in db[j]) + g, ref db[j]);
                }
                for (; j < end; j++)
                {
                    if (dw != null) dw[j] += dyr[j] * ((xr[j] - mu) * s);
                    if (db != null) db[j] += dyr[j];
                }
            }
        }
    }
}
