// Source: Karpathy, llm.c train_gpt2.c (encoder_forward/backward), PyTorch torch.nn.Embedding.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>Table lookup: row i of the output is row ids[i] of a vocab × dim table (row-major).</summary>
public static unsafe class Embedding
{
    /// <summary>y[i, :] = table[ids[i], :]; y holds ids.Length × dim floats.</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<int> ids, ReadOnlySpan<float> table, int vocab, int dim)
    {
        Validate(ids, table.Length, vocab, dim);
        Guard.Matrix(nameof(y), y.Length, ids.Length, dim, "ids.Length", nameof(dim));
        fixed (float* py = y)
        fixed (int* pid = ids)
        fixed (float* pt = table)
            Work.Rows(ids.Length, dim, new ForwardKernel(py, pid, pt, dim));
    }

    /// <summary>dtable[ids[i], :] += dy[i, :] for every i (a scatter-add: repeated ids add up).</summary>
    public static void Backward(Span<float> dtable, ReadOnlySpan<float> dy, ReadOnlySpan<int> ids, int vocab, int dim)
    {
        Validate(ids, dtable.Length, vocab, dim, nameof(dtable));
        Guard.Matrix(nameof(dy), dy.Length, ids.Length, dim, "ids.Length", nameof(dim));
        fixed (float* pdt = dtable)
        fixed (float* pdy = dy)
        fixed (int* pid = ids)
            Work.Columns(ids.Length, dim, new BackwardKernel(pdt, pdy, pid, ids.Length, dim));
    }

    /// <summary>Shape and id checks shared with the reference twin.</summary>
    internal static void Validate(ReadOnlySpan<int> ids, int tableLength, int vocab, int dim, string tableName = "table")
    {
        Guard.Shape(vocab, dim, nameof(vocab), nameof(dim));
        Guard.Matrix(tableName, tableLength, vocab, dim, nameof(vocab), nameof(dim));
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)vocab)
                throw new ArgumentException($"ids[{i}] is {ids[i]}; expected an id in [0, {vocab}) (vocab = {vocab}).",
                    nameof(ids));
        }
    }

    readonly struct ForwardKernel(float* y, int* ids, float* table, int dim) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int i = start; i < end; i++)
                new ReadOnlySpan<float>(table + (long)ids[i] * dim, dim).CopyTo(new Span<float>(y + (long)i * dim, dim));
        }
    }

    readonly struct BackwardKernel(float* dtable, float* dy, int* ids, int count, int dim) : IRangeKernel
    {
        // Runs over columns [start, end), adding positions in order, so repeated ids never race.
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int i = 0; i < count; i++)
            {
                float* src = dy + (long)i * dim, dst = dtable + (long)ids[i] * dim;
                int j = start;
                for (; j <= end - T.Count; j += T.Count) T.Store(T.Load(in dst[j]) + T.Load(in src[j]), ref dst[j]);
                for (; j < end; j++) dst[j] += src[j];
            }
        }
    }
}
