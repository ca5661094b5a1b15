using System.Numerics;
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// The small products inside the attention kernels — a (Br × HS)·(HS × Bc) score tile, (Br × Bc)·(Bc × HS) updates —
/// too small for GEMM's packing to pay. C(m×n) += A(m×k)·B(k×n) in register blocks of 4 rows × 4 vectors with AVX-512
/// (per step of k, 4 broadcasts of A and 4 loads of B feed 16 FMAs: 21 of its 32 vector registers), 4 rows × 2 vectors
/// otherwise (11 of the 16 that AVX2 has: the 4 × 4 block would spill its accumulators to the stack on every step).
/// A is read through arbitrary row and column strides (so Aᵀ costs nothing: the broadcasts are scalar loads anyway);
/// B and C are row-major with unit stride along n.
/// </summary>
internal static unsafe class AttentionTiles
{
    /// <summary>
    /// C(m×n) += A(m×k)·B(k×n); A(r, c) = a[r·ars + c·acs], B(r, c) = b[r·ldb + c], C(r, c) = c[r·ldc + c].
    /// </summary>
    /// <remarks>
    /// Never inlined: in a large caller (the backward pass's head loop) the JIT would run out of its inlining budget
    /// and call each vector FMA of the register blocks as a function.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyAdd<T>(int m, int n, int k, float* a, long ars, long acs, float* b, long ldb, float* c, long ldc)
        where T : unmanaged, ISimd<T>
    {
        int w = T.Count;
        int i = 0;
        for (; i + 4 <= m; i += 4)
        {
            float* ai = a + i * ars, ci = c + i * ldc;
            int j = 0;
            if (typeof(T) == typeof(Vec512))
                for (; j + 4 * w <= n; j += 4 * w) Block4x4<T>(k, ai, ars, acs, b + j, ldb, ci + j, ldc);
            for (; j + 2 * w <= n; j += 2 * w) Block4x2<T>(k, ai, ars, acs, b + j, ldb, ci + j, ldc);
            for (; j + w <= n; j += w) Block4x1<T>(k, ai, ars, acs, b + j, ldb, ci + j, ldc);
            for (; j < n; j++) Block4x1<Vec1>(k, ai, ars, acs, b + j, ldb, ci + j, ldc);
        }
        for (; i < m; i++)
        {
            float* ai = a + i * ars, ci = c + i * ldc;
            int j = 0;
            for (; j + w <= n; j += w) Block1x1<T>(k, ai, acs, b + j, ldb, ci + j);
            for (; j < n; j++) Block1x1<Vec1>(k, ai, acs, b + j, ldb, ci + j);
        }
    }

    /// <summary>C(m×n) = A·B: clears C, then accumulates.</summary>
    public static void Multiply<T>(int m, int n, int k, float* a, long ars, long acs, float* b, long ldb, float* c, long ldc)
        where T : unmanaged, ISimd<T>
    {
        ClearRows(c, ldc, m, n);
        MultiplyAdd<T>(m, n, k, a, ars, acs, b, ldb, c, ldc);
    }

    /// <summary>
    /// The width a score tile of <paramref name="n"/> keys is computed at, at most <paramref name="max"/>: n rounded up
    /// to whole vectors of <typeparamref name="T"/>, so that its last columns take vector multiply-adds and exponentials
    /// instead of scalar ones (a 13-key tile would otherwise be all scalar with AVX-512), unless the last vector would
    /// hold only one or two keys in sixteen lanes (one in eight): then n, since a vector mostly wasted costs more than
    /// those columns' scalar work (at 17 keys, padding to 32 made the ViT's attention about a tenth slower; at 20 and
    /// 24 it was a fifth to a third faster). Columns past n are never read: every product and row operation reads
    /// the first n.
    /// </summary>
    public static int Padded<T>(int n, int max) where T : unmanaged, ISimd<T>
    {
        int tail = n % T.Count;
        return tail == 0 || tail <= T.Count / 8 ? n : Math.Min(max, n - tail + T.Count);
    }

