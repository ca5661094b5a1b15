using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

public static unsafe partial class Gemm
{
    /// <summary>
    /// Up to this many rows of C a product skips packing: packing copies all of op(B), which for a few rows costs as
    /// much memory traffic as the product itself (decoding one token reads every weight once, and must read it only once).
    /// Eight, so that a decoding step of up to eight sequences (Gpt.ForwardRows) reads each weight
    /// once for all of them.
    /// </summary>
    internal const int FewRowsMax = 8;

    /// <summary>
    /// C(m×n) = op(A)·op(B) [+ bias] [+ C] for m ≤ <see cref="FewRowsMax"/>, straight from the operands: with B stored
    /// n×k (a Linear layer's weight), c(i, j) = a_i · b_j, each row of B read once for all the rows of A; with B stored k×n,
    /// c_i = Σ_p a(i, p)·b_p, rows of B added in order. Threads take ranges of columns, and every element is computed
    /// the same way whatever the split.
    /// </summary>
    static void FewRows(in Problem p, int threads)
    {
        int m = p.M, k = p.K;
        // Rows of op(A), contiguous: as stored, or gathered from the transposed layout.
        float[]? gathered = null;
        float* a = p.A;
        int lda = p.Lda;
        if (p.TransA == Transpose.Yes)
        {
            gathered = GC.AllocateUninitializedArray<float>(m * k, pinned: true);
            fixed (float* g = gathered)
            {
                for (int i = 0; i < m; i++)
                    for (int q = 0; q < k; q++) g[i * k + q] = p.A[(long)q * p.Lda + i];
                a = g; // pinned: the address stays valid after the fixed block
            }
            lda = k;
        }
        var job = new FewRowsJob(p, a, lda);
        // Each thread streams at least 64 KiB of B, so small products stay on one thread.
        int grain = Math.Max(1, 16384 / Math.Max(1, k));
        if (m == 1 && p.TransB == Transpose.Yes && ColumnDotsPay) grain = RoundUp(grain, 4); // whole groups of ColumnDots
        if (threads <= 1) job.Columns(0, p.N);
        else Parallel.For(p.N, grain, job.Columns);
        GC.KeepAlive(gathered);
    }

    sealed class FewRowsJob(Problem p, float* a, int lda)
    {
        public void Columns(int start, int end)
        {
            int m = p.M, k = p.K, width = end - start;
            if (p.TransB == Transpose.Yes)
            {
                // B stored n×k: c(i, j) = a_i · b_j, each row of B read once, in order, for all the rows of A.
                float* dots = stackalloc float[4];
                int j = start;
                if (m == 1 && ColumnDotsPay)
                    // One row (decoding a single sequence): four columns at a time, so four rows of B stream at once
                    // and eight accumulators hide the FMA latency that two leave exposed.
                    for (; j + 4 <= end; j += 4)
                    {
                        ColumnDots(a, p.B + (long)j * p.Ldb, p.Ldb, k, dots);
                        for (int c = 0; c < 4; c++)
                        {
                            float s = dots[c];
                            if (p.Bias != null) s += p.Bias[j + c];
                            float* cj = p.C + j + c;
                            *cj = p.Accumulate ? *cj + s : s;
                        }
                    }
                for (; j < end; j++)
                {
                    float* bj = p.B + (long)j * p.Ldb;
                    for (int i = 0; i < m; i += 4)
                    {
                        int rows = Math.Min(4, m - i);
                        RowDots(a + (long)i * lda, lda, rows, bj, k, dots);
                        for (int r = 0; r < rows; r++)
                        {
                            float s = dots[r];
                            if (p.Bias != null) s += p.Bias[j];
                            float* c = p.C + (long)(i + r) * p.Ldc + j;
                            *c = p.Accumulate ? *c + s : s;
                        }
                    }
                }
                return;
            }
            // B stored k×n: c_i = Σ_p a(i, p)·b_p over this range of columns, into a zeroed row, then bias and old C.
            Span<float> sums = width * m <= 4096 ? stackalloc float[width * m] : new float[width * m];
            sums.Clear();
            for (int q = 0; q < k; q++)
            {
                var bq = new ReadOnlySpan<float>(p.B + (long)q * p.Ldb + start, width);
                for (int i = 0; i < m; i++)
                {
                    var row = sums.Slice(i * width, width);
                    TensorPrimitives.MultiplyAdd(bq, a[(long)i * lda + q], row, row);
                }
            }
            for (int i = 0; i < m; i++)
            {
                var row = sums.Slice(i * width, width);
                if (p.Bias != null) TensorPrimitives.Add(row, new ReadOnlySpan<float>(p.Bias + start, width), row);
                var c = new Span<float>(p.C + (long)i * p.Ldc + start, width);
                if (p.Accumulate) TensorPrimitives.Add(c, row, c);
                else row.CopyTo(c);
            }
        }
    }

