// Sources: Zhang & Sennrich, "Root Mean Square Layer Normalization" (2019); PyTorch torch.nn.RMSNorm (eps inside the
// square root); Karpathy, llm.c train_gpt2.c, for the forward/backward layout.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// RMS normalisation over the last dimension of a rows × cols matrix (row-major): no mean is subtracted and there is
/// no bias. <c>weight</c> (length cols) may be empty, meaning 1. The forward pass saves rstd = 1/√(mean(x²) + eps)
/// per row. cols = 0 does nothing.
/// </summary>
public static unsafe class RmsNorm
{
    /// <summary>
    /// y = x·rstd·weight with rstd = 1/√((1/C) Σ_j x_j² + eps), per row; writes <paramref name="rstd"/> (length rows).
    /// </summary>
    public static void Forward(Span<float> y, Span<float> rstd, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
        int rows, int cols, float eps)
    {
        Validate(rows, cols, eps, y.Length, rstd.Length, x.Length, weight.Length);
        if (cols == 0) return;
        fixed (float* py = y)
        fixed (float* prstd = rstd)
        fixed (float* px = x)
        fixed (float* pw = weight)
            Work.Rows(rows, cols, new ForwardKernel(py, prstd, px, pw, cols, eps));
    }

    /// <summary>
    /// Accumulates the gradients of <see cref="Forward"/>: dx, and (unless empty) dweight, from dy, the forward input x,
    /// weight (empty = 1) and the saved rstd.
    /// </summary>
    public static void Backward(Span<float> dx, Span<float> dweight, ReadOnlySpan<float> dy, ReadOnlySpan<float> x,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, int rows, int cols)
    {
        ValidateBackward(rows, cols, dx.Length, dweight.Length, dy.Length, x.Length, weight.Length, rstd.Length);
        if (cols == 0) return;
        fixed (float* pdx = dx)
        fixed (float* pdw = dweight)
        fixed (float* pdy = dy)
        fixed (float* px = x)
        fixed (float* pw = weight)
        fixed (float* prstd = rstd)
        {
            Work.Rows(rows, cols, new InputGradientKernel(pdx, pdy, px, pw, prstd, cols));
            if (pdw != null) Work.Columns(rows, cols, new WeightGradientKernel(pdw, pdy, px, prstd, rows, cols));
        }
    }

    /// <summary>Length and eps checks of <see cref="Forward"/>, shared with the reference twin.</summary>
    internal static void Validate(int rows, int cols, float eps, int y, int rstd, int x, int weight)
    {
        Guard.Shape(rows, cols);
        Guard.Matrix(nameof(y), y, rows, cols);
        Guard.Vector(nameof(rstd), rstd, rows, nameof(rows));
        Guard.Matrix(nameof(x), x, rows, cols);
        Guard.OptionalVector(nameof(weight), weight, cols, nameof(cols));
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"eps must be non-negative; got {eps}.");
    }

    /// <summary>Length checks of <see cref="Backward"/>, shared with the reference twin.</summary>
    internal static void ValidateBackward(int rows, int cols, int dx, int dweight, int dy, int x, int weight, int rstd)
    {
        Guard.Shape(rows, cols);
        Guard.Matrix(nameof(dx), dx, rows, cols);
        Guard.OptionalVector(nameof(dweight), dweight, cols, nameof(cols));
        Guard.Matrix(nameof(dy), dy, rows, cols);
        Guard.Matrix(nameof(x), x, rows, cols);
        Guard.OptionalVector(nameof(weight), weight, cols, nameof(cols));
        Guard.Vector(nameof(rstd), rstd, rows, nameof(rows));
    }

    readonly struct ForwardKernel(float* y, float* rstd, float* x, float* w, int cols, float eps) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int r = start; r < end; r++)
            {
                var input = new ReadOnlySpan<float>(x + (long)r * cols, cols);
                var output = new Span<float>(y + (long)r * cols, cols);
                // rstd = 1/√((1/C) Σ_j x_j² + eps)
                float s = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(input) / cols + eps);
                rstd[r] = s;
                // y_j = x_j·rstd·w_j
                TensorPrimitives.Multiply(input, s, output);
                if (w != null) TensorPrimitives.Multiply(output, new ReadOnlySpan<float>(w, cols), output);
            }
        }
    }

    readonly struct InputGradientKernel(float* dx, float* dy, float* x, float* w, float* rstd, int cols) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int r = start; r < end; r++)
            {
                long o = (long)r * cols;
                float* dxr = dx + o, dyr = dy + o, xr = x + o;
                float s = rstd[r];
                T vs = T.Create(s);
                // x̂_j = x_j·rstd, g_j = w_j·dy_j; b = (1/C) Σ_j g_j·x̂_j
                T acc = T.Create(0f);
                int j = 0;
                for (; j <= cols - T.Count; j += T.Count)
                {
                    T g = w != null ? T.Load(in w[j]) * T.Load(in dyr[j]) : T.Load(in dyr[j]);
                    acc = T.MultiplyAdd(g, T.Load(in xr[j]) * vs, acc);
                }
                float b = T.Sum(acc);
                for (; j < cols; j++) b += (w != null ? w[j] * dyr[j] : dyr[j]) * (xr[j] * s);
                b /= cols;
                // dx_j += rstd·(g_j − x̂_j·b)
                T vb = T.Create(b);
                j = 0;
                for (; j <= cols - T.Count; j += T.Count)
                {
                    T g = w != null ? T.Load(in w[j]) * T.Load(in dyr[j]) : T.Load(in dyr[j]);
                    T.Store(T.MultiplyAdd(vs, g - T.Load(in xr[j]) * vs * vb, T.Load(in dxr[j])), ref dxr[j]);
                }
                for (; j < cols; j++)
                    dxr[j] += s * ((w != null ? w[j] * dyr[j] : dyr[j]) - xr[j] * s * b);
            }
        }
    }

    readonly struct WeightGradientKernel(float* dw, float* dy, float* x, float* rstd, int rows, int cols) : IRangeKernel
    {
        // Runs over columns [start, end), adding rows in order.
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int r = 0; r < rows; r++)
            {
                long o = (long)r * cols;
                float* dyr = dy + o, xr = x + o;
                float s = rstd[r];
                T vs = T.Create(s);
                // dw_j += dy_j·x̂_j
                int j = start;
                for (; j <= end - T.Count; j += T.Count)
                    T.Store(T.MultiplyAdd(T.Load(in dyr[j]), T.Load(in xr[j]) * vs, T.Load(in dw[j])), ref dw[j]);
                for (; j < end; j++) dw[j] += dyr[j] * (xr[j] * s);
            }
        }
    }
}