    /// <summary>
    /// dst(c, r) = src(r, c) for a rows × cols block; rows of src are <paramref name="lds"/> apart, of dst
    /// <paramref name="ldd"/>. Whole 8 × 8 blocks are transposed in registers where AVX allows (GEMM's packing does the
    /// same), and so is a last block of fewer rows where the padding has room for all eight; the other edges element by
    /// element. A copy either way, so the result is the same. With <paramref name="width"/>
    /// greater than <paramref name="rows"/>, each row of dst is then zeroed from column rows to width: padding that a
    /// product can read as whole vectors (see <see cref="Padded{T}"/>).
    /// </summary>
    public static void Transpose(int rows, int cols, float* src, long lds, long ldd, float* dst, int width = 0)
    {
        int r0 = 0, written = rows;
        if (System.Runtime.Intrinsics.X86.Avx.IsSupported && ldd <= int.MaxValue)
        {
            for (; r0 + 8 <= rows; r0 += 8)
            {
                int c0 = 0;
                for (; c0 + 8 <= cols; c0 += 8) Gemm.Transpose8x8(src + r0 * lds + c0, lds, dst + c0 * ldd + r0, (int)ldd);
                for (int r = r0; r < r0 + 8; r++)
                {
                    float* s = src + r * lds;
                    for (int c = c0; c < cols; c++) dst[c * ldd + r] = s[c];
                }
            }
            // A last block of fewer than eight rows that the padding has room for (a short head's keys) is transposed
            // whole, the rows it lacks read as zeros: the padding's value, which its columns of dst then hold.
            if (r0 < rows && r0 + 8 <= width && cols % 8 == 0)
            {
                for (int c0 = 0; c0 < cols; c0 += 8)
                    Gemm.Transpose8x8(src + r0 * lds + c0, lds, dst + c0 * ldd + r0, (int)ldd, rows: rows - r0);
                written = r0 + 8;
                r0 = rows;
            }
        }
        if (width > written) ClearRows(dst + written, ldd, cols, width - written);
        for (int r = r0; r < rows; r++)
        {
            float* s = src + r * lds;
            for (int c = 0; c < cols; c++) dst[c * ldd + r] = s[c];
        }
    }

