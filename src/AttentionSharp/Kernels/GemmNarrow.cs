using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

public static unsafe partial class Gemm
{
    /// <summary>
    /// Narrow products: C with at most this many columns (<see cref="NarrowRows"/>), or with at most this many rows and
    /// columns summed over a long k (<see cref="LongDepth"/>). A small convolution (a ViT's stem: 9 inputs, 16 channels,
    /// one row per pixel) is such a product; the micro-kernel's 14×32 tile would leave most of its lanes idle and pack
    /// B a few elements at a time.
    /// </summary>
    internal const int NarrowMax = 16;

    /// <summary><see cref="NarrowRows"/> takes products up to this depth: op(B) (k × n) stays in L1.</summary>
    internal const int NarrowDepthMax = 32;

    /// <summary><see cref="LongDepth"/> takes products from this depth.</summary>
    internal const int LongDepthMin = 256;

    /// <summary>
    /// The slices of k that <see cref="LongDepth"/> sums separately, then adds in order: fixed, so that the result does
    /// not depend on how many threads took them.
    /// </summary>
    internal const int LongDepthSlice = 512;

    /// <summary>Whether <see cref="Dispatch"/> sends the product to <see cref="NarrowRows"/>.</summary>
    static bool IsNarrow(in Problem p) => p.M > FewRowsMax && p.N <= NarrowMax && p.K <= NarrowDepthMax;

    /// <summary>Whether <see cref="Dispatch"/> sends the product to <see cref="LongDepth"/>.</summary>
    static bool IsLongAndSmall(in Problem p) =>
        p.TransA == Transpose.Yes && p.M <= NarrowMax && p.N <= NarrowMax && p.K >= LongDepthMin;

    /// <summary>
    /// C = op(A)·op(B) [+ bias] [+ C] with n ≤ <see cref="NarrowMax"/> and k ≤ <see cref="NarrowDepthMax"/>: op(B) is
    /// copied once into rows padded to whole vectors, and each row of C is Σ_p a(i, p)·b_p in vector registers, then the
    /// bias and the old C are added (the micro-kernel's order). Threads take ranges of rows.
    /// </summary>
    static void NarrowRows(in Problem p, int threads)
    {
        var job = new NarrowJob(p);
        int grain = Math.Max(1, Parallel.SplitThreshold / (p.K + p.N));
        if (threads <= 1 || p.M < 2 * grain) job.Rows(0, p.M);
        else Parallel.For(p.M, grain, job.Rows);
    }