    /// <summary>
    /// Whether a one-row product takes four rows of B at a time (<see cref="ColumnDots"/>) rather than one
    /// (<see cref="Dot{T}"/>); the results are the same bit for bit. Decoding GPT-2-124M streams its weights from memory.
    /// On an AVX2-only Zen 3, four rows at once took one thread from 60 % to 78 % of the bandwidth limit. On a Zen 4 with
    /// AVX-512, four streams read memory at about half the rate of one (the 768×50,257 head on one thread: 10.5 ms
    /// against 6.5 ms), and one-token decoding fell from 59 to 35 tokens/s, so the Vector512 path reads one row at a
    /// time. (Run on Vector256 there, four rows lose too, 10.0 against 5.8 ms; the AVX2 path follows the machines that
    /// have no wider path.)
    /// </summary>
    static bool ColumnDotsPay => VectorBits == 256;

    /// <summary>
    /// dots[r] = a_r · b for <paramref name="rows"/> ≤ 4 rows of A (a group of fewer repeats its last row). Every dot
    /// product is formed the same way, alone or in a group: two accumulators over alternate vectors of k, added and
    /// reduced, then the tail in order; so a row's result does not depend on the rows beside it (several sequences
    /// decoded at once each get the logits they get alone). In a group the rows share each load of b.
    /// </summary>
    static void RowDots(float* a, int lda, int rows, float* b, int k, float* dots)
    {
        if (rows == 1)
        {
            dots[0] = VectorBits switch { 512 => Dot<Vec512>(a, b, k), 256 => Dot<Vec256>(a, b, k), _ => Dot<Vec1>(a, b, k) };
            return;
        }
        float* a1 = a + lda, a2 = a + (long)Math.Min(2, rows - 1) * lda, a3 = a + (long)Math.Min(3, rows - 1) * lda;
        FourDots(b, a, a1, a2, a3, k, dots); // a_r · b = b · a_r, bit for bit
    }

    /// <summary>
    /// dots[c] = a · b_c for the four rows of B at <paramref name="b"/>, <paramref name="ldb"/> apart, each formed as
    /// <see cref="Dot{T}"/> forms it, so a column's result does not depend on which path computed it.
    /// </summary>
    static void ColumnDots(float* a, float* b, long ldb, int k, float* dots) =>
        FourDots(a, b, b + ldb, b + 2 * ldb, b + 3 * ldb, k, dots);

    /// <summary>
    /// dots[r] = a · b_r for four vectors b_r, each formed as <see cref="Dot{T}"/>(a, b_r) forms it (products commute,
    /// so also as Dot(b_r, a)): one row against four weight rows (<see cref="ColumnDots"/>) or four rows against one
    /// weight row (<see cref="RowDots"/>).
    /// </summary>
    static void FourDots(float* a, float* b0, float* b1, float* b2, float* b3, int k, float* dots)
    {
        switch (VectorBits)
        {
            case 512: FourDots512(a, b0, b1, b2, b3, k, dots); break;
            case 256: FourDots256(a, b0, b1, b2, b3, k, dots); break;
            default: Dots4<Vec1>(b0, b1, b2, b3, a, k, dots); break;
        }
    }