    /// <summary>
    /// Zeroes <paramref name="count"/> rows of <paramref name="width"/> floats, <paramref name="stride"/> apart, in
    /// vector stores: attention's rows are short (a head's 32–128 floats, a tile's few padding columns) and many, and
    /// Span.Clear's call and size dispatch cost more than the stores. In a profile of the ViT's training step (17
    /// tokens, heads of 32), clearing the backward pass's gradient rows with Span.Clear took 1.9 % of the samples,
    /// these loops 0.5 %.
    /// </summary>
    public static void ClearRows(float* rows, long stride, int count, int width)
    {
        for (int r = 0; r < count; r++)
        {
            float* row = rows + r * stride;
            int c = 0;
            for (; c + Vector<float>.Count <= width; c += Vector<float>.Count) Vector.Store(Vector<float>.Zero, row + c);
            for (; c < width; c++) row[c] = 0;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    static void Block4x4<T>(int k, float* a, long ars, long acs, float* b, long ldb, float* c, long ldc)
        where T : unmanaged, ISimd<T>
    {
        int w = T.Count;
        float* c0 = c, c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        T x00 = T.Load(in c0[0]), x01 = T.Load(in c0[w]), x02 = T.Load(in c0[2 * w]), x03 = T.Load(in c0[3 * w]);
        T x10 = T.Load(in c1[0]), x11 = T.Load(in c1[w]), x12 = T.Load(in c1[2 * w]), x13 = T.Load(in c1[3 * w]);
        T x20 = T.Load(in c2[0]), x21 = T.Load(in c2[w]), x22 = T.Load(in c2[2 * w]), x23 = T.Load(in c2[3 * w]);
        T x30 = T.Load(in c3[0]), x31 = T.Load(in c3[w]), x32 = T.Load(in c3[2 * w]), x33 = T.Load(in c3[3 * w]);
        float* a0 = a, a1 = a + ars, a2 = a1 + ars, a3 = a2 + ars;
        for (int p = 0; p < k; p++)
        {
            // C(r, :) += A(r, p)·B(p, :) for the 4 rows, A(r, p) broadcast to every lane.
            long ap = p * acs;
            T b0 = T.Load(in b[0]), b1 = T.Load(in b[w]), b2 = T.Load(in b[2 * w]), b3 = T.Load(in b[3 * w]);
            T s = T.Create(a0[ap]);
            x00 = T.MultiplyAdd(s, b0, x00); x01 = T.MultiplyAdd(s, b1, x01);
            x02 = T.MultiplyAdd(s, b2, x02); x03 = T.MultiplyAdd(s, b3, x03);
            s = T.Create(a1[ap]);
            x10 = T.MultiplyAdd(s, b0, x10); x11 = T.MultiplyAdd(s, b1, x11);
            x12 = T.MultiplyAdd(s, b2, x12); x13 = T.MultiplyAdd(s, b3, x13);
            s = T.Create(a2[ap]);
            x20 = T.MultiplyAdd(s, b0, x20); x21 = T.MultiplyAdd(s, b1, x21);
            x22 = T.MultiplyAdd(s, b2, x22); x23 = T.MultiplyAdd(s, b3, x23);
            s = T.Create(a3[ap]);
            x30 = T.MultiplyAdd(s, b0, x30); x31 = T.MultiplyAdd(s, b1, x31);
            x32 = T.MultiplyAdd(s, b2, x32); x33 = T.MultiplyAdd(s, b3, x33);
            b += ldb;
        }
        T.Store(x00, ref c0[0]); T.Store(x01, ref c0[w]); T.Store(x02, ref c0[2 * w]); T.Store(x03, ref c0[3 * w]);
        T.Store(x10, ref c1[0]); T.Store(x11, ref c1[w]); T.Store(x12, ref c1[2 * w]); T.Store(x13, ref c1[3 * w]);
        T.Store(x20, ref c2[0]); T.Store(x21, ref c2[w]); T.Store(x22, ref c2[2 * w]); T.Store(x23, ref c2[3 * w]);
        T.Store(x30, ref c3[0]); T.Store(x31, ref c3[w]); T.Store(x32, ref c3[2 * w]); T.Store(x33, ref c3[3 * w]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    static void Block4x2<T>(int k, float* a, long ars, long acs, float* b, long ldb, float* c, long ldc)
        where T : unmanaged, ISimd<T>
    {
        int w = T.Count;
        float* c0 = c, c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        T x00 = T.Load(in c0[0]), x01 = T.Load(in c0[w]), x10 = T.Load(in c1[0]), x11 = T.Load(in c1[w]);
        T x20 = T.Load(in c2[0]), x21 = T.Load(in c2[w]), x30 = T.Load(in c3[0]), x31 = T.Load(in c3[w]);
        float* a0 = a, a1 = a + ars, a2 = a1 + ars, a3 = a2 + ars;
        for (int p = 0; p < k; p++)
        {
            long ap = p * acs;
            T b0 = T.Load(in b[0]), b1 = T.Load(in b[w]);
            T s = T.Create(a0[ap]);
            x00 = T.MultiplyAdd(s, b0, x00); x01 = T.MultiplyAdd(s, b1, x01);
            s = T.Create(a1[ap]);
            x10 = T.MultiplyAdd(s, b0, x10); x11 = T.MultiplyAdd(s, b1, x11);
            s = T.Create(a2[ap]);
            x20 = T.MultiplyAdd(s, b0, x20); x21 = T.MultiplyAdd(s, b1, x21);
            s = T.Create(a3[ap]);
            x30 = T.MultiplyAdd(s, b0, x30); x31 = T.MultiplyAdd(s, b1, x31);
            b += ldb;
        }
        T.Store(x00, ref c0[0]); T.Store(x01, ref c0[w]); T.Store(x10, ref c1[0]); T.Store(x11, ref c1[w]);
        T.Store(x20, ref c2[0]); T.Store(x21, ref c2[w]); T.Store(x30, ref c3[0]); T.Store(x31, ref c3[w]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Block4x1<T>(int k, float* a, long ars, long acs, float* b, long ldb, float* c, long ldc)
        where T : unmanaged, ISimd<T>
    {
        float* c0 = c, c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        T x0 = T.Load(in c0[0]), x1 = T.Load(in c1[0]), x2 = T.Load(in c2[0]), x3 = T.Load(in c3[0]);
        float* a0 = a, a1 = a + ars, a2 = a1 + ars, a3 = a2 + ars;
        for (int p = 0; p < k; p++)
        {
            long ap = p * acs;
            T bp = T.Load(in b[0]);
            x0 = T.MultiplyAdd(T.Create(a0[ap]), bp, x0);
            x1 = T.MultiplyAdd(T.Create(a1[ap]), bp, x1);
            x2 = T.MultiplyAdd(T.Create(a2[ap]), bp, x2);
            x3 = T.MultiplyAdd(T.Create(a3[ap]), bp, x3);
            b += ldb;
        }
        T.Store(x0, ref c0[0]); T.Store(x1, ref c1[0]); T.Store(x2, ref c2[0]); T.Store(x3, ref c3[0]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Block1x1<T>(int k, float* a, long acs, float* b, long ldb, float* c) where T : unmanaged, ISimd<T>
    {
        T x = T.Load(in c[0]);
        for (int p = 0; p < k; p++)
        {
            x = T.MultiplyAdd(T.Create(a[p * acs]), T.Load(in b[0]), x);
            b += ldb;
        }
        T.Store(x, ref c[0]);
    }
}
