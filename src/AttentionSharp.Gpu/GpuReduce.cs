// Sources: Pascanu, Mikolov & Bengio (2013), global-norm gradient clipping as torch.nn.utils.clip_grad_norm_ (the CPU
// engine's Kernels/Norms.cs); Harris, "Optimizing Parallel Reduction in CUDA" (2007) for grid-stride partial sums.
using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// The reductions a training step needs besides the row kernels: Σx² over gradient buffers (the global norm of
/// clipping), scaling in place, and column sums (bias gradients). Partial sums meet through float atomics, so the
/// order of the final additions varies from run to run.
/// </summary>
public sealed class GpuReduce
{
    /// <summary>Rows one thread of a column kernel sums before its atomic add.</summary>
    internal const int RowsPerChunk = 64;

    readonly GpuDevice _device;
    readonly Action<KernelConfig, ReduceArgs> _sumOfSquares, _scale, _columnSum;

    internal GpuReduce(GpuDevice device)
    {
        _device = device;
        _sumOfSquares = device.Load<ReduceArgs>(SumOfSquaresKernel, SumOfSquaresKernel);
        _scale = device.Load<ReduceArgs>(ScaleKernel, ScaleKernel);
        _columnSum = device.Load<ReduceArgs>(ColumnSumKernel, ColumnSumKernel);
    }

    /// <summary>
    /// total[0] += Σ_i x_i² (total holds one float). Call it once per gradient buffer on one zeroed total to get ‖g‖²
    /// over all of them, as global-norm clipping needs.
    /// </summary>
    public void SumOfSquares(GpuTensor total, GpuTensor x)
    {
        Check.Count(_device, total, 1, nameof(total), "one float");
        Check.AtLeast(_device, x, 0, nameof(x), "any");
        if (x.Count == 0) return;
        _sumOfSquares(_device.ElementLaunch(x.Count), new ReduceArgs { Out = total.View, X = x.View, Count = x.Count });
    }

    /// <summary>x ← s·x in place.</summary>
    public void Scale(GpuTensor x, float s)
    {
        Check.AtLeast(_device, x, 0, nameof(x), "any");
        if (x.Count == 0) return;
        _scale(_device.ElementLaunch(x.Count), new ReduceArgs { Out = x.View, X = x.View, Count = x.Count, Factor = s });
    }

    /// <summary>dst_j += Σ_r x[r, j] for a rows × cols matrix x: the gradient of a bias broadcast over rows.</summary>
    public void ColumnSum(GpuTensor dst, GpuTensor x, int rows, int cols)
    {
        Check.NonNegative(rows, nameof(rows));
        Check.NonNegative(cols, nameof(cols));
        Check.Count(_device, dst, cols, nameof(dst), "cols");
        Check.Count(_device, x, (long)rows * cols, nameof(x), "rows × cols");
        if (rows == 0 || cols == 0) return;
        _columnSum(ColumnLaunch(_device, rows, cols), new ReduceArgs { Out = dst.View, X = x.View, Rows = rows, Cols = cols });
    }

    /// <summary>A grid of (column blocks, row chunks): thread (j, chunk) sums column j over one chunk of rows.</summary>
    internal static KernelConfig ColumnLaunch(GpuDevice device, int rows, int cols)
    {
        int threads = device.RowThreads;
        return new KernelConfig(
            new Index2D((cols + threads - 1) / threads, (rows + RowsPerChunk - 1) / RowsPerChunk),
            new Index2D(threads, 1));
    }

    [Kernel]
    static void SumOfSquaresKernel(ReduceArgs p)
    {
        // Each thread sums a grid-stride slice, the group adds its threads, one atomic per group.
        float sum = 0f;
        for (int i = GpuMath.GridFirst; i < p.Count; i += GpuMath.GridStride)
        {
            float v = p.X[i];
            sum = GpuMath.Fma(v, v, sum);
        }
        sum = GpuMath.GroupSum(sum);
        if (Group.IdxX == 0) Atomic.Add(ref p.Out[0], sum);
    }

    [Kernel]
    static void ScaleKernel(ReduceArgs p)
    {
        for (int i = GpuMath.GridFirst; i < p.Count; i += GpuMath.GridStride) p.Out[i] *= p.Factor;
    }

    [Kernel]
    static void ColumnSumKernel(ReduceArgs p)
    {
        int j = Grid.IdxX * Group.DimX + Group.IdxX;
        if (j >= p.Cols) return;
        int r0 = Grid.IdxY * RowsPerChunk, r1 = Math.Min(p.Rows, r0 + RowsPerChunk);
        float sum = 0f;
        for (int r = r0; r < r1; r++) sum += p.X[(long)r * p.Cols + j];
        Atomic.Add(ref p.Out[j], sum);
    }
}

internal struct ReduceArgs
{
    public ArrayView<float> Out, X;
    public int Count, Rows, Cols;
    public float Factor;
}
