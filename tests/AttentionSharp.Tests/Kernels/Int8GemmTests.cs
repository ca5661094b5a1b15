using AttentionSharp.Kernels;
using Xunit.Sdk;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

/// <summary>
/// The int8 kernels against their reference twin, bit for bit: the sums are exact integers and the epilogue is the same
/// float operations on every path. Shapes cover every row tail of the 4-, 2- and 1-row kernels, every column tail of
/// the 4-column block, and depths on both sides of the 64-element padding. Re-run with DOTNET_EnableAVX512=0,
/// DOTNET_EnableAVX2=0 and DOTNET_EnableHWIntrinsic=0 to exercise the AVX2 and scalar kernels.
/// </summary>
[Trait("Category", "Kernels")]
public class Int8GemmTests
{
    static readonly int[] Ms = [1, 2, 3, 4, 5, 7, 17];
    static readonly int[] Ns = [1, 2, 3, 4, 5, 17, 33];
    static readonly int[] Ks = [1, 2, 3, 5, 8, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 70, 127, 128, 129, 768];

    [Fact]
    public void MultiplyMatchesReferenceBitForBit()
    {
        int seed = 0;
        foreach (int k in Ks)
            foreach (int m in Ms)
                foreach (int n in Ns)
                {
                    seed++;
                    var c = Operands.Random(m, n, k, bias: seed % 2 == 0, residual: seed % 3 != 0, new Random(seed));
                    AssertBitEqual(c.Reference(), c.Fast(),
                        $"m={m} n={n} k={k} bias={c.Bias != null} residual={c.Residual != null}");
                }
    }

    /// <summary>Shapes large enough to split over threads: by columns (one row) and by blocks of rows.</summary>
    [Fact]
    public void ThreadedProductsMatchReferenceAndDoNotDependOnThreadCount()
    {
        int saved = AttentionSharp.Kernels.Parallel.ThreadCount;
        try
        {
            foreach (var (m, n, k, seed) in new[] { (1, 3001, 771, 1), (2, 1030, 200, 2), (300, 77, 832, 3), (41, 513, 64, 4) })
            {
                var c = Operands.Random(m, n, k, bias: seed % 2 == 1, residual: seed > 2, new Random(seed));
                var expected = c.Reference();
                foreach (int threads in new[] { 1, 3, 4 })
                {
                    AttentionSharp.Kernels.Parallel.ThreadCount = threads;
                    AssertBitEqual(expected, c.Fast(), $"m={m} n={n} k={k} on {threads} threads");
                }
            }
        }
        finally { AttentionSharp.Kernels.Parallel.ThreadCount = saved; }
    }

    /// <summary>
    /// One row of activations reads the two halves of each thread's panels side by side: panel counts from 1 to 23
    /// (even and odd, so pairs with and without one left over, and a last panel of 1–3 columns in either half of a
    /// pair), at depths that split over threads and that do not, against the reference.
    /// </summary>
    [Fact]
    public void OneRowProductsMatchReferenceForEveryPanelCount()
    {
        int saved = AttentionSharp.Kernels.Parallel.ThreadCount;
        try
        {
            foreach (int k in new[] { 33, 768, 3072 })
                for (int n = 1; n <= 96; n += n < 12 ? 1 : 5)
                {
                    var c = Operands.Random(1, n, k, bias: n % 2 == 0, residual: n % 3 == 0, new Random(n * 7 + k));
                    var expected = c.Reference();
                    foreach (int threads in new[] { 1, 2, 3 })
                    {
                        AttentionSharp.Kernels.Parallel.ThreadCount = threads;
                        AssertBitEqual(expected, c.Fast(), $"m=1 n={n} k={k} on {threads} threads");
                    }
                }
        }
        finally { AttentionSharp.Kernels.Parallel.ThreadCount = saved; }
    }

