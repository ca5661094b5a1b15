// Source: Karpathy, llm.c train_gpt2.c (encoder_forward/backward), PyTorch torch.nn.Embedding.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// Table lookup: row i of the output is row ids[i] of a vocab × dim table (row-major). The same lookup gathers and
/// scatters rows of activations (<see cref="Tensor.GatherRows"/>), where an id of <see cref="Absent"/> stands for a row
/// of zeros.
/// </summary>
public static unsafe class Embedding
{
    /// <summary>With <c>allowAbsent</c>, the id of a row of zeros, which receives no gradient.</summary>
    public const int Absent = -1;

    /// <summary>
    /// y[i, :] = table[ids[i], :]; y holds ids.Length × dim floats. With <paramref name="allowAbsent"/>, an id of
    /// <see cref="Absent"/> gives a row of zeros.
    /// </summary>
    public static void Forward(Span<float> y, ReadOnlySpan<int> ids, ReadOnlySpan<float> table, int vocab, int dim,
        bool allowAbsent = false)
    {
        Validate(ids, table.Length, vocab, dim, allowAbsent: allowAbsent);
        Guard.Matrix(nameof(y), y.Length, ids.Length, dim, "ids.Length", nameof(dim));
        fixed (float* py = y)
        fixed (int* pid = ids)
        fixed (float* pt = table)
            Work.Rows(ids.Length, dim, new ForwardKernel(py, pid, pt, dim));
    }

    /// <summary>
    /// dtable[ids[i], :] += dy[i, :] for every i (a scatter-add: repeated ids add up); with
    /// <paramref name="allowAbsent"/>, rows whose id is <see cref="Absent"/> are skipped.
    /// </summary>
    public static void Backward(Span<float> dtable, ReadOnlySpan<float> dy, ReadOnlySpan<int> ids, int vocab, int dim,
        bool allowAbsent = false)
    {
        Validate(ids, dtable.Length, vocab, dim, nameof(dtable), allowAbsent);
        Guard.Matrix(nameof(dy), dy.Length, ids.Length, dim, "ids.Length", nameof(dim));
        fixed (float* pdt = dtable)
        fixed (float* pdy = dy)
        fixed (int* pid = ids)
            Work.Columns(ids.Length, dim, new BackwardKernel(pdt, pdy, pid, ids.Length, dim));
    }

    /// <summary>Shape and id checks shared with the reference twin.</summary>
    internal static void Validate(ReadOnlySpan<int> ids, int tableLength, int vocab, int dim, string tableName = "table",
        bool allowAbsent = false)
    {
        Guard.Shape(vocab, dim, nameof(vocab), nameof(dim));
        Guard.Matrix(tableName, tableLength, vocab, dim, nameof(vocab), nameof(dim));
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)vocab && !(allowAbsent && ids[i] == Absent))
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
            {
                var row = new Span<float>(y + (long)i * dim, dim);
                if (ids[i] == Absent) row.Clear();
                else new ReadOnlySpan<float>(table + (long)ids[i] * dim, dim).CopyTo(row);
            }
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
                if (ids[i] == Absent) continue;
                float* src = dy + (long)i * dim, dst = dtable + (long)ids[i] * dim;
                int j = start;
                for (; j <= end - T.Count; j += T.Count) T.Store(T.Load(in dst[j]) + T.Load(in src[j]), ref dst[j]);
                for (; j < end; j++) dst[j] += src[j];
            }
        }
    }
}
