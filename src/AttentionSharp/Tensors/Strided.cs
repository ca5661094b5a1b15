using System.Numerics.Tensors;

namespace AttentionSharp;

/// <summary>The element-wise binary operations that support broadcasting.</summary>
internal enum BinaryOp { Add, Sub, Mul, Div }

/// <summary>
/// Loops over strided, broadcast operands one innermost row at a time; rows whose operands are dense or broadcast scalars
/// go through TensorPrimitives (vectorised), the rest through a scalar loop. Passes that write each output element once
/// split large outputs over the threads by whole rows (<see cref="ForRows"/>); sums over broadcast dimensions stay on one
/// thread, in order.
/// </summary>
internal static unsafe class Strided
{
    /// <summary>out = a ∘ b (or out += a ∘ b), out dense with <paramref name="shape"/>; sa/sb already broadcast to it.</summary>
    public static void Binary(BinaryOp op, float* output, int[] shape, float* a, int[] sa, float* b, int[] sb, bool accumulate)
    {
        int rank = shape.Length;
        int count = ShapeMath.Count(shape);
        if (count == 0) return;
        if (rank == 0) { Apply(op, output, a, 0, b, 0, 1, accumulate); return; }
        ForRows(shape, (first, end) => BinaryRows(op, output, shape, a, sa, b, sb, accumulate, first, end));
    }

    /// <summary>Rows [first, end) of <see cref="Binary"/>, a row being the output's last dimension.</summary>
    static void BinaryRows(BinaryOp op, float* output, int[] shape, float* a, int[] sa, float* b, int[] sb,
        bool accumulate, int first, int end)
    {
        int rank = shape.Length;
        int inner = shape[rank - 1];
        int ia = sa[rank - 1], ib = sb[rank - 1];
        Span<int> index = stackalloc int[rank];
        RowIndex(index, shape, first);
        float* o = output + (long)first * inner;
        for (int r = first; r < end; r++)
        {
            long offA = 0, offB = 0;
            for (int d = 0; d < rank - 1; d++) { offA += (long)index[d] * sa[d]; offB += (long)index[d] * sb[d]; }
            Apply(op, o, a + offA, ia, b + offB, ib, inner, accumulate);
            o += inner;
            Next(index, shape, rank - 1);
        }
    }

    static void Next(Span<int> index, int[] shape, int dims)
    {
        for (int d = dims - 1; d >= 0; d--)
        {
            if (++index[d] < shape[d]) return;
            index[d] = 0;
        }
    }

