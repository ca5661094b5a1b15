// Sources: Bridle, "Probabilistic Interpretation of Feedforward Classification Network Outputs" (1990) for softmax;
// Karpathy, llm.c train_gpt2.c, for the forward/backward layout.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// Row-wise softmax over <c>rows</c> independent rows of <c>cols</c> floats (row-major). The maximum is subtracted
/// before exponentiating, so no input overflows. A row that is entirely −∞ (fully masked) gives an all-zero row rather
/// than NaN; its backward pass then contributes nothing. cols = 0 does nothing.
/// </summary>
public static unsafe class Softmax
{
    /// <summary>y = softmax(x) along each row.</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int rows, int cols)
        => RowPass.Forward<ForwardKernel>(y, x, rows, cols);

    /// <summary>dx += y ⊙ (dy − Σ_j dy_j·y_j), per row; <paramref name="y"/> is the forward output.</summary>
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
                float* xr = x + (long)r * cols, yr = y + (long)r * cols;
                var output = new Span<float>(yr, cols);
                float m = TensorPrimitives.Max(new ReadOnlySpan<float>(xr, cols));
                if (float.IsNegativeInfinity(m))
                {
                    output.Clear();
                    continue;
                }
                // y_j = e^(x_j − max x), s = Σ_j y_j
                float s = RowMath.ExpShiftSum<T>(yr, xr, cols, m);
                // y_j = y_j / s
                TensorPrimitives.Multiply(output, 1f / s, output);
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
                // s = Σ_j dy_j·y_j
                float s = TensorPrimitives.Dot(new ReadOnlySpan<float>(dyr, cols), new ReadOnlySpan<float>(yr, cols));
                // dx_j += y_j·(dy_j − s)
                T vs = T.Create(s);
                int j = 0;
                for (; j <= cols - T.Count; j += T.Count)
                    T.Store(T.MultiplyAdd(T.Load(in yr[j]), T.Load(in dyr[j]) - vs, T.Load(in dxr[j])), ref dxr[j]);
                for (; j < cols; j++) dxr[j] += yr[j] * (dyr[j] - s);
            }
        }
    }
}
