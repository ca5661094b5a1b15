using AttentionSharp.Kernels;
using AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

/// <summary>
/// The fast GEMM against its reference twin. Shapes cover every tail of every micro-kernel (14×32, 6×16 and 4×4 tiles),
/// several cache blocks in each dimension, and the threaded paths. Re-run with DOTNET_EnableAVX512=0 (the Vector256
/// kernel; .NET 10 no longer reads DOTNET_EnableAVX512F), DOTNET_EnableAVX2=0 and DOTNET_EnableHWIntrinsic=0 (both the
/// scalar kernel) to exercise every path on one machine.
/// </summary>
[Trait("Category", "Kernels")]
public unsafe class GemmTests
{
    /// <summary>
    /// Float summation of k products has a worst-case error of about k·ε times the sum of their magnitudes (Higham,
    /// "Accuracy and Stability of Numerical Algorithms", §3.1), plus one rounding each for the bias and the old C.
    /// The bound below is that with ε = 2⁻²³; an indexing mistake costs an error of the order of one product, far above it.
    /// </summary>
    static double Tolerance(int k, double sumOfMagnitudes) => (k + 2) * Epsilon * sumOfMagnitudes + 1e-30;

    const double Epsilon = 1.0 / (1 << 23);

    static readonly Transpose[] Both = [Transpose.No, Transpose.Yes];