    static void Apply(BinaryOp op, float* o, float* a, int ia, float* b, int ib, int n, bool accumulate)
    {
        var dst = new Span<float>(o, n);
        if (accumulate)
        {
            // Rare path (gradient accumulation into broadcast results): compute into a temporary row.
            Span<float> tmp = n <= 1024 ? stackalloc float[n] : new float[n];
            Apply(op, (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref tmp[0]), a, ia, b, ib, n, false);
            TensorPrimitives.Add(dst, tmp, dst);
            return;
        }
        if (ia == 1 && ib == 1)
        {
            var x = new ReadOnlySpan<float>(a, n); var y = new ReadOnlySpan<float>(b, n);
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(x, y, dst); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(x, y, dst); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(x, y, dst); break;
                default: TensorPrimitives.Divide(x, y, dst); break;
            }
        }
        else if (ia == 1 && ib == 0)
        {
            var x = new ReadOnlySpan<float>(a, n); float y = *b;
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(x, y, dst); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(x, y, dst); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(x, y, dst); break;
                default: TensorPrimitives.Divide(x, y, dst); break;
            }
        }
        else if (ia == 0 && ib == 1)
        {
            float x = *a; var y = new ReadOnlySpan<float>(b, n);
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(y, x, dst); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(x, y, dst); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(y, x, dst); break;
                default: TensorPrimitives.Divide(x, y, dst); break;
            }
        }
        else
        {
            for (int i = 0; i < n; i++)
            {
                float x = a[(long)i * ia], y = b[(long)i * ib];
                o[i] = op switch { BinaryOp.Add => x + y, BinaryOp.Sub => x - y, BinaryOp.Mul => x * y, _ => x / y };
            }
        }
    }

    /// <summary>
    /// dst[bcast(i)] += src[i] for every i of the dense <paramref name="shape"/>: sums <paramref name="src"/> over the
    /// dimensions where <paramref name="dstStrides"/> is 0 (the backward of broadcasting).
    /// </summary>
    public static void SumInto(float* dst, int[] dstStrides, float* src, int[] shape)
    {
        int rank = shape.Length;
        int count = ShapeMath.Count(shape);
        if (count == 0) return;
        if (rank == 0) { *dst += *src; return; }
        SumRows(dst, dstStrides, src, shape, 0, count / shape[rank - 1]);
    }

    /// <summary>
    /// dst (strided view with <paramref name="shape"/>) += src (dense), each element of the view a different float
    /// (a permuted or narrowed view, the backward of those ops): threads take whole rows, so every thread count gives
    /// the same floats.
    /// </summary>
    public static void AddDenseInto(float* dst, int[] dstStrides, float* src, int[] shape)
    {
        int rank = shape.Length;
        int count = ShapeMath.Count(shape);
        if (count == 0) return;
        if (rank == 0) { *dst += *src; return; }
        ForRows(shape, (first, end) => SumRows(dst, dstStrides, src, shape, first, end));
    }

    /// <summary>
    /// Runs <paramref name="body"/>(first, end) over the rows (the last dimension) of a non-empty
    /// <paramref name="shape"/> of rank ≥ 1: on the calling thread when small, else split over the threads by whole rows.
    /// </summary>
    static void ForRows(int[] shape, Action<int, int> body)
    {
        int inner = shape[^1];
        Kernels.Simd.Work.Rows(ShapeMath.Count(shape) / inner, inner, body);
    }

    /// <summary>Rows [first, end) of <see cref="SumInto"/>, a row being the last dimension of the dense source.</summary>
    static void SumRows(float* dst, int[] dstStrides, float* src, int[] shape, int first, int end)
    {
        int rank = shape.Length;
        int inner = shape[rank - 1], id = dstStrides[rank - 1];
        Span<int> index = stackalloc int[rank];
        RowIndex(index, shape, first);
        src += (long)first * inner;
        for (int r = first; r < end; r++)
        {
            long off = 0;
            for (int d = 0; d < rank - 1; d++) off += (long)index[d] * dstStrides[d];
            var row = new ReadOnlySpan<float>(src, inner);
            if (id == 1) { var d = new Span<float>(dst + off, inner); TensorPrimitives.Add(d, row, d); }
            else if (id == 0) dst[off] += TensorPrimitives.Sum(row);
            else for (int i = 0; i < inner; i++) dst[off + (long)i * id] += row[i];
            src += inner;
            Next(index, shape, rank - 1);
        }
    }

    /// <summary>The index over the leading dimensions (all but the last) of row <paramref name="row"/>.</summary>
    internal static void RowIndex(Span<int> index, int[] shape, int row)
    {
        for (int d = shape.Length - 2; d >= 0; d--)
        {
            index[d] = row % shape[d];
            row /= shape[d];
        }
    }

    /// <summary>
    /// dst[i] = src[i] for every index i of <paramref name="shape"/>, both strided (rows with unit stride are block
    /// copies), each element of dst a different float; large copies split their rows over the threads.
    /// </summary>
    public static void Copy(float* dst, int[] dstStrides, float* src, int[] srcStrides, int[] shape)
    {
        int rank = shape.Length;
        int count = ShapeMath.Count(shape);
        if (count == 0) return;
        if (rank == 0) { *dst = *src; return; }
        ForRows(shape, (first, end) => CopyRows(dst, dstStrides, src, srcStrides, shape, first, end));
    }

    static void CopyRows(float* dst, int[] dstStrides, float* src, int[] srcStrides, int[] shape, int first, int end)
    {
        int rank = shape.Length;
        int inner = shape[rank - 1], id = dstStrides[rank - 1], isrc = srcStrides[rank - 1];
        Span<int> index = stackalloc int[rank];
        RowIndex(index, shape, first);
        for (int r = first; r < end; r++)
        {
            long offD = 0, offS = 0;
            for (int d = 0; d < rank - 1; d++) { offD += (long)index[d] * dstStrides[d]; offS += (long)index[d] * srcStrides[d]; }
            if (id == 1 && isrc == 1) new ReadOnlySpan<float>(src + offS, inner).CopyTo(new Span<float>(dst + offD, inner));
            else for (int i = 0; i < inner; i++) dst[offD + (long)i * id] = src[offS + (long)i * isrc];
            Next(index, shape, rank - 1);
        }
    }
}