    /// <summary>
    /// <see cref="FourDots"/> on Vector256, written out rather than through <see cref="ISimd{T}"/>: the JIT then folds
    /// each load of b_r into its FMA and accumulates in place (13 instructions per 16 values of k against 30), which
    /// decides the speed of a product that streams its weights once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void FourDots256(float* a, float* b0, float* b1, float* b2, float* b3, int k, float* dots)
    {
        Vector256<float> x0 = default, y0 = default, x1 = default, y1 = default, x2 = default, y2 = default,
            x3 = default, y3 = default;
        int q = 0;
        for (; q + 16 <= k; q += 16)
        {
            var u = Vector256.Load(a + q);
            var v = Vector256.Load(a + q + 8);
            x0 = Vector256.FusedMultiplyAdd(u, Vector256.Load(b0 + q), x0);
            y0 = Vector256.FusedMultiplyAdd(v, Vector256.Load(b0 + q + 8), y0);
            x1 = Vector256.FusedMultiplyAdd(u, Vector256.Load(b1 + q), x1);
            y1 = Vector256.FusedMultiplyAdd(v, Vector256.Load(b1 + q + 8), y1);
            x2 = Vector256.FusedMultiplyAdd(u, Vector256.Load(b2 + q), x2);
            y2 = Vector256.FusedMultiplyAdd(v, Vector256.Load(b2 + q + 8), y2);
            x3 = Vector256.FusedMultiplyAdd(u, Vector256.Load(b3 + q), x3);
            y3 = Vector256.FusedMultiplyAdd(v, Vector256.Load(b3 + q + 8), y3);
        }
        if (q + 8 <= k)
        {
            var u = Vector256.Load(a + q);
            x0 = Vector256.FusedMultiplyAdd(u, Vector256.Load(b0 + q), x0);
            x1 = Vector256.FusedMultiplyAdd(u, Vector256.Load(b1 + q), x1);
            x2 = Vector256.FusedMultiplyAdd(u, Vector256.Load(b2 + q), x2);
            x3 = Vector256.FusedMultiplyAdd(u, Vector256.Load(b3 + q), x3);
            q += 8;
        }
        dots[0] = Tail(Vector256.Sum(x0 + y0), a, b0, q, k); dots[1] = Tail(Vector256.Sum(x1 + y1), a, b1, q, k);
        dots[2] = Tail(Vector256.Sum(x2 + y2), a, b2, q, k); dots[3] = Tail(Vector256.Sum(x3 + y3), a, b3, q, k);
    }