    public static TheoryData<Transpose, Transpose> Transposes()
    {
        var data = new TheoryData<Transpose, Transpose>();
        foreach (var ta in Both) foreach (var tb in Both) data.Add(ta, tb);
        return data;
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void OddShapesMatchReference(Transpose ta, Transpose tb)
    {
        int[][] shapes =
        [
            [1, 1, 1], [3, 5, 7], [67, 129, 33], [0, 5, 3], [5, 0, 3], [4, 6, 0], [0, 0, 0], [1, 300, 1], [300, 1, 2],
            [14, 32, 256], [15, 33, 257], [13, 31, 255], [28, 64, 513], [6, 16, 9], [7, 17, 9], [129, 257, 129],
        ];
        int seed = 0;
        foreach (var s in shapes)
        {
            seed++;
            Check(new Case(ta, tb, s[0], s[1], s[2], Accumulate: seed % 2 == 0, Bias: seed % 3 == 0, Pad: seed % 4 == 1), seed);
        }
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void EveryRowTailMatchesReference(Transpose ta, Transpose tb)
    {
        int seed = 100;
        foreach (int m in DenseSizes())
            foreach (var (n, k) in new[] { (1, 1), (16, 7), (33, 64) })
            {
                seed++;
                Check(new Case(ta, tb, m, n, k, Accumulate: seed % 2 == 0, Bias: seed % 3 == 0, Pad: seed % 5 == 0), seed);
            }
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void EveryColumnTailMatchesReference(Transpose ta, Transpose tb)
    {
        int seed = 200;
        foreach (int n in DenseSizes())
            foreach (var (m, k) in new[] { (1, 2), (13, 9), (15, 40) })
            {
                seed++;
                Check(new Case(ta, tb, m, n, k, Accumulate: seed % 2 == 1, Bias: seed % 3 == 1, Pad: seed % 5 == 1), seed);
            }
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void EveryDepthMatchesReference(Transpose ta, Transpose tb)
    {
        int seed = 300;
        foreach (int k in new[] { 0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 513 })
            foreach (var (m, n) in new[] { (15, 33), (29, 65) })
            {
                seed++;
                Check(new Case(ta, tb, m, n, k, Accumulate: seed % 2 == 0, Bias: seed % 3 == 2, Pad: seed % 3 == 0), seed);
            }
    }

    /// <summary>
    /// The threaded paths: tall C split by row blocks (several NC blocks; several KC slices with barriers between them)
    /// and short, wide C split by column blocks. Rows are sampled at block edges and at random.
    /// </summary>
    [Theory]
    [MemberData(nameof(Transposes))]
    public void LargeThreadedProductsMatchReference(Transpose ta, Transpose tb)
    {
        var cases = new[]
        {
            new Case(ta, tb, 701, 3203, 300, Accumulate: ta == tb, Bias: ta != tb, Pad: tb == Transpose.Yes),
            new Case(ta, tb, 480, 700, 1100, Accumulate: ta != tb, Bias: ta == tb, Pad: ta == Transpose.Yes),
            new Case(ta, tb, 100, 1500, 1030, Accumulate: tb == Transpose.No, Bias: true, Pad: false),
        };
        int seed = 400;
        foreach (var c in cases)
        {
            var rows = new SortedSet<int> { 0, 1, 13, 14, 69, 70, 111, 112, c.M / 2, c.M - 2, c.M - 1 };
            var random = new Random(seed);
            for (int i = 0; i < 8; i++) rows.Add(random.Next(c.M));
            rows.RemoveWhere(i => i >= c.M);
            Check(c, seed++, rows);
        }
    }

    /// <summary>
    /// A weight gradient's shape, dYᵀ·X with few columns: row blocks read the transposed A where it is stored instead of
    /// packing it. Several slices of k, a ragged last panel of rows (packed, so nothing past A is read: its padding is
    /// NaN), bias, accumulation, on one and two threads; and the floats are those of the packed path, which A's rows
    /// take when their stride is a multiple of 256 floats.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void TransposedAReadWhereStoredMatchesReferenceAndThePackedPath(int threads)
    {
        int saved = AttentionSharp.Kernels.Parallel.ThreadCount;
        AttentionSharp.Kernels.Parallel.ThreadCount = threads;
        try
        {
            Check(new Case(Transpose.Yes, Transpose.No, 389, 128, 2500, Accumulate: true, Bias: true, Pad: true), 700);
            Check(new Case(Transpose.Yes, Transpose.No, 130, 100, 1100, Accumulate: false, Bias: false, Pad: false), 701);
            Check(new Case(Transpose.Yes, Transpose.Yes, 200, 64, 2100, Accumulate: true, Bias: false, Pad: true), 702);

            // The same 500 × 96 product over k = 1,300 with A's rows 512 floats apart (packed) and 509 (read in place).
            const int m = 500, n = 96, k = 1300;
            var random = new Random(703);
            var a512 = RandomMatrix(k, m, 512, random, float.NaN);
            var a509 = new float[k * 509];
            for (int p = 0; p < k; p++) Array.Copy(a512, p * 512, a509, p * 509, m);
            var b = RandomMatrix(k, n, n, random, float.NaN);
            var bias = RandomArray(n, random);
            var packed = RandomMatrix(m, n, n, random, 0f);
            var inPlace = (float[])packed.Clone();
            fixed (float* pa512 = a512, pa509 = a509, pb = b, pbias = bias, pp = packed, pi = inPlace)
            {
                Gemm.Multiply(Transpose.Yes, Transpose.No, m, n, k, pa512, 512, pb, n, pp, n, accumulate: true, bias: pbias);
                Gemm.Multiply(Transpose.Yes, Transpose.No, m, n, k, pa509, 509, pb, n, pi, n, accumulate: true, bias: pbias);
            }
            for (int i = 0; i < packed.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(packed[i]) == BitConverter.SingleToInt32Bits(inPlace[i]),
                    $"element {i}: packed {packed[i]:R}, read in place {inPlace[i]:R}");
        }
        finally { AttentionSharp.Kernels.Parallel.ThreadCount = saved; }
    }

    /// <summary>
    /// Column blocks on four threads: op(A) packed once for all units, here in several row blocks and slices of k
    /// (300 rows are more than one MC block for the Vector512 and Vector256 kernels), with ragged last block and slice.
    /// </summary>
    [Theory]
    [MemberData(nameof(Transposes))]
    public void ColumnSplitWithSeveralRowBlocksMatchesReference(Transpose ta, Transpose tb)
    {
        int saved = AttentionSharp.Kernels.Parallel.ThreadCount;
        AttentionSharp.Kernels.Parallel.ThreadCount = 4;
        try
        {
            var c = new Case(ta, tb, 300, 700, 1100, Accumulate: ta == tb, Bias: tb == Transpose.No, Pad: ta == Transpose.Yes);
            var rows = new SortedSet<int> { 0, 1, 5, 6, 111, 112, 149, 150, 191, 192, 223, 224, 298, 299 };
            Check(c, 600, rows);
        }
        finally { AttentionSharp.Kernels.Parallel.ThreadCount = saved; }
    }

    /// <summary>
    /// Products with up to <see cref="Gemm.FewRowsMax"/> rows skip packing (decoding one token); large enough to be split
    /// over threads by columns, and one row past the limit to cross into the packed path.
    /// </summary>
    [Theory]
    [MemberData(nameof(Transposes))]
    public void FewRowProductsMatchReference(Transpose ta, Transpose tb)
    {
        int seed = 500;
        for (int m = 1; m <= Gemm.FewRowsMax + 1; m++)
        {
            seed++;
            Check(new Case(ta, tb, m, 3001, 771, Accumulate: m % 2 == 0, Bias: m % 3 != 0, Pad: m % 2 == 1), seed);
        }
    }

    /// <summary>
    /// One row against a weight stored n×k (decoding one token) takes four columns at a time where that pays (the
    /// Vector256 path) and one at a time for the rest of a thread's range: every column equals, bit for bit, the same
    /// column computed alone, at every depth tail, and both are within the reference's bound.
    /// </summary>
    [Fact]
    public void OneRowProductColumnsEqualEachColumnAlone()
    {
        int seed = 700;
        foreach (int k in new[] { 1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 771 })
            foreach (int n in new[] { 1, 3, 4, 5, 8, 11, 64, 261 })
            {
                var random = new Random(++seed);
                var a = RandomArray(k, random);
                var b = RandomMatrix(n, k, k + 5, random, float.NaN);
                var bias = RandomArray(n, random);
                var c = new float[n];
                var alone = new float[n];
                var expected = new float[n];
                fixed (float* pa = a, pb = b, pbias = bias, pc = c, pl = alone, pe = expected)
                {
                    Gemm.Multiply(Transpose.No, Transpose.Yes, 1, n, k, pa, k, pb, k + 5, pc, n, bias: pbias);
                    for (int j = 0; j < n; j++)
                        Gemm.Multiply(Transpose.No, Transpose.Yes, 1, 1, k, pa, k, pb + (long)j * (k + 5), k + 5, pl + j, 1,
                            bias: pbias + j);
                    ReferenceGemm.Multiply(Transpose.No, Transpose.Yes, 1, n, k, pa, k, pb, k + 5, pe, n, bias: pbias);
                }
                for (int j = 0; j < n; j++)
                    Assert.True(BitConverter.SingleToInt32Bits(alone[j]) == BitConverter.SingleToInt32Bits(c[j]),
                        $"k = {k}, n = {n}: column {j} is {c[j]:R} among the others, {alone[j]:R} alone");
                AssertClose(expected, c, 1, n, n, Tolerance(k, k + 1), $"k = {k}, n = {n}");
            }
    }

    /// <summary>
    /// Up to <see cref="Gemm.FewRowsMax"/> rows against a weight stored n×k (decoding several sequences at once): every
    /// row equals, bit for bit, the same row computed alone, so a sequence's logits do not depend on its neighbours.
    /// </summary>
    [Fact]
    public void FewRowProductRowsEqualEachRowAlone()
    {
        int seed = 900;
        foreach (int k in new[] { 1, 8, 17, 33, 64, 771 })
            for (int m = 2; m <= Gemm.FewRowsMax; m++)
            {
                var random = new Random(++seed);
                int n = 37;
                var a = RandomMatrix(m, k, k + 3, random, float.NaN);
                var b = RandomMatrix(n, k, k + 5, random, float.NaN);
                var together = new float[m * n];
                var alone = new float[m * n];
                fixed (float* pa = a, pb = b, pt = together, pl = alone)
                {
                    Gemm.Multiply(Transpose.No, Transpose.Yes, m, n, k, pa, k + 3, pb, k + 5, pt, n);
                    for (int i = 0; i < m; i++)
                        Gemm.Multiply(Transpose.No, Transpose.Yes, 1, n, k, pa + (long)i * (k + 3), k + 3, pb, k + 5,
                            pl + (long)i * n, n);
                }
                for (int e = 0; e < m * n; e++)
                    Assert.True(BitConverter.SingleToInt32Bits(alone[e]) == BitConverter.SingleToInt32Bits(together[e]),
                        $"k = {k}, m = {m}: row {e / n}, column {e % n} is {together[e]:R} with the others, {alone[e]:R} alone");
            }
    }

    /// <summary>
    /// Narrow products (n ≤ <see cref="Gemm.NarrowMax"/>, k ≤ <see cref="Gemm.NarrowDepthMax"/>: a small convolution's
    /// rows), at every column tail of every vector width, on one thread and split by rows; and the shapes just past the
    /// limits, which go to the packed path.
    /// </summary>
    [Theory]
    [MemberData(nameof(Transposes))]
    public void NarrowProductsMatchReference(Transpose ta, Transpose tb)
    {
        int seed = 1000;
        foreach (int n in new[] { 1, 2, 7, 8, 9, 15, 16, 17 })
            foreach (var (m, k) in new[] { (9, 1), (30, 9), (4000, 9), (777, 32), (50, 33) })
            {
                seed++;
                Check(new Case(ta, tb, m, n, k, Accumulate: seed % 2 == 0, Bias: seed % 3 == 0, Pad: seed % 4 < 2), seed);
            }
    }

    /// <summary>
    /// Small products summed over a long k (a narrow layer's weight gradient, Aᵀ·B), in slices of
    /// <see cref="Gemm.LongDepthSlice"/>: every row and column tail, depths around the slice edges, and the last rows of A,
    /// whose vectors must not read past it.
    /// </summary>
    [Theory]
    [MemberData(nameof(Transposes))]
    public void SmallProductsOverLongDepthMatchReference(Transpose ta, Transpose tb)
    {
        int seed = 1100;
        foreach (int m in new[] { 1, 3, 8, 9, 15, 16, 17 })
            foreach (int n in new[] { 1, 9, 16, 17 })
                foreach (int k in new[] { 255, 256, 511, 512, 513, 1500 })
                {
                    seed++;
                    Check(new Case(ta, tb, m, n, k, Accumulate: seed % 2 == 0, Bias: seed % 3 == 0, Pad: seed % 4 < 2), seed);
                }
    }

    /// <summary>
    /// The narrow paths split their work by rows or by fixed slices of k: every thread count gives the same bits.
    /// </summary>
    [Fact]
    public void NarrowProductsDoNotDependOnTheThreadCount()
    {
        int saved = AttentionSharp.Kernels.Parallel.ThreadCount;
        try
        {
            foreach (var (ta, m, n, k) in new[] { (Transpose.No, 25088, 16, 9), (Transpose.Yes, 16, 9, 25088) })
            {
                var random = new Random(m + k);
                var a = RandomArray(m * k, random);
                var b = RandomArray(k * n, random);
                var results = new List<float[]>();
                foreach (int threads in new[] { 1, 2, 3, 4 })
                {
                    AttentionSharp.Kernels.Parallel.ThreadCount = threads;
                    var c = new float[m * n];
                    Gemm.Multiply(ta, Transpose.No, m, n, k, a, ta == Transpose.No ? k : m, b, n, c, n);
                    results.Add(c);
                }
                foreach (var c in results.Skip(1))
                    Assert.Equal(results[0].Select(BitConverter.SingleToInt32Bits), c.Select(BitConverter.SingleToInt32Bits));
            }
        }
        finally { AttentionSharp.Kernels.Parallel.ThreadCount = saved; }
    }

    /// <summary>Callers on several threads at once: one gets the worker pool, the others run on their own thread.</summary>
    [Fact]
    public void ConcurrentCallersGetCorrectResults()
    {
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            try
            {
                var c = new Case(Transpose.No, t % 2 == 0 ? Transpose.No : Transpose.Yes, 200 + 37 * t, 300, 150,
                    Accumulate: t == 1, Bias: t == 2, Pad: t == 3);
                for (int round = 0; round < 3; round++) Check(c, 600 + 10 * t + round, new[] { 0, 1, 100, c.M - 1 });
            }
            catch (Exception e)
            {
                failures.Enqueue(e);
            }
        })).ToArray();
        foreach (var thread in threads) thread.Start();
        foreach (var thread in threads) thread.Join();
        Assert.True(failures.IsEmpty, string.Join(Environment.NewLine, failures.Select(e => e.Message)));
    }

    [Fact]
    public void BatchedMatchesReferenceWithStridesAndBroadcast()
    {
        int seed = 500;
        foreach (var ta in Both)
            foreach (var tb in Both)
                foreach (var (broadcastA, broadcastB, sumIntoC) in
                         new[] { (false, false, false), (true, false, false), (false, true, false), (false, false, true) })
                    foreach (var (batch, m, n, k) in new[] { (3, 17, 35, 19), (9, 8, 20, 12), (2, 130, 140, 150) })
                    {
                        seed++;
                        CheckBatched(ta, tb, batch, m, n, k, broadcastA, broadcastB, sumIntoC, accumulate: seed % 2 == 0, seed);
                    }
    }

    [Fact]
    public void SpanOverloadMatchesPointerOverload()
    {
        var random = new Random(1);
        int m = 37, n = 45, k = 23;
        var a = RandomArray(m * k, random);
        var b = RandomArray(k * n, random);
        var bias = RandomArray(n, random);
        var fast = new float[m * n];
        var expected = new float[m * n];
        Gemm.Multiply(Transpose.No, Transpose.No, m, n, k, a, k, b, n, fast, n, bias: bias);
        ReferenceGemm.Multiply(Transpose.No, Transpose.No, m, n, k, a, k, b, n, expected, n, bias: bias);
        AssertClose(expected, fast, m, n, n, Tolerance(k, k + 1), "span overload");
    }

    [Fact]
    public void SpanOverloadRejectsShortOperands()
    {
        var big = new float[100];
        var e = Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(Transpose.No, Transpose.No, 5, 5, 5, new float[24], 5, big, 5, big, 5));
        Assert.Contains("A holds 24", e.Message);
        e = Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(Transpose.No, Transpose.Yes, 5, 6, 5, big, 5, new float[29], 5, big, 6));
        Assert.Contains("B holds 29", e.Message);
        e = Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(Transpose.No, Transpose.No, 5, 5, 5, big, 5, big, 5, new float[20], 5));
        Assert.Contains("C holds 20", e.Message);
        e = Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(Transpose.No, Transpose.No, 5, 5, 5, big, 5, big, 5, big, 5, bias: new float[4]));
        Assert.Contains("bias holds 4", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            Gemm.Multiply(Transpose.No, Transpose.No, 5, 5, 5, big, 4, big, 5, big, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            Gemm.Multiply(Transpose.No, Transpose.No, -1, 5, 5, big, 5, big, 5, big, 5));
        // Empty operands need no storage at all.
        Gemm.Multiply(Transpose.No, Transpose.No, 0, 5, 5, [], 5, big, 5, [], 5);
    }

    /// <summary>0–33 covers every tail of the 4-, 6-, 14-, 16- and 32-wide tiles; the rest straddle larger multiples.</summary>
    static IEnumerable<int> DenseSizes()
    {
        for (int s = 0; s <= 33; s++) yield return s;
        foreach (int s in new[] { 41, 42, 43, 47, 48, 49, 55, 56, 57, 63, 64, 65, 95, 96, 97, 127, 128, 129, 255, 256, 257 })
            yield return s;
    }

    /// <summary>One product to check; <paramref name="Pad"/> makes every leading dimension wider than its row.</summary>
    record Case(Transpose TransA, Transpose TransB, int M, int N, int K, bool Accumulate, bool Bias, bool Pad)
    {
        public int RowsA => TransA == Transpose.No ? M : K;
        public int ColsA => TransA == Transpose.No ? K : M;
        public int RowsB => TransB == Transpose.No ? K : N;
        public int ColsB => TransB == Transpose.No ? N : K;
        public int Lda => ColsA + (Pad ? 3 : 0);
        public int Ldb => ColsB + (Pad ? 5 : 0);
        public int Ldc => N + (Pad ? 2 : 0);
    }

    static void Check(Case c, int seed, IReadOnlyCollection<int>? rowsToCheck = null)
    {
        var random = new Random(seed);
        // Padding is NaN in A and B, so reading past a row poisons the result; in C it must stay untouched.
        var a = RandomMatrix(c.RowsA, c.ColsA, c.Lda, random, float.NaN);
        var b = RandomMatrix(c.RowsB, c.ColsB, c.Ldb, random, float.NaN);
        var bias = c.Bias ? RandomArray(c.N, random) : null;
        var initial = RandomMatrix(c.M, c.N, c.Ldc, random, 1234.5f);
        var fast = (float[])initial.Clone();
        var expected = (float[])initial.Clone();
        fixed (float* pa = a, pb = b, pbias = bias, pf = fast, pe = expected)
        {
            Gemm.Multiply(c.TransA, c.TransB, c.M, c.N, c.K, pa, c.Lda, pb, c.Ldb, pf, c.Ldc, c.Accumulate, pbias);
            var rows = rowsToCheck ?? Enumerable.Range(0, c.M).ToArray();
            foreach (int i in rows)
            {
                // Row i of op(A) is stored row i (no transpose) or column i (transpose).
                float* row = c.TransA == Transpose.No ? pa + (long)i * c.Lda : pa + i;
                ReferenceGemm.Multiply(c.TransA, c.TransB, 1, c.N, c.K, row, c.Lda, pb, c.Ldb, pe + (long)i * c.Ldc, c.Ldc,
                    c.Accumulate, pbias);
            }
            if (rowsToCheck != null)
                foreach (int i in Enumerable.Range(0, c.M).Except(rowsToCheck))
                    Array.Copy(fast, (long)i * c.Ldc, expected, (long)i * c.Ldc, c.N);
        }
        // Inputs lie in [-1, 1): each product is at most 1 in magnitude, the bias and old C add at most 1 each.
        AssertClose(expected, fast, c.M, c.N, c.Ldc, Tolerance(c.K, c.K + 2), c.ToString());
    }

    static void CheckBatched(Transpose ta, Transpose tb, int batch, int m, int n, int k, bool broadcastA,
        bool broadcastB, bool sumIntoC, bool accumulate, int seed)
    {
        var random = new Random(seed);
        int rowsA = ta == Transpose.No ? m : k, colsA = ta == Transpose.No ? k : m;
        int rowsB = tb == Transpose.No ? k : n, colsB = tb == Transpose.No ? n : k;
        int lda = colsA + 1, ldb = colsB + 2, ldc = n + 3;
        // Strides leave a gap between consecutive matrices.
        long strideA = broadcastA ? 0 : (long)rowsA * lda + 7;
        long strideB = broadcastB ? 0 : (long)rowsB * ldb + 5;
        long strideC = sumIntoC ? 0 : (long)m * ldc + 11;
        var a = RandomArray((int)(strideA * (batch - 1) + (long)rowsA * lda), random);
        var b = RandomArray((int)(strideB * (batch - 1) + (long)rowsB * ldb), random);
        var initial = RandomArray((int)(strideC * (batch - 1) + (long)m * ldc), random);
        var fast = (float[])initial.Clone();
        var expected = (float[])initial.Clone();
        fixed (float* pa = a, pb = b, pf = fast, pe = expected)
        {
            Gemm.MultiplyBatched(ta, tb, batch, m, n, k, pa, lda, strideA, pb, ldb, strideB, pf, ldc, strideC, accumulate);
            ReferenceGemm.MultiplyBatched(ta, tb, batch, m, n, k, pa, lda, strideA, pb, ldb, strideB, pe, ldc, strideC,
                accumulate);
        }
        int sums = sumIntoC ? batch : 1;
        string what = $"batched {ta}/{tb} batch={batch} m={m} n={n} k={k} strides=({strideA}, {strideB}, {strideC}) " +
                      $"accumulate={accumulate}";
        AssertClose(expected, fast, fast.Length, 1, 1, Tolerance(sums * k, sums * k + 1), what);
    }

    static float[] RandomArray(int length, Random random)
    {
        var x = new float[length];
        for (int i = 0; i < length; i++) x[i] = random.NextSingle() * 2 - 1;
        return x;
    }

    static float[] RandomMatrix(int rows, int cols, int ld, Random random, float padding)
    {
        var x = new float[Math.Max(0, rows * ld)];
        Array.Fill(x, padding);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                x[i * ld + j] = random.NextSingle() * 2 - 1;
        return x;
    }

    /// <summary>Compares every element (padding included, which must match exactly) and reports the worst one.</summary>
    static void AssertClose(float[] expected, float[] actual, int rows, int cols, int ld, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxDiff = 0;
        int worst = -1, failures = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            bool inside = i / ld < rows && i % ld < cols;
            double diff = Math.Abs((double)expected[i] - actual[i]);
            bool bad = inside
                ? !(diff <= tolerance)
                : BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]);
            if (bad) failures++;
            if (bad && (worst < 0 || !(diff <= maxDiff))) { maxDiff = diff; worst = i; }
        }
        if (failures > 0)
            Assert.Fail($"{what}: {failures} elements differ; worst at index {worst} (row {worst / ld}, column {worst % ld}): " +
                $"expected {expected[worst]}, actual {actual[worst]}, max difference {maxDiff:G4}, tolerance {tolerance:G4}.");
    }
}
