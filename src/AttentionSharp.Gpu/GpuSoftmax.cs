// Sources: Bridle (1990) for softmax; the CPU engine's Kernels/Softmax.cs, whose semantics (max subtracted, an all −∞
// row gives zeros) these follow.
using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// Row-wise softmax over rows × cols (row-major), one group per row. The maximum is subtracted before exponentiating; a
/// row that is entirely −∞ gives zeros (not NaN) and its backward pass contributes nothing.
/// </summary>
public sealed class GpuSoftmax
{
    readonly GpuDevice _device;
    readonly Action<KernelConfig, SoftmaxArgs> _forward, _backward;

    internal GpuSoftmax(GpuDevice device)
    {
        _device = device;
        _forward = device.Load<SoftmaxArgs>(ForwardKernel, ForwardKernel);
        _backward = device.Load<SoftmaxArgs>(BackwardKernel, BackwardKernel);
    }

    /// <summary>y = softmax(x) along each row.</summary>
    public void Forward(GpuTensor y, GpuTensor x, int rows, int cols)
    {
        CheckShape(rows, cols);
        Check.Count(_device, y, (long)rows * cols, nameof(y), "rows × cols");
        Check.Count(_device, x, (long)rows * cols, nameof(x), "rows × cols");
        if (rows == 0 || cols == 0) return;
        _forward(_device.RowLaunch(rows), new SoftmaxArgs { Out = y.View, Dy = x.View, Y = x.View, Cols = cols });
    }

    /// <summary>dx += y ⊙ (dy − Σ_j dy_j·y_j), per row; <paramref name="y"/> is the forward output.</summary>
    public void Backward(GpuTensor dx, GpuTensor dy, GpuTensor y, int rows, int cols)
    {
        CheckShape(rows, cols);
        Check.Count(_device, dx, (long)rows * cols, nameof(dx), "rows × cols");
        Check.Count(_device, dy, (long)rows * cols, nameof(dy), "rows × cols");
        Check.Count(_device, y, (long)rows * cols, nameof(y), "rows × cols");
        if (rows == 0 || cols == 0) return;
        _backward(_device.RowLaunch(rows), new SoftmaxArgs { Out = dx.View, Dy = dy.View, Y = y.View, Cols = cols });
    }

    static void CheckShape(int rows, int cols)
    {
        Check.NonNegative(rows, nameof(rows));
        Check.NonNegative(cols, nameof(cols));
    }

    /// <summary>Row Grid.IdxX; the input is read from <see cref="SoftmaxArgs.Y"/>.</summary>
    [Kernel]
    static void ForwardKernel(SoftmaxArgs p)
    {
        int t = Group.IdxX, threads = Group.DimX;
        long o = (long)Grid.IdxX * p.Cols;
        float max = float.NegativeInfinity;
        for (int j = t; j < p.Cols; j += threads) max = MathF.Max(max, p.Y[o + j]);
        max = GpuMath.GroupMax(max);
        if (float.IsNegativeInfinity(max))
        {
            for (int j = t; j < p.Cols; j += threads) p.Out[o + j] = 0f;
            return;
        }
        // y_j = e^(x_j − max x) / Σ_k e^(x_k − max x)
        float sum = 0f;
        for (int j = t; j < p.Cols; j += threads)
        {
            float e = MathF.Exp(p.Y[o + j] - max);
            p.Out[o + j] = e;
            sum += e;
        }
        float inverse = 1f / GpuMath.GroupSum(sum);
        for (int j = t; j < p.Cols; j += threads) p.Out[o + j] *= inverse;
    }

    [Kernel]
    static void BackwardKernel(SoftmaxArgs p)
    {
        int t = Group.IdxX, threads = Group.DimX;
        long o = (long)Grid.IdxX * p.Cols;
        // s = Σ_j dy_j·y_j
        float s = 0f;
        for (int j = t; j < p.Cols; j += threads) s = GpuMath.Fma(p.Dy[o + j], p.Y[o + j], s);
        s = GpuMath.GroupSum(s);
        // dx_j += y_j·(dy_j − s)
        for (int j = t; j < p.Cols; j += threads) p.Out[o + j] = GpuMath.Fma(p.Y[o + j], p.Dy[o + j] - s, p.Out[o + j]);
    }
}

internal struct SoftmaxArgs
{
    public ArrayView<float> Out, Dy, Y;
    public int Cols;
}