    /// <summary><see cref="FourDots256"/> on Vector512.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void FourDots512(float* a, float* b0, float* b1, float* b2, float* b3, int k, float* dots)
    {
        Vector512<float> x0 = default, y0 = default, x1 = default, y1 = default, x2 = default, y2 = default,
            x3 = default, y3 = default;
        int q = 0;
        for (; q + 32 <= k; q += 32)
        {
            var u = Vector512.Load(a + q);
            var v = Vector512.Load(a + q + 16);
            x0 = Vector512.FusedMultiplyAdd(u, Vector512.Load(b0 + q), x0);
            y0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(b0 + q + 16), y0);
            x1 = Vector512.FusedMultiplyAdd(u, Vector512.Load(b1 + q), x1);
            y1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(b1 + q + 16), y1);
            x2 = Vector512.FusedMultiplyAdd(u, Vector512.Load(b2 + q), x2);
            y2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(b2 + q + 16), y2);
            x3 = Vector512.FusedMultiplyAdd(u, Vector512.Load(b3 + q), x3);
            y3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(b3 + q + 16), y3);
        }
        if (q + 16 <= k)
        {
            var u = Vector512.Load(a + q);
            x0 = Vector512.FusedMultiplyAdd(u, Vector512.Load(b0 + q), x0);
            x1 = Vector512.FusedMultiplyAdd(u, Vector512.Load(b1 + q), x1);
            x2 = Vector512.FusedMultiplyAdd(u, Vector512.Load(b2 + q), x2);
            x3 = Vector512.FusedMultiplyAdd(u, Vector512.Load(b3 + q), x3);
            q += 16;
        }
        dots[0] = Tail(Vector512.Sum(x0 + y0), a, b0, q, k); dots[1] = Tail(Vector512.Sum(x1 + y1), a, b1, q, k);
        dots[2] = Tail(Vector512.Sum(x2 + y2), a, b2, q, k); dots[3] = Tail(Vector512.Sum(x3 + y3), a, b3, q, k);
    }

    /// <summary>
    /// Four dot products a_r · b as <see cref="Dot{T}"/> forms each; the eight accumulators hide the FMA latency. The
    /// scalar width of <see cref="FourDots"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Dots4<T>(float* a0, float* a1, float* a2, float* a3, float* b, int k, float* dots)
        where T : unmanaged, ISimd<T>
    {
        int w = T.Count, q = 0;
        T x0 = T.Create(0), y0 = x0, x1 = x0, y1 = x0, x2 = x0, y2 = x0, x3 = x0, y3 = x0;
        for (; q + 2 * w <= k; q += 2 * w)
        {
            T u = T.Load(in b[q]), v = T.Load(in b[q + w]);
            x0 = T.MultiplyAdd(T.Load(in a0[q]), u, x0); y0 = T.MultiplyAdd(T.Load(in a0[q + w]), v, y0);
            x1 = T.MultiplyAdd(T.Load(in a1[q]), u, x1); y1 = T.MultiplyAdd(T.Load(in a1[q + w]), v, y1);
            x2 = T.MultiplyAdd(T.Load(in a2[q]), u, x2); y2 = T.MultiplyAdd(T.Load(in a2[q + w]), v, y2);
            x3 = T.MultiplyAdd(T.Load(in a3[q]), u, x3); y3 = T.MultiplyAdd(T.Load(in a3[q + w]), v, y3);
        }
        if (q + w <= k)
        {
            T u = T.Load(in b[q]);
            x0 = T.MultiplyAdd(T.Load(in a0[q]), u, x0); x1 = T.MultiplyAdd(T.Load(in a1[q]), u, x1);
            x2 = T.MultiplyAdd(T.Load(in a2[q]), u, x2); x3 = T.MultiplyAdd(T.Load(in a3[q]), u, x3);
            q += w;
        }
        dots[0] = Tail(T.Sum(x0 + y0), a0, b, q, k); dots[1] = Tail(T.Sum(x1 + y1), a1, b, q, k);
        dots[2] = Tail(T.Sum(x2 + y2), a2, b, q, k); dots[3] = Tail(T.Sum(x3 + y3), a3, b, q, k);
    }

    /// <summary>a · b: two accumulators over alternate vectors of k, added and reduced, then the tail in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float Dot<T>(float* a, float* b, int k) where T : unmanaged, ISimd<T>
    {
        int w = T.Count, q = 0;
        T x = T.Create(0), y = x;
        for (; q + 2 * w <= k; q += 2 * w)
        {
            x = T.MultiplyAdd(T.Load(in a[q]), T.Load(in b[q]), x);
            y = T.MultiplyAdd(T.Load(in a[q + w]), T.Load(in b[q + w]), y);
        }
        if (q + w <= k) { x = T.MultiplyAdd(T.Load(in a[q]), T.Load(in b[q]), x); q += w; }
        return Tail(T.Sum(x + y), a, b, q, k);
    }

    /// <summary>The reduced vector sum, then the elements past the last whole vector, in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Tail(float sum, float* a, float* b, int q, int k)
    {
        for (; q < k; q++) sum += a[q] * b[q];
        return sum;
    }
}
