// Source: Karpathy, llm.c train_gpt2.cu (residual_forward, encoder_forward): the additions of a GPT's forward pass.
using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// Element-wise sums of a GPT's forward pass, as one kernel: y = a + b (the residual stream, x + attn(…)) and
/// y[r, :] = a[r, :] + table[r mod P, :] (learned positions added to token embeddings, P = T; or a bias, P = 1).
/// y may be a itself (in place).
/// </summary>
public sealed class GpuAdd
{
    readonly GpuDevice _device;
    readonly Action<KernelConfig, AddArgs> _add;

    internal GpuAdd(GpuDevice device)
    {
        _device = device;
        _add = device.Load<AddArgs>(AddKernel, AddKernel);
    }

    /// <summary>y = a + b, element by element (the residual sum): one row of a.Count columns, b its one-row table.</summary>
    public void Residual(GpuTensor y, GpuTensor a, GpuTensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        Rows(y, a, b, 1, a.Count, 1);
    }

    /// <summary>
    /// y[r, j] = a[r, j] + table[r mod <paramref name="period"/>, j] for a rows × cols matrix a and a
    /// period × cols table.
    /// </summary>
    public void Rows(GpuTensor y, GpuTensor a, GpuTensor table, int rows, int cols, int period)
    {
        Check.NonNegative(rows, nameof(rows));
        Check.NonNegative(cols, nameof(cols));
        if (period < 1)
            throw new ArgumentOutOfRangeException(nameof(period), period, $"period must be at least 1; got {period}.");
        Check.Count(_device, a, (long)rows * cols, nameof(a), "rows × cols");
        Check.Count(_device, y, (long)rows * cols, nameof(y), "rows × cols");
        Check.Count(_device, table, (long)period * cols, nameof(table), "period × cols");
        long count = (long)rows * cols;
        if (count == 0) return;
        _add(_device.ElementLaunch(count), new AddArgs
        {
            Y = y.View, A = a.View, Table = table.View, Cols = cols, Period = period, Count = (int)count,
        });
    }

    [Kernel]
    static void AddKernel(AddArgs p)
    {
        for (int i = GpuMath.GridFirst; i < p.Count; i += GpuMath.GridStride)
        {
            int r = i / p.Cols, j = i - r * p.Cols;
            p.Y[i] = p.A[i] + p.Table[(long)(r % p.Period) * p.Cols + j];
        }
    }
}

internal struct AddArgs
{
    public ArrayView<float> Y, A, Table;
    public int Cols, Period, Count;
}
