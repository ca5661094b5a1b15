using System.Numerics.Tensors;

namespace AttentionSharp.Kernels;

public static unsafe partial class Gemm
{
    /// <summary>
    /// Up to this many rows of C a product skips packing: packing copies all of op(B), which for a few rows costs as
    /// much memory traffic as the product itself (decoding one token reads every weight once, and must read it only once).
    /// </summary>
    internal const int FewRowsMax = 4;

    /// <summary>
    /// C(m×n) = op(A)·op(B) [+ bias] [+ C] for m ≤ <see cref="FewRowsMax"/>, straight from the operands: with B stored
    /// n×k (a Linear layer's weight), c(i, j) = a_i · b_j, one dot product per row of B; with B stored k×n,
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
                // B stored n×k: c(i, j) = a_i · b_j.
                for (int j = start; j < end; j++)
                {
                    var bj = new ReadOnlySpan<float>(p.B + (long)j * p.Ldb, k);
                    for (int i = 0; i < m; i++)
                    {
                        float s = TensorPrimitives.Dot(new ReadOnlySpan<float>(a + (long)i * lda, k), bj);
                        if (p.Bias != null) s += p.Bias[j];
                        float* c = p.C + (long)i * p.Ldc + j;
                        *c = p.Accumulate ? *c + s : s;
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
}
