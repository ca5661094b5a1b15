// Source: Karpathy, llm.c (encoder_forward/backward); the CPU engine's Kernels/Embedding.cs.
using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// Table lookup: row i of the output is row ids[i] of a vocab × dim table. The backward pass scatter-adds with float
/// atomics (repeated ids add up; their order varies from run to run). An id outside [0, vocab) cannot throw on the
/// device: it reads a zero row and receives no gradient.
/// </summary>
public sealed class GpuEmbedding
{
    readonly GpuDevice _device;
    readonly Action<KernelConfig, EmbeddingArgs> _forward, _backward;

    internal GpuEmbedding(GpuDevice device)
    {
        _device = device;
        _forward = device.Load<EmbeddingArgs>(ForwardKernel, ForwardKernel);
        _backward = device.Load<EmbeddingArgs>(BackwardKernel, BackwardKernel);
    }

    /// <summary>y[i, :] = table[ids[i], :]; y holds ids.Length × dim floats.</summary>
    public void Forward(GpuTensor y, GpuIntBuffer ids, GpuTensor table, int vocab, int dim)
    {
        var args = Arguments(ids, table, vocab, dim, nameof(table));
        Check.Count(_device, y, (long)ids.Length * dim, nameof(y), "ids.Length × dim");
        args.Y = y.View;
        if (args.Count > 0) _forward(_device.ElementLaunch(args.Count), args);
    }

    /// <summary>dtable[ids[i], :] += dy[i, :] for every i.</summary>
    public void Backward(GpuTensor dtable, GpuTensor dy, GpuIntBuffer ids, int vocab, int dim)
    {
        var args = Arguments(ids, dtable, vocab, dim, nameof(dtable));
        Check.Count(_device, dy, (long)ids.Length * dim, nameof(dy), "ids.Length × dim");
        args.Y = dy.View;
        if (args.Count > 0) _backward(_device.ElementLaunch(args.Count), args);
    }

    EmbeddingArgs Arguments(GpuIntBuffer ids, GpuTensor table, int vocab, int dim, string tableName)
    {
        Check.NonNegative(vocab, nameof(vocab));
        Check.NonNegative(dim, nameof(dim));
        Check.Count(_device, table, (long)vocab * dim, tableName, "vocab × dim");
        Check.Length(_device, ids, ids.Length, nameof(ids), "ids.Length");
        long count = (long)ids.Length * dim;
        if (count > int.MaxValue) throw new ArgumentException($"An embedding launch covers at most {int.MaxValue} " +
            $"floats; {ids.Length} ids × {dim} = {count}.");
        return new EmbeddingArgs { Table = table.View, Ids = ids.View, Vocab = vocab, Dim = dim, Count = (int)count };
    }

    [Kernel]
    static void ForwardKernel(EmbeddingArgs p)
    {
        for (int i = GpuMath.GridFirst; i < p.Count; i += GpuMath.GridStride)
        {
            int row = i / p.Dim, id = p.Ids[row];
            p.Y[i] = id >= 0 && id < p.Vocab ? p.Table[(long)id * p.Dim + (i - row * p.Dim)] : 0f;
        }
    }

    [Kernel]
    static void BackwardKernel(EmbeddingArgs p)
    {
        for (int i = GpuMath.GridFirst; i < p.Count; i += GpuMath.GridStride)
        {
            int row = i / p.Dim, id = p.Ids[row];
            if (id >= 0 && id < p.Vocab) Atomic.Add(ref p.Table[(long)id * p.Dim + (i - row * p.Dim)], p.Y[i]);
        }
    }
}

internal struct EmbeddingArgs
{
    public ArrayView<float> Y, Table;
    public ArrayView<int> Ids;
    public int Vocab, Dim, Count;
}