    /// <summary>
    /// The largest depth with operands at ±127 everywhere: the sums reach ±127·127·131072 ≈ ±2.1·10⁹, just inside
    /// int32, and each pair of products the most the 16-bit multiply-add ever sees.
    /// </summary>
    [Fact]
    public void ExtremeSumsAreExact()
    {
        int kp = Int8Gemm.MaxPaddedLength, m = 5, n = 5;
        var xq = new short[m * kp];
        var w = new sbyte[n * kp];
        for (int i = 0; i < m; i++) Array.Fill(xq, (short)(i % 2 == 0 ? 127 : -127), i * kp, kp);
        for (int j = 0; j < n; j++) Array.Fill(w, (sbyte)(j % 3 == 0 ? -127 : 127), j * kp, kp);
        var xs = Enumerable.Repeat(1f, m).ToArray();
        var ws = Enumerable.Repeat(1f, n).ToArray();
        var y = new float[m * n];
        Int8Gemm.Multiply(xq, xs, m, kp, Pack(w, n, kp), ws, n, [], [], y);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                int sign = (i % 2 == 0 ? 1 : -1) * (j % 3 == 0 ? -1 : 1);
                Assert.Equal((float)(sign * 127 * 127 * kp), y[i * n + j]);
            }
    }

    /// <summary>The server batches independent requests: a row's result must not depend on the rows beside it.</summary>
    [Fact]
    public void RowResultsDoNotDependOnTheBatch()
    {
        int saved = AttentionSharp.Kernels.Parallel.ThreadCount;
        try
        {
            foreach (var (m, n, k) in new[] { (17, 33, 129), (9, 700, 768), (300, 20, 70) })
            {
                var c = Operands.Random(m, n, k, bias: true, residual: true, new Random(m + n + k));
                var batched = c.Fast();
                AttentionSharp.Kernels.Parallel.ThreadCount = 1;
                foreach (var (start, rows) in new[] { (0, 1), (m - 1, 1), (m / 2, 1), (1, Math.Min(5, m - 1)), (2, m - 2) })
                {
                    var part = c.Rows(start, rows).Fast();
                    AssertBitEqual(batched.AsSpan(start * n, rows * n).ToArray(), part,
                        $"rows {start}…{start + rows - 1} of m={m} n={n} k={k}");
                }
                AttentionSharp.Kernels.Parallel.ThreadCount = saved;
            }
        }
        finally { AttentionSharp.Kernels.Parallel.ThreadCount = saved; }
    }

    /// <summary>
    /// The panel layout against its element-by-element definition, for every row tail of a panel and depths of one
    /// and several pieces; unpacking any stretch of a row gives the row back.
    /// </summary>
    [Fact]
    public void PackingMatchesReferenceAndUnpacksToTheRows()
    {
        foreach (int n in Ns.Append(0).Append(8))
            foreach (int kp in new[] { 0, 64, 128, 832 })
            {
                var rng = new Random(n * 1000 + kp);
                var w = Enumerable.Range(0, n * kp).Select(_ => (sbyte)rng.Next(-127, 128)).ToArray();
                long length = Int8Gemm.PackedLength(n, kp);
                Assert.Equal((n + 3) / 4 * 4 * kp, length);
                var (packed, expected) = (Filled<sbyte>((int)length, 0x55), Filled<sbyte>((int)length, 0x55));
                Int8Gemm.PackWeights(w, n, kp, packed);
                Ref.Int8Gemm.PackWeights(w, n, kp, expected);
                AssertEqual(expected, packed, $"packed n={n} kPadded={kp}");
                for (int j = 0; j < n; j++)
                {
                    var row = new sbyte[kp];
                    Int8Gemm.UnpackRow(packed, kp, j, row);
                    AssertEqual(w[(j * kp)..((j + 1) * kp)], row, $"row {j} of n={n} kPadded={kp}");
                    if (kp < 64) continue;
                    int start = rng.Next(kp - 40), count = rng.Next(41);
                    var part = new sbyte[count];
                    Int8Gemm.UnpackRow(packed, kp, j, part, start);
                    AssertEqual(w[(j * kp + start)..(j * kp + start + count)], part, $"row {j} [{start}, {start + count})");
                }
            }
    }

    [Fact]
    public void ResidualMayBeTheOutput()
    {
        var c = Operands.Random(5, 17, 70, bias: true, residual: true, new Random(7));
        var y = (float[])c.Residual!.Clone();
        Int8Gemm.Multiply(c.Xq, c.XScales, c.M, c.KPadded, Pack(c.Wq, c.N, c.KPadded), c.WScales, c.N, c.Bias, y, y);
        AssertBitEqual(c.Reference(), y, "y += x·wᵀ + b in place");
    }

    [Fact]
    public void ZeroDepthGivesBiasPlusResidual()
    {
        var c = Operands.Random(3, 5, 0, bias: true, residual: true, new Random(8));
        Assert.Equal(0, c.KPadded);
        AssertBitEqual(c.Reference(), c.Fast(), "k = 0");
        // Empty products have nothing to write.
        Int8Gemm.Multiply([], [], 0, 64, new sbyte[64 * 4], new float[3], 3, [], [], []);
        Int8Gemm.Multiply(new short[64 * 2], new float[2], 2, 64, [], [], 0, [], [], []);
    }

    [Fact]
    public void ConcurrentCallersGetCorrectResults()
    {
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            try
            {
                var c = Operands.Random(1 + 13 * t, 600, 300, bias: t % 2 == 0, residual: t > 1, new Random(40 + t));
                var expected = c.Reference();
                for (int round = 0; round < 3; round++) AssertBitEqual(expected, c.Fast(), $"caller {t}, round {round}");
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
    public void QuantizersMatchReference()
    {
        foreach (int k in Ks.Append(0).Append(1000))
            foreach (int rows in new[] { 1, 3 })
            {
                var rng = new Random(k * 7 + rows);
                var x = Uniform(rng, rows * k, 3f);
                if (k > 4) x[rows * k - 3] = 0f;
                int kp = Int8Gemm.PaddedLength(k);

                var (q, qe) = (Filled<sbyte>(rows * kp, 0x55), Filled<sbyte>(rows * kp, 0x55));
                var (s, se) = (new float[rows], new float[rows]);
                Int8Gemm.QuantizeWeights(x, rows, k, q, s);
                Ref.Int8Gemm.QuantizeWeights(x, rows, k, qe, se);
                AssertBitEqual(se, s, $"weight scales {rows}×{k}");
                AssertEqual(qe, q, $"weights {rows}×{k}");

                var (xq, xqe) = (Filled<short>(rows * kp, 0x5555), Filled<short>(rows * kp, 0x5555));
                Int8Gemm.QuantizeRows(x, rows, k, xq, s);
                Ref.Int8Gemm.QuantizeRows(x, rows, k, xqe, se);
                AssertBitEqual(se, s, $"activation scales {rows}×{k}");
                AssertEqual(xqe, xq, $"activations {rows}×{k}");
            }
    }

    /// <summary>
    /// With max |x| = 127 the scale is exactly 1, so x / s = x and the rounding itself is seen: halves go to the even
    /// neighbour, in the vector bodies and in the tails alike.
    /// </summary>
    [Fact]
    public void RoundsHalfToEven()
    {
        float[] values = [0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -126.5f, 3.4999998f, 0.49999997f, 127f];
        short[] expected = [0, 2, 2, 0, -2, -2, 126, -126, 3, 0, 127];
        foreach (int k in new[] { 11, 70, 131 })
        {
            var x = new float[k];
            for (int c = 0; c < k; c++) x[c] = values[c % values.Length];
            x[^1] = 127f;
            var (xq, s) = (new short[Int8Gemm.PaddedLength(k)], new float[1]);
            Int8Gemm.QuantizeRows(x, 1, k, xq, s);
            Assert.Equal(1f, s[0]);
            var (q, ws) = (new sbyte[Int8Gemm.PaddedLength(k)], new float[1]);
            Int8Gemm.QuantizeWeights(x, 1, k, q, ws);
            for (int c = 0; c < k - 1; c++)
            {
                short e = expected[c % values.Length];
                Assert.True(e == xq[c], $"k={k}: round({x[c]:R}) gave {xq[c]}, expected {e} (column {c}) [{ActiveWidth}]");
                Assert.True(e == q[c], $"k={k}: weight round({x[c]:R}) gave {q[c]}, expected {e} (column {c}) [{ActiveWidth}]");
            }
        }
    }

    /// <summary>
    /// A row of tiny subnormals: max |x| / 127 rounds to the smallest subnormal, so x / s reaches ±190 and must be
    /// clamped to ±127, never −128. A row that underflows altogether quantizes to zeros with scale 0.
    /// </summary>
    [Fact]
    public void ClampsToPlusMinus127()
    {
        const int k = 70;
        float tiny = float.Epsilon;
        var x = new float[2 * k];
        for (int c = 0; c < k; c++) x[c] = (c % 2 == 0 ? 190 : -190) * tiny;
        x[k] = 63 * tiny; // row 1: 63 / 127 of the smallest subnormal rounds to 0
        var (q, s) = (new sbyte[2 * 128], new float[2]);
        Int8Gemm.QuantizeWeights(x, 2, k, q, s);
        Assert.Equal(tiny, s[0]);
        Assert.Equal(0f, s[1]);
        for (int c = 0; c < k; c++) Assert.Equal(c % 2 == 0 ? 127 : -127, q[c]);
        Assert.All(q[128..], v => Assert.Equal(0, v));
        var (xq, xs) = (new short[2 * 128], new float[2]);
        Int8Gemm.QuantizeRows(x, 2, k, xq, xs);
        for (int c = 0; c < k; c++) Assert.Equal(c % 2 == 0 ? 127 : -127, xq[c]);
        Assert.All(xq[128..], v => Assert.Equal(0, v));
    }

    [Fact]
    public void AllZeroRowsHaveScaleZeroAndZeroCodes()
    {
        const int k = 100;
        var x = Uniform(new Random(3), 3 * k, 1f);
        Array.Clear(x, k, k);
        var (q, s) = (Filled<sbyte>(3 * 128, 9), new float[3]);
        Int8Gemm.QuantizeWeights(x, 3, k, q, s);
        Assert.Equal(0f, s[1]);
        Assert.All(q[128..256], v => Assert.Equal(0, v));
        var (xq, xs) = (Filled<short>(3 * 128, 9), new float[3]);
        Int8Gemm.QuantizeRows(x, 3, k, xq, xs);
        Assert.Equal(0f, xs[1]);
        Assert.All(xq[128..256], v => Assert.Equal(0, v));
        // Padding is zero in every row.
        for (int r = 0; r < 3; r++)
        {
            Assert.All(q[(r * 128 + k)..((r + 1) * 128)], v => Assert.Equal(0, v));
            Assert.All(xq[(r * 128 + k)..((r + 1) * 128)], v => Assert.Equal(0, v));
        }
    }

    /// <summary>Values already on the grid (q · s with s a power of two and some |q| = 127) come back exactly.</summary>
    [Fact]
    public void ValuesOnTheGridRoundTripExactly()
    {
        foreach (int k in new[] { 1, 17, 64, 129 })
        {
            var rng = new Random(k);
            const float s = 1f / 32;
            var codes = Enumerable.Range(0, k).Select(_ => rng.Next(-127, 128)).ToArray();
            codes[rng.Next(k)] = rng.Next(2) == 0 ? 127 : -127;
            var x = codes.Select(c => c * s).ToArray();
            int kp = Int8Gemm.PaddedLength(k);
            var (q, ws) = (new sbyte[kp], new float[1]);
            Int8Gemm.QuantizeWeights(x, 1, k, q, ws);
            Assert.Equal(s, ws[0]);
            var back = new float[k];
            Int8Gemm.DequantizeRow(q, ws[0], back);
            AssertBitEqual(x, back, $"weight round trip k={k}");
            var (xq, xs) = (new short[kp], new float[1]);
            Int8Gemm.QuantizeRows(x, 1, k, xq, xs);
            Assert.Equal(s, xs[0]);
            for (int c = 0; c < k; c++) Assert.Equal(codes[c], xq[c]);
        }
    }

    /// <summary>|x − q·s| ≤ s/2, up to the one rounding of x / s.</summary>
    [Fact]
    public void QuantizationErrorIsAtMostHalfAStep()
    {
        foreach (int k in new[] { 5, 64, 333 })
        {
            var rng = new Random(k);
            var x = Uniform(rng, 4 * k, 10f);
            for (int c = 0; c < x.Length; c += 7) x[c] *= 1e-3f;
            int kp = Int8Gemm.PaddedLength(k);
            var (q, s) = (new sbyte[4 * kp], new float[4]);
            Int8Gemm.QuantizeWeights(x, 4, k, q, s);
            var back = new float[k];
            for (int r = 0; r < 4; r++)
            {
                Int8Gemm.DequantizeRow(q.AsSpan(r * kp, kp), s[r], back);
                for (int c = 0; c < k; c++)
                {
                    double err = Math.Abs((double)x[r * k + c] - (double)q[r * kp + c] * s[r]);
                    Assert.True(err <= s[r] * (0.5 + 1e-6),
                        $"row {r} column {c}: x = {x[r * k + c]:R}, q = {q[r * kp + c]}, s = {s[r]:R}, error {err:G6}");
                }
            }
        }
    }

    [Fact]
    public void DequantizeRowMatchesReference()
    {
        var rng = new Random(5);
        foreach (int k in Enumerable.Range(0, 80).Append(777))
        {
            var q = Enumerable.Range(0, k + 3).Select(_ => (sbyte)rng.Next(-128, 128)).ToArray();
            float scale = rng.NextSingle() * 0.1f;
            var (y, ye) = (new float[k], new float[k]);
            Int8Gemm.DequantizeRow(q, scale, y);
            Ref.Int8Gemm.DequantizeRow(q, scale, ye);
            AssertBitEqual(ye, y, $"dequantize k={k}");
        }
        var e = Assert.Throws<ArgumentException>(() => Int8Gemm.DequantizeRow(new sbyte[3], 1f, new float[4]));
        Assert.Contains("q has length 3; expected at least 4", e.Message);
    }

    /// <summary>
    /// A NaN or ±∞ activation makes its row's outputs NaN, as the float product would; other rows are untouched.
    /// </summary>
    [Fact]
    public void NonFiniteActivationsGiveNaNRows()
    {
        const int m = 5, n = 9, k = 70;
        var c = Operands.Random(m, n, k, bias: true, residual: false, new Random(11));
        var x = c.X;
        x[1 * k + 3] = float.NaN;
        x[3 * k + 69] = float.PositiveInfinity;
        x[4 * k + 0] = float.NegativeInfinity;
        Int8Gemm.QuantizeRows(x, m, k, c.Xq, c.XScales);
        foreach (int r in new[] { 1, 3, 4 })
        {
            Assert.True(float.IsNaN(c.XScales[r]), $"row {r} scale {c.XScales[r]}");
            Assert.All(c.Xq[(r * c.KPadded)..((r + 1) * c.KPadded)], v => Assert.Equal(0, v));
        }
        var y = c.Fast();
        AssertBitEqual(c.Reference(), y, "rows with NaN");
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                Assert.Equal(i is 1 or 3 or 4, float.IsNaN(y[i * n + j]));
    }

    [Fact]
    public void NonFiniteWeightsThrowNamingTheRow()
    {
        var w = new float[4 * 70];
        w[2 * 70 + 65] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => Int8Gemm.QuantizeWeights(w, 4, 70, new sbyte[4 * 128], new float[4]));
        Assert.Contains("w row 2 holds NaN at column 65", e.Message);
        Assert.Equal("w", e.ParamName);
        w[2 * 70 + 65] = 0f;
        w[3 * 70] = float.NegativeInfinity;
        e = Assert.Throws<ArgumentException>(() => Int8Gemm.QuantizeWeights(w, 4, 70, new sbyte[4 * 128], new float[4]));
        Assert.Contains("w row 3", e.Message);
    }

    [Fact]
    public void PaddedLengthRoundsUpToWholeBlocks()
    {
        Assert.Equal(0, Int8Gemm.PaddedLength(0));
        Assert.Equal(64, Int8Gemm.PaddedLength(1));
        Assert.Equal(64, Int8Gemm.PaddedLength(64));
        Assert.Equal(128, Int8Gemm.PaddedLength(65));
        Assert.Equal(768, Int8Gemm.PaddedLength(768));
        Assert.Equal(131072, Int8Gemm.PaddedLength(131072));
        Assert.Throws<ArgumentOutOfRangeException>(() => Int8Gemm.PaddedLength(-1));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Int8Gemm.PaddedLength(131073));
        Assert.Contains("k must be in [0, 131072]", e.Message);
    }

    [Fact]
    public void ArgumentsAreValidated()
    {
        const int m = 2, n = 3, kp = 64;
        short[] xq = new short[m * kp];
        float[] xs = new float[m], ws = new float[n], y = new float[m * n];
        sbyte[] w = new sbyte[Int8Gemm.PackedLength(n, kp)];
        void Check<TException>(string message, Action call) where TException : ArgumentException =>
            Assert.Contains(message, Assert.Throws<TException>(call).Message);

        Check<ArgumentException>("xq has length 127; expected 128 (m × kPadded = 2 × 64)",
            () => Int8Gemm.Multiply(new short[127], xs, m, kp, w, ws, n, [], [], y));
        Check<ArgumentException>("xScales has length 3; expected 2 (m = 2)",
            () => Int8Gemm.Multiply(xq, new float[3], m, kp, w, ws, n, [], [], y));
        Check<ArgumentException>("w has length 192; expected 256 (PackedLength(n, kPadded) for n = 3, kPadded = 64",
            () => Int8Gemm.Multiply(xq, xs, m, kp, new sbyte[n * kp], ws, n, [], [], y));
        Check<ArgumentException>("packed has length 192; expected 256 (PackedLength(n, kPadded) for n = 3, kPadded = 64)",
            () => Int8Gemm.PackWeights(new sbyte[n * kp], n, kp, new sbyte[n * kp]));
        Check<ArgumentOutOfRangeException>("row 4 is not in the 4 rows packed",
            () => Int8Gemm.UnpackRow(w, kp, 4, new sbyte[kp]));
        Check<ArgumentException>("values [60, 70) are not all in a row of 64",
            () => Int8Gemm.UnpackRow(w, kp, 0, new sbyte[10], start: 60));
        Check<ArgumentException>("wScales has length 2; expected 3 (n = 3)",
            () => Int8Gemm.Multiply(xq, xs, m, kp, w, new float[2], n, [], [], y));
        Check<ArgumentException>("bias has length 2; expected 3 (n = 3), or 0 to leave it out",
            () => Int8Gemm.Multiply(xq, xs, m, kp, w, ws, n, new float[2], [], y));
        Check<ArgumentException>("residual has length 5; expected 6 (m × n = 2 × 3)",
            () => Int8Gemm.Multiply(xq, xs, m, kp, w, ws, n, [], new float[5], y));
        Check<ArgumentException>("y has length 7; expected 6 (m × n = 2 × 3)",
            () => Int8Gemm.Multiply(xq, xs, m, kp, w, ws, n, [], [], new float[7]));
        var shared = new float[m * n + 1];
        Check<ArgumentException>("residual overlaps y at an offset of 1",
            () => Int8Gemm.Multiply(xq, xs, m, kp, w, ws, n, [], shared.AsSpan(1, m * n), shared.AsSpan(0, m * n)));
        Check<ArgumentOutOfRangeException>("kPadded must be a multiple of 64 in [0, 131072]",
            () => Int8Gemm.Multiply(new short[m * 65], xs, m, 65, new sbyte[n * 65], ws, n, [], [], y));
        Check<ArgumentOutOfRangeException>("kPadded must be a multiple of 64 in [0, 131072]",
            () => Int8Gemm.Multiply([], [], 0, 131072 + 64, [], [], 0, [], [], []));
        Check<ArgumentOutOfRangeException>("m must be non-negative",
            () => Int8Gemm.Multiply(xq, xs, -1, kp, w, ws, n, [], [], y));

        Check<ArgumentException>("w has length 10; expected 12 (n × k = 3 × 4)",
            () => Int8Gemm.QuantizeWeights(new float[10], 3, 4, new sbyte[3 * 64], new float[3]));
        Check<ArgumentException>("q has length 64; expected 192 (n × PaddedLength(k) = 3 × 64)",
            () => Int8Gemm.QuantizeWeights(new float[12], 3, 4, new sbyte[64], new float[3]));
        Check<ArgumentException>("scales has length 1; expected 3 (n = 3)",
            () => Int8Gemm.QuantizeWeights(new float[12], 3, 4, new sbyte[3 * 64], new float[1]));
        Check<ArgumentException>("xq has length 4; expected 128 (m × PaddedLength(k) = 2 × 64)",
            () => Int8Gemm.QuantizeRows(new float[8], 2, 4, new short[4], new float[2]));
        Check<ArgumentException>("x has length 9; expected 8 (m × k = 2 × 4)",
            () => Int8Gemm.QuantizeRows(new float[9], 2, 4, new short[128], new float[2]));
    }

    /// <summary>
    /// The int8 product against the float one, in double: with |Δx| ≤ s_x/2 and |Δw| ≤ s_w/2 per element,
    /// |Σ xw − Σ x̂ŵ| ≤ Σ (|x|·s_w/2 + |w|·s_x/2 + s_x·s_w/4), plus a few float roundings of the epilogue.
    /// </summary>
    [Fact]
    public void ApproximatesTheFloatProductWithinTheQuantizationBound()
    {
        const int m = 5, n = 33, k = 768;
        var c = Operands.Random(m, n, k, bias: true, residual: true, new Random(21));
        var y = c.Fast();
        const double epsilon = 1.0 / (1 << 23);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double exact = 0, bound = 0, magnitude = 0;
                for (int p = 0; p < k; p++)
                {
                    double x = c.X[i * k + p], w = c.W[j * k + p];
                    exact += x * w;
                    magnitude += Math.Abs(x * w);
                    bound += Math.Abs(x) * c.WScales[j] / 2 + Math.Abs(w) * c.XScales[i] / 2 + c.XScales[i] * c.WScales[j] / 4;
                }
                exact += c.Bias![j] + c.Residual![i * n + j];
                // Rounding: s = s_x·s_w, acc·s, + bias, + residual: four roundings of values at most this large.
                bound += 4 * epsilon * (magnitude + bound + Math.Abs(c.Bias[j]) + Math.Abs(c.Residual[i * n + j]));
                double err = Math.Abs(y[i * n + j] - exact);
                Assert.True(err <= bound,
                    $"({i}, {j}): int8 {y[i * n + j]:R}, float {exact:R}, error {err:G4} > bound {bound:G4}");
            }
    }

    /// <summary>
    /// Float operands, their quantized forms (by the fast quantizers, which match the reference) and a product.
    /// </summary>
    sealed record Operands(int M, int N, int K, float[] X, float[] W, float[]? Bias, float[]? Residual, short[] Xq,
        float[] XScales, sbyte[] Wq, float[] WScales)
    {
        public int KPadded => Int8Gemm.PaddedLength(K);

        public static Operands Random(int m, int n, int k, bool bias, bool residual, Random rng)
        {
            // Rows of different magnitudes, so the scales differ from row to row.
            var x = Uniform(rng, m * k, 1f);
            for (int i = 0; i < m; i++)
                for (int p = 0; p < k; p++) x[i * k + p] *= 1 + i % 5;
            var w = Uniform(rng, n * k, 0.2f);
            int kp = Int8Gemm.PaddedLength(k);
            var (xq, xs, wq, ws) = (new short[m * kp], new float[m], new sbyte[n * kp], new float[n]);
            Int8Gemm.QuantizeRows(x, m, k, xq, xs);
            Int8Gemm.QuantizeWeights(w, n, k, wq, ws);
            return new(m, n, k, x, w, bias ? Uniform(rng, n, 1f) : null, residual ? Uniform(rng, m * n, 1f) : null,
                xq, xs, wq, ws);
        }

        /// <summary>Rows [start, start + rows) alone, with their slice of the residual.</summary>
        public Operands Rows(int start, int rows) => this with
        {
            M = rows,
            X = X[(start * K)..((start + rows) * K)],
            Xq = Xq[(start * KPadded)..((start + rows) * KPadded)],
            XScales = XScales[start..(start + rows)],
            Residual = Residual?[(start * N)..((start + rows) * N)],
        };

        public float[] Fast()
        {
            var y = Filled(M * N, float.NaN);
            Int8Gemm.Multiply(Xq, XScales, M, KPadded, Pack(Wq, N, KPadded), WScales, N, Bias, Residual, y);
            return y;
        }

        public float[] Reference()
        {
            var y = Filled(M * N, float.NaN);
            Ref.Int8Gemm.Multiply(Xq, XScales, M, KPadded, Wq, WScales, N, Bias, Residual, y);
            return y;
        }
    }

    /// <summary>Row-major quantized weights in the panels <see cref="Int8Gemm.Multiply"/> reads.</summary>
    static sbyte[] Pack(sbyte[] w, int n, int kPadded)
    {
        var packed = new sbyte[Int8Gemm.PackedLength(n, kPadded)];
        Int8Gemm.PackWeights(w, n, kPadded, packed);
        return packed;
    }

    static T[] Filled<T>(int length, T value)
    {
        var a = new T[length];
        Array.Fill(a, value);
        return a;
    }

    /// <summary>Asserts identical bits element by element; reports the first difference and how many there are.</summary>
    static void AssertBitEqual(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int first = -1, count = 0;
        double maxDiff = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i])) continue;
            if (first < 0) first = i;
            count++;
            maxDiff = Math.Max(maxDiff, Math.Abs((double)expected[i] - actual[i]));
        }
        if (first >= 0)
            throw new XunitException($"{what} [{ActiveWidth}, Int8Gemm {Int8Gemm.VectorBits}]: {count} elements differ; " +
                $"first at index {first}: expected {expected[first]:R}, actual {actual[first]:R}; max difference {maxDiff:G6}.");
    }

    static void AssertEqual<T>(T[] expected, T[] actual, string what) where T : IEquatable<T>
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (!expected[i].Equals(actual[i]))
                throw new XunitException($"{what} [{ActiveWidth}]: index {i}: expected {expected[i]}, actual {actual[i]}.");
        }
    }
}