    sealed class NarrowJob(Problem p)
    {
        public void Rows(int start, int end)
        {
            switch (VectorBits)
            {
                case 512: NarrowRows<Vec512>(in p, start, end); break;
                case 256: NarrowRows<Vec256>(in p, start, end); break;
                default: NarrowRows<Vec1>(in p, start, end); break;
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static void NarrowRows<T>(in Problem p, int start, int end) where T : unmanaged, ISimd<T>
    {
        int n = p.N, k = p.K, w = T.Count, vectors = (n + w - 1) / w, width = vectors * w;
        // op(B) as k rows of `width` floats, zero past n; the bias likewise.
        float* b = stackalloc float[k * width];
        float* bias = stackalloc float[width];
        for (int q = 0; q < k; q++)
            for (int j = 0; j < width; j++)
                b[q * width + j] = j >= n ? 0 : p.TransB == Transpose.No ? p.B[(long)q * p.Ldb + j] : p.B[(long)j * p.Ldb + q];
        for (int j = 0; j < width; j++) bias[j] = p.Bias == null || j >= n ? 0 : p.Bias[j];
        long aRow = p.TransA == Transpose.No ? p.Lda : 1, aCol = p.TransA == Transpose.No ? 1 : p.Lda;
        float* tile = stackalloc float[4 * width];
        int i = start;
        if (vectors == 1)
            // Four rows at a time in four registers: four independent chains of multiply-adds.
            for (; i + 4 <= end; i += 4)
            {
                float* a = p.A + i * aRow;
                T c0 = T.Create(0), c1 = c0, c2 = c0, c3 = c0;
                for (int q = 0; q < k; q++, a += aCol)
                {
                    var bq = T.Load(ref b[q * width]);
                    c0 = T.MultiplyAdd(T.Create(a[0]), bq, c0);
                    c1 = T.MultiplyAdd(T.Create(a[aRow]), bq, c1);
                    c2 = T.MultiplyAdd(T.Create(a[2 * aRow]), bq, c2);
                    c3 = T.MultiplyAdd(T.Create(a[3 * aRow]), bq, c3);
                }
                T.Store(c0, ref tile[0]); T.Store(c1, ref tile[width]);
                T.Store(c2, ref tile[2 * width]); T.Store(c3, ref tile[3 * width]);
                WriteRows<T>(in p, i, 4, tile, width, bias);
            }
        else if (vectors == 2)
            for (; i + 2 <= end; i += 2)
            {
                float* a = p.A + i * aRow;
                T c0 = T.Create(0), c1 = c0, c2 = c0, c3 = c0;
                for (int q = 0; q < k; q++, a += aCol)
                {
                    var b0 = T.Load(ref b[q * width]);
                    var b1 = T.Load(ref b[q * width + w]);
                    T a0 = T.Create(a[0]), a1 = T.Create(a[aRow]);
                    c0 = T.MultiplyAdd(a0, b0, c0);
                    c1 = T.MultiplyAdd(a0, b1, c1);
                    c2 = T.MultiplyAdd(a1, b0, c2);
                    c3 = T.MultiplyAdd(a1, b1, c3);
                }
                T.Store(c0, ref tile[0]); T.Store(c1, ref tile[w]);
                T.Store(c2, ref tile[width]); T.Store(c3, ref tile[width + w]);
                WriteRows<T>(in p, i, 2, tile, width, bias);
            }
        // The rows left, and any width on the scalar path: one row at a time through memory.
        T* acc = stackalloc T[vectors];
        for (; i < end; i++)
        {
            float* a = p.A + i * aRow;
            for (int v = 0; v < vectors; v++) acc[v] = T.Create(0);
            for (int q = 0; q < k; q++)
            {
                var aq = T.Create(a[q * aCol]);
                float* bq = b + q * width;
                for (int v = 0; v < vectors; v++) acc[v] = T.MultiplyAdd(aq, T.Load(ref bq[v * w]), acc[v]);
            }
            for (int v = 0; v < vectors; v++) T.Store(acc[v], ref tile[v * w]);
            WriteRows<T>(in p, i, 1, tile, width, bias);
        }
    }

    /// <summary>C rows [i, i + rows) from their sums (rows `width` floats apart): + bias, + the old C.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void WriteRows<T>(in Problem p, int i, int rows, float* sums, int width, float* bias) where T : unmanaged, ISimd<T>
    {
        int w = T.Count;
        for (int r = 0; r < rows; r++)
        {
            float* s = sums + r * width, c = p.C + (long)(i + r) * p.Ldc;
            if (p.N == width)
            {
                for (int v = 0; v < width; v += w)
                {
                    var sum = T.Load(ref s[v]);
                    if (p.Bias != null) sum += T.Load(ref bias[v]);
                    if (p.Accumulate) sum = T.Load(ref c[v]) + sum;
                    T.Store(sum, ref c[v]);
                }
                continue;
            }
            if (p.Bias != null)
                for (int v = 0; v < width; v += w) T.Store(T.Load(ref s[v]) + T.Load(ref bias[v]), ref s[v]);
            if (p.Accumulate) for (int j = 0; j < p.N; j++) c[j] += s[j];
            else for (int j = 0; j < p.N; j++) c[j] = s[j];
        }
    }

    /// <summary>
    /// C = Aᵀ·op(B) [+ bias] [+ C] with A stored k×m, m and n ≤ <see cref="NarrowMax"/> and a long k: the weight gradient
    /// of a narrow layer over many rows (dW = dYᵀ·X). Each slice of <see cref="LongDepthSlice"/> values of k is summed
    /// on its own, a row of A (a column of C) in vector registers times each b(p, j) broadcast; the slices are then added
    /// in order, then the bias and the old C. Threads take whole slices.
    /// </summary>
    static void LongDepth(in Problem p, int threads)
    {
        int slices = (p.K + LongDepthSlice - 1) / LongDepthSlice, size = p.M * p.N;
        var partials = t_sliceSums ??= new AlignedBuffer();
        partials.Ensure((long)slices * size);
        float* sums = partials.Pointer;
        var job = new LongDepthJob(p, sums);
        if (threads <= 1 || slices < 2) job.Slices(0, slices);
        else Parallel.For(slices, 1, job.Slices);
        for (int i = 0; i < p.M; i++)
            for (int j = 0; j < p.N; j++)
            {
                float s = 0;
                for (int slice = 0; slice < slices; slice++) s += sums[(long)slice * size + i * p.N + j];
                if (p.Bias != null) s += p.Bias[j];
                float* c = p.C + (long)i * p.Ldc + j;
                *c = p.Accumulate ? *c + s : s;
            }
    }

    /// <summary>The calling thread's buffer for <see cref="LongDepth"/>'s slice sums (the workers write into it).</summary>
    [ThreadStatic] static AlignedBuffer? t_sliceSums;

    sealed class LongDepthJob(Problem p, float* sums)
    {
        public void Slices(int start, int end)
        {
            for (int slice = start; slice < end; slice++)
            {
                int q0 = slice * LongDepthSlice, q1 = Math.Min(p.K, q0 + LongDepthSlice);
                float* sum = sums + (long)slice * p.M * p.N;
                switch (VectorBits)
                {
                    case 512: SumSlice<Vec512>(in p, q0, q1, sum); break;
                    case 256: SumSlice<Vec256>(in p, q0, q1, sum); break;
                    default: SumSlice<Vec1>(in p, q0, q1, sum); break;
                }
            }
        }
    }

    /// <summary>sum(i, j) = Σ_{q0 ≤ q &lt; q1} A[q, i]·op(B)(q, j), written m×n.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static void SumSlice<T>(in Problem p, int q0, int q1, float* sum) where T : unmanaged, ISimd<T>
    {
        int m = p.M, n = p.N, w = T.Count, vectors = (m + w - 1) / w, width = vectors * w;
        T* acc = stackalloc T[n * vectors];
        for (int x = 0; x < n * vectors; x++) acc[x] = T.Create(0);
        float* padded = stackalloc float[width];
        for (int x = m; x < width; x++) padded[x] = 0;
        // A row q read whole vectors at a time stays inside A while the lanes past m reach no further than its last
        // element; the rows after that go through the zero-padded copy. Lanes past m are never written out.
        long last = (long)(p.K - 1) * p.Lda + m;
        long bRow = p.TransB == Transpose.No ? p.Ldb : 1, bCol = p.TransB == Transpose.No ? 1 : p.Ldb;
        for (int q = q0; q < q1; q++)
        {
            float* a = p.A + (long)q * p.Lda;
            if ((long)q * p.Lda + width > last)
            {
                for (int x = 0; x < m; x++) padded[x] = a[x];
                a = padded;
            }
            float* bq = p.B + q * bRow;
            for (int v = 0; v < vectors; v++)
            {
                var av = T.Load(ref a[v * w]);
                T* accV = acc + v;
                for (int j = 0; j < n; j++) accV[j * vectors] = T.MultiplyAdd(av, T.Create(bq[j * bCol]), accV[j * vectors]);
            }
        }
        float* lanes = stackalloc float[width];
        for (int j = 0; j < n; j++)
        {
            for (int v = 0; v < vectors; v++) T.Store(acc[j * vectors + v], ref lanes[v * w]);
            for (int i = 0; i < m; i++) sum[i * n + j] = lanes[i];
        }
    }
}
