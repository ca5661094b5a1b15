// The bias gradient of a Linear layer: PyTorch's grad_output.sum(0) over the rows of a (rows, cols) matrix.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// sums += Σ_r x[r, :] over the rows of a row-major matrix. Threads own whole ranges of columns and add the rows in
/// order, so the result does not depend on the thread count; each column is summed on its own, then added to sums.
/// </summary>
public static unsafe class ColumnSum
{
    /// <summary>sums[c] += Σ_r x[r·cols + c] for r in [0, rows), cols = sums.Length.</summary>
    public static void Accumulate(Span<float> sums, ReadOnlySpan<float> x, int rows)
    {
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "rows must be non-negative.");
        Guard.Matrix(nameof(x), x.Length, rows, sums.Length, nameof(rows), "sums.Length");
        fixed (float* ps = sums)
        fixed (float* px = x)
            Work.Columns(rows, sums.Length, new Kernel(ps, px, rows, sums.Length));
    }

    readonly struct Kernel(float* sums, float* x, int rows, int cols) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int c = start, w = T.Count;
            // Four vectors of columns at a time: four independent sums keep the adds from waiting on each other.
            for (; c <= end - 4 * w; c += 4 * w)
            {
                T s0 = T.Create(0f), s1 = s0, s2 = s0, s3 = s0;
                float* p = x + c;
                for (int r = 0; r < rows; r++, p += cols)
                {
                    s0 += T.Load(in p[0]); s1 += T.Load(in p[w]); s2 += T.Load(in p[2 * w]); s3 += T.Load(in p[3 * w]);
                }
                T.Store(T.Load(in sums[c]) + s0, ref sums[c]);
                T.Store(T.Load(in sums[c + w]) + s1, ref sums[c + w]);
                T.Store(T.Load(in sums[c + 2 * w]) + s2, ref sums[c + 2 * w]);
                T.Store(T.Load(in sums[c + 3 * w]) + s3, ref sums[c + 3 * w]);
            }
            for (; c <= end - w; c += w)
            {
                T s = T.Create(0f);
                for (int r = 0; r < rows; r++) s += T.Load(in x[(long)r * cols + c]);
                T.Store(T.Load(in sums[c]) + s, ref sums[c]);
            }
            for (; c < end; c++)
            {
                float s = 0f;
                for (int r = 0; r < rows; r++) s += x[(long)r * cols + c];
                sums[c] += s;
            }
        }
    }
}
