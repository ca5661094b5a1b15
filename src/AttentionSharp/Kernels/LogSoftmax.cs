// Sources: Karpathy, llm.c train_gpt2.c, for the forward/backward layout; PyTorch torch.nn.functional.log_softmax.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// Row-wise log-softmax over <c>rows</c> independent rows of <c>cols</c> floats (row-major), computed as
/// x − logsumexp(x) with the maximum subtracted inside the logsumexp. A row that is entirely −∞ gives an all −∞ row
/// (the logarithm of softmax's all-zero row) rather than NaN. cols = 0 does nothing.
/// </summary>
public static unsafe class LogSoftmax
{
    /// <summary>y = x − log Σ_j e^(x_j), per row.</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int rows, int cols)
        => RowPass.Forward<ForwardKernel>(y, x, rows, cols);

    /// <summary>dx += dy − e^y·Σ_j dy_j, per row; <paramref name="y"/> is the forward output.</summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, int rows, int cols)
        => RowPass.Backward<BackwardKernel>(dx, dy, y, rows, cols);

    readonly struct ForwardKernel(float* y, float* x, int cols) : IRowForward<ForwardKernel>
    {
        public static ForwardKernel Create(float* y, float* x, int cols) => new(y, x, cols);

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int r = start; r < end; r++)
            {
                float* xr = x + (long)r * cols;
                // lse = max x + log Σ_j e^(x_j − max x)
                float lse = RowMath.LogSumExp<T>(xr, cols);
                // y_j = x_j − lse
                var output = new Span<float>(y + (long)r * cols, cols);
                if (float.IsNegativeInfinity(lse)) output.Fill(float.NegativeInfinity);
                else TensorPrimitives.Subtract(new ReadOnlySpan<float>(xr, cols), lse, output);
            }
        }
    }

    readonly struct BackwardKernel(float* dx, float* dy, float* y, int cols) : IRowBackward<BackwardKernel>
    {
        public static BackwardKernel Create(float* dx, float* dy, float* y, int cols) => new(dx, dy, y, cols);

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int r = start; r < end; r++)
            {
                long o = (long)r * cols;
                float* dxr = dx + o, dyr = dy + o, yr = y + o;
                // s = Σ_j dy_j
                float s = TensorPrimitives.Sum(new ReadOnlySpan<float>(dyr, cols));
                // dx_j += dy_j − e^(y_j)·s
                T vs = T.Create(s);
                int j = 0;
                for (; j <= cols - T.Count; j += T.Count)
                {
                    T g = T.Load(in dyr[j]) - SimdMath.Exp(T.Load(in yr[j])) * vs;
                    T.Store(T.Load(in dxr[j]) + g, ref dxr[j]);
                }
                for (; j < cols; j++)
                    dxr[j] += dyr[j] - SimdMath.Exp(Vec1.Load(in yr[j])).Value * s;
            }
        }
    }
}
