using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public unsafe class AttentionKernelTests
{
    // Outputs are convex combinations of O(1) values: float rounding of scores, exp and the sums leaves ≈ 1e-6.
    const double OutputAbsTol = 2e-5, OutputRelTol = 1e-4;
    // Gradients sum up to a few hundred O(1) products in a different order from the double reference.
    const double GradientAbsTol = 1e-4, GradientRelTol = 1e-3;

    /// <summary>One attention problem: sizes, masks, dropout, and whether q/k/v sit inside wider rows (strided views).</summary>
    public sealed record Case(string Name, int B, int NH, int NKV, int Tq, int Tk, int HS, bool Causal = false,
        bool Padding = false, int[]? Additive = null, float Dropout = 0, bool Strided = false, int Window = 0,
        int[]? Global = null, int[]? Live = null)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<Case> Cases() =>
    [
        new("causal", 2, 2, 2, 70, 70, 16, Causal: true),
        new("non-causal", 1, 3, 3, 67, 67, 7),
        new("key padding", 2, 2, 2, 33, 33, 16, Padding: true),
        new("padding + causal", 2, 2, 2, 65, 65, 7, Causal: true, Padding: true),
        new("additive full", 2, 2, 2, 20, 20, 7, Additive: [2, 2, 20, 20]),
        new("additive broadcast (Tq, Tk)", 2, 3, 3, 19, 21, 16, Additive: [19, 21]),
        new("additive broadcast (B, 1, 1, Tk)", 2, 2, 2, 9, 130, 7, Additive: [2, 1, 1, 130]),
        new("GQA 4/2", 2, 4, 2, 37, 37, 16, Causal: true),
        new("MQA 3/1", 1, 3, 1, 70, 70, 7),
        new("dropout", 2, 2, 2, 66, 66, 16, Causal: true, Dropout: 0.3f),
        new("dropout + GQA + padding", 1, 4, 2, 40, 40, 7, Padding: true, Dropout: 0.2f),
        new("T = 1", 2, 2, 2, 1, 1, 16, Causal: true),
        // Short sequences: key tiles narrower than a vector, or a vector and a few keys, computed in padded rows.
        new("short causal + padding + dropout", 2, 2, 2, 13, 13, 16, Causal: true, Padding: true, Dropout: 0.2f),
        new("short cross + padding", 2, 4, 4, 11, 17, 32, Padding: true),
        new("short GQA + additive", 1, 4, 2, 17, 17, 8, Additive: [17, 17]),
        // One query row (decoding through a cache) takes AttentionDecode, except under dropout or a window.
        new("decode GQA, strided", 2, 4, 2, 1, 130, 64, Causal: true, Strided: true),
        new("decode + padding + additive", 2, 2, 2, 1, 77, 16, Causal: true, Padding: true, Additive: [2, 1, 1, 77]),
        new("decode cross, HS = 7", 1, 3, 3, 1, 70, 7),
        new("decode, HS = 24, Tk = 7", 2, 3, 3, 1, 7, 24, Causal: true),
        new("decode GQA, HS = 80", 1, 4, 2, 1, 39, 80, Causal: true),
        new("decode + dropout", 1, 2, 2, 1, 33, 16, Causal: true, Dropout: 0.2f),
        new("decode window + global", 1, 2, 2, 1, 260, 16, Causal: true, Window: 65, Global: [2]),
        new("cross Tq < Tk", 1, 2, 2, 3, 130, 16),
        new("cache-style causal", 1, 2, 2, 5, 70, 16, Causal: true),
        new("causal Tq > Tk (masked rows)", 1, 2, 2, 70, 5, 7, Causal: true),
        new("HS = 1", 1, 2, 2, 30, 30, 1, Causal: true),
        new("HS = 64", 1, 2, 2, 130, 130, 64, Causal: true),
        new("strided views", 2, 4, 2, 67, 67, 16, Causal: true, Strided: true),
        new("strided views + dropout + additive", 2, 2, 2, 40, 40, 7, Dropout: 0.1f, Additive: [1, 2, 40, 40], Strided: true),
        new("window causal", 1, 2, 2, 200, 200, 16, Causal: true, Window: 37),
        new("window bidirectional", 2, 2, 2, 197, 197, 7, Window: 30),
        new("window + global causal", 1, 4, 2, 203, 203, 16, Causal: true, Window: 20, Global: [0, 1, 130]),
        new("window + global bidirectional", 1, 2, 2, 170, 170, 16, Window: 9, Global: [0, 100, 169]),
        new("window + padding + dropout", 2, 2, 2, 150, 150, 7, Causal: true, Padding: true, Dropout: 0.2f, Window: 64),
        new("window 1", 1, 2, 2, 70, 70, 7, Causal: true, Window: 1),
        new("window wider than T", 1, 2, 2, 50, 50, 7, Window: 500, Global: [3]),
        new("window cache-style", 1, 2, 2, 5, 260, 16, Causal: true, Window: 65, Global: [2]),
        // Query lengths (packed sequences unpacked): rows past each batch row's count are 0, pass no gradient, and
        // their dO (non-zero here) is not read.
        new("live rows, short causal + padding + dropout", 3, 2, 2, 13, 13, 16, Causal: true, Padding: true,
            Dropout: 0.2f, Live: [13, 5, 0]),
        new("live rows, cross", 2, 4, 4, 11, 17, 32, Padding: true, Live: [3, 11]),
        new("live rows, long causal", 2, 2, 2, 150, 150, 16, Causal: true, Live: [37, 101]),
        new("live rows, cache-style causal + GQA", 2, 4, 2, 70, 100, 7, Causal: true, Live: [33, 66]),
        new("live rows, window", 1, 2, 2, 200, 200, 16, Causal: true, Window: 37, Live: [150]),
    ];

    /// <summary>The operands of a case laid out as the kernels see them, and their dense copies for the reference.</summary>
    sealed class Operands
    {
        public readonly float[] Q, K, V, DO, Mask;
        public readonly bool[] Pad, Glob;
        public readonly int[] Live;
        public readonly float[] QStore, KStore, VStore;
        public readonly Case C;

        public Operands(Case c, int seed)
        {
            C = c;
            var rng = new Random(seed);
            Q = Uniform(rng, c.B * c.NH * c.Tq * c.HS, 1.5f);
            K = Uniform(rng, c.B * c.NKV * c.Tk * c.HS, 1.5f);
            V = Uniform(rng, c.B * c.NKV * c.Tk * c.HS, 1f);
            DO = Uniform(rng, c.B * c.NH * c.Tq * c.HS, 1f);
            Mask = c.Additive is { } shape ? Uniform(rng, shape.Aggregate(1, (x, y) => x * y), 2f) : [];
            // Mask some additive entries with −∞ too, and pad every third key of the second batch, plus one whole batch row.
            for (int i = 0; i < Mask.Length; i += 5) Mask[i] = float.NegativeInfinity;
            Live = c.Live ?? [];
            Glob = new bool[c.Global is null ? 0 : c.Tk];
            foreach (int g in c.Global ?? []) Glob[g] = true;
            Pad = new bool[c.Padding ? c.B * c.Tk : 0];
            for (int j = 0; j < Pad.Length; j++) Pad[j] = j >= c.Tk ? j % 3 == 0 : j % 4 == 1;
            QStore = Layout(Q, c.NH, c.Tq, c.HS);
            KStore = Layout(K, c.NKV, c.Tk, c.HS);
            VStore = Layout(V, c.NKV, c.Tk, c.HS);
        }

        /// <summary>Strided cases store (B, T, H, HS) with 3 spare floats per row, and view it as (B, H, T, HS).</summary>
        float[] Layout(float[] dense, int heads, int time, int hs)
        {
            if (!C.Strided) return dense;
            var store = new float[C.B * time * (heads * hs + 3)];
            for (int b = 0; b < C.B; b++)
                for (int h = 0; h < heads; h++)
                    for (int t = 0; t < time; t++)
                        for (int c = 0; c < hs; c++)
                            store[(b * time + t) * (heads * hs + 3) + h * hs + c] = dense[((b * heads + h) * time + t) * hs + c];
            return store;
        }

        public HeadTensor View(float* p, int heads, int time) => C.Strided
            ? new HeadTensor(p, (long)time * (heads * C.HS + 3), C.HS, heads * C.HS + 3)
            : HeadTensor.Dense(p, heads, time, C.HS);

        public AttentionProblem Problem(bool* pad, float* mask, bool* glob, int* live)
        {
            var p = new AttentionProblem
            {
                QueryLengths = C.Live is null ? null : live,
                Batch = C.B, Heads = C.NH, KvHeads = C.NKV, QueryLength = C.Tq, KeyLength = C.Tk, HeadSize = C.HS,
                Scale = 1f / MathF.Sqrt(C.HS), Causal = C.Causal, KeyPadding = C.Padding ? pad : null,
                Window = C.Window, Global = C.Global is null ? null : glob,
                Dropout = C.Dropout, DropoutSeed = 12345,
            };
            if (C.Additive is not { } shape) return p;
            var strides = new long[4];
            long stride = 1;
            for (int d = 3; d >= 0; d--)
            {
                int md = d - (4 - shape.Length);
                if (md < 0) continue;
                strides[d] = shape[md] == 1 ? 0 : stride;
                stride *= shape[md];
            }
            return p with
            {
                Additive = mask,
                AdditiveStrideB = strides[0],
                AdditiveStrideH = strides[1],
                AdditiveStrideQ = strides[2],
                AdditiveStrideK = strides[3],
            };
        }
    }

    /// <summary>Outputs and the three input gradients (accumulated onto fixed non-zero starting values).</summary>
    sealed record Results(float[] O, float[] Dq, float[] Dk, float[] Dv, float[]? Weights);

    static float[] Start(int n, int seed) => Uniform(new Random(seed), n, 0.5f);

    static Results RunReference(Operands x)
    {
        var c = x.C;
        var o = new float[x.DO.Length];
        var w = new float[c.B * c.NH * c.Tq * c.Tk];
        float[] dq = Start(x.Q.Length, 1), dk = Start(x.K.Length, 2), dv = Start(x.V.Length, 3);
        fixed (bool* pad = x.Pad, glob = x.Glob)
        fixed (int* live = x.Live)
        fixed (float* mask = x.Mask)
        {
            var p = x.Problem(pad, mask, glob, live);
            Ref.Attention.Forward(o, w, x.Q, x.K, x.V, in p);
            Ref.Attention.Backward(dq, dk, dv, x.DO, x.Q, x.K, x.V, in p);
        }
        return new Results(o, dq, dk, dv, w);
    }

    static Results RunKernel(Operands x, bool flash)
    {
        var c = x.C;
        var o = new float[x.DO.Length];
        var saved = new float[flash ? c.B * c.NH * c.Tq : c.B * c.NH * c.Tq * c.Tk];
        float[] dq = Start(x.Q.Length, 1), dk = Start(x.K.Length, 2), dv = Start(x.V.Length, 3);
        fixed (bool* pad = x.Pad, glob = x.Glob)
        fixed (int* live = x.Live)
        fixed (float* mask = x.Mask, q = x.QStore, k = x.KStore, v = x.VStore, po = o, ps = saved, pdo = x.DO, pdq = dq, pdk = dk,
            pdv = dv)
        {
            var p = x.Problem(pad, mask, glob, live);
            HeadTensor hq = x.View(q, c.NH, c.Tq), hk = x.View(k, c.NKV, c.Tk), hv = x.View(v, c.NKV, c.Tk);
            HeadTensor ho = HeadTensor.Dense(po, c.NH, c.Tq, c.HS), hdo = HeadTensor.Dense(pdo, c.NH, c.Tq, c.HS);
            HeadTensor hdq = HeadTensor.Dense(pdq, c.NH, c.Tq, c.HS), hdk = HeadTensor.Dense(pdk, c.NKV, c.Tk, c.HS);
            HeadTensor hdv = HeadTensor.Dense(pdv, c.NKV, c.Tk, c.HS);
            if (flash)
            {
                AttentionFlash.Forward(in p, hq, hk, hv, ho, ps);
                AttentionFlash.Backward(in p, hq, hk, hv, ho, ps, hdo, hdq, hdk, hdv);
            }
            else
            {
                AttentionPlain.Forward(in p, hq, hk, hv, ho, ps);
                AttentionPlain.Backward(in p, hq, hk, hv, ps, hdo, hdq, hdk, hdv);
            }
        }
        return new Results(o, dq, dk, dv, flash ? null : saved);
    }

    static void AssertClose(Results expected, Results actual, string what)
    {
        Close(expected.O, actual.O, OutputAbsTol, OutputRelTol, $"{what}: O");
        if (expected.Weights is { } w && actual.Weights is { } aw) Close(w, aw, OutputAbsTol, OutputRelTol, $"{what}: weights");
        Close(expected.Dq, actual.Dq, GradientAbsTol, GradientRelTol, $"{what}: dQ");
        Close(expected.Dk, actual.Dk, GradientAbsTol, GradientRelTol, $"{what}: dK");
        Close(expected.Dv, actual.Dv, GradientAbsTol, GradientRelTol, $"{what}: dV");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PlainAndFlashMatchReference(Case c)
    {
        var x = new Operands(c, c.Name.Length * 31 + c.Tq);
        var expected = RunReference(x);
        var plain = RunKernel(x, flash: false);
        var flash = RunKernel(x, flash: true);
        AssertClose(expected, plain, $"plain {c}");
        AssertClose(expected, flash, $"flash {c}");
        AssertClose(plain, flash, $"flash vs plain {c}");
    }

    [Fact]
    public void FullyMaskedRowsGiveZeroOutputAndGradient()
    {
        // Tq = 1 is the decoding kernel's (AttentionDecode), Tq = 9 the tiled one's.
        Case[] cases =
            [new("all padded", 2, 2, 2, 9, 9, 7, Padding: true), new("all padded, decoding", 2, 2, 2, 1, 9, 7, Padding: true)];
        foreach (var (c, flash) in cases.SelectMany(c => new[] { (c, false), (c, true) }))
        {
            var x = new Operands(c, 5);
            Array.Fill(x.Pad, true, 0, c.Tk); // batch 0 has no usable key at all
            var r = RunKernel(x, flash);
            for (int i = 0; i < c.NH * c.Tq * c.HS; i++) Assert.Equal(0f, r.O[i]);
            var start = Start(x.Q.Length, 1);
            for (int i = 0; i < c.NH * c.Tq * c.HS; i++) Assert.Equal(start[i], r.Dq[i]);
            Assert.All(r.O, v => Assert.True(float.IsFinite(v)));
        }
    }

    [Fact]
    public void WeightsAreNonNegativeAndRowsSumToOne()
    {
        var c = new Case("weights", 2, 3, 3, 70, 70, 16, Causal: true, Padding: true, Additive: [70, 70]);
        var x = new Operands(c, 9);
        var w = RunKernel(x, flash: false).Weights!;
        for (int row = 0; row < c.B * c.NH * c.Tq; row++)
        {
            double sum = 0;
            for (int j = 0; j < c.Tk; j++)
            {
                float v = w[row * c.Tk + j];
                Assert.True(v >= 0, $"weight ({row}, {j}) = {v} is negative");
                sum += v;
            }
            Assert.True(sum == 0 || Math.Abs(sum - 1) < 1e-5, $"row {row} sums to {sum:R}");
        }
    }

    [Fact]
    public void ResultsDoNotDependOnThreadCount()
    {
        var c = new Case("threads", 2, 4, 2, 130, 130, 16, Causal: true, Dropout: 0.1f, Strided: true);
        var x = new Operands(c, 3);
        int saved = AttentionSharp.Kernels.Parallel.ThreadCount;
        try
        {
            foreach (bool flash in new[] { false, true })
            {
                AttentionSharp.Kernels.Parallel.ThreadCount = 1;
                var one = RunKernel(x, flash);
                AttentionSharp.Kernels.Parallel.ThreadCount = 3;
                var three = RunKernel(x, flash);
                Assert.Equal(one.O, three.O);
                Assert.Equal(one.Dq, three.Dq);
                Assert.Equal(one.Dk, three.Dk);
                Assert.Equal(one.Dv, three.Dv);
            }
        }
        finally { AttentionSharp.Kernels.Parallel.ThreadCount = saved; }
    }

    [Fact]
    public void DropoutMaskIsTheDropoutKernelsStream()
    {
        // P̃ = P ⊙ mask/(1 − p) with the mask Kernels.Dropout draws over the whole (B, NH, Tq, Tk) tensor at offset 0: so
        // the attention op gives the same result as softmax followed by the dropout op with the same seed.
        var c = new Case("stream", 1, 2, 2, 20, 20, 16, Dropout: 0.25f);
        var x = new Operands(c, 4);
        var r = RunKernel(x, flash: false);
        var dropped = new float[r.Weights!.Length];
        Dropout.Forward(dropped, new byte[dropped.Length], r.Weights, 0.25f, 12345, 0);
        var o = new float[x.DO.Length];
        for (int bh = 0; bh < c.NH; bh++)
            for (int i = 0; i < c.Tq; i++)
                for (int j = 0; j < c.Tk; j++)
                    for (int d = 0; d < c.HS; d++)
                        o[(bh * c.Tq + i) * c.HS + d] += dropped[(bh * c.Tq + i) * c.Tk + j] * x.V[(bh * c.Tk + j) * c.HS + d];
        Close(o, r.O, OutputAbsTol, OutputRelTol, "dropout stream");
    }

    [Fact]
    public void TileTransposeIsACopyWithZeroPadding()
    {
        // AttentionTiles.Transpose against element-by-element copying: every row count (whole 8-row blocks, a last block
        // short by 1–7 rows, transposed whole where the padding has room), columns that are and are not a multiple of 8,
        // padding widths from none to past a block; nothing is written past the padding.
        const float Sentinel = -7.5f;
        var rng = new Random(5);
        foreach (int cols in (int[])[1, 7, 8, 16, 32, 40])
            for (int rows = 1; rows <= 20; rows++)
                foreach (int width in (int[])[0, rows, (rows + 7) / 8 * 8, (rows + 15) / 16 * 16, 32])
                {
                    if (width != 0 && width < rows) continue;
                    int lds = cols + 3, ldd = Math.Max(width, rows) + 5;
                    var src = Uniform(rng, rows * lds, 1f);
                    var dst = new float[cols * ldd];
                    Array.Fill(dst, Sentinel);
                    fixed (float* ps = src, pd = dst) AttentionTiles.Transpose(rows, cols, ps, lds, ldd, pd, width);
                    for (int c = 0; c < cols; c++)
                        for (int r = 0; r < ldd; r++)
                        {
                            float expected = r < rows ? src[r * lds + c] : r < width ? 0f : Sentinel;
                            Assert.True(dst[c * ldd + r] == expected,
                                $"rows {rows}, cols {cols}, width {width}: dst({c}, {r}) = {dst[c * ldd + r]}, " +
                                $"expected {expected}");
                        }
                }
    }

    [Theory]
    [InlineData(7, 7, false, 0f)]
    [InlineData(13, 13, true, 0.2f)]
    [InlineData(40, 40, true, 0f)]
    [InlineData(70, 70, true, 0.1f)]
    [InlineData(70, 100, true, 0f)]
    [InlineData(33, 17, false, 0.1f)]
    public void LiveRowsAreComputedBitForBitAsWithout(int tq, int tk, bool causal, float dropout)
    {
        // The promise packed sequences rely on: with query lengths, the live rows' outputs and all gradients are the same
        // bits as the whole problem's where the dead rows' dO is 0 (as packing's backward leaves it).
        int[] live = [tq, Math.Max(1, tq / 2), 1];
        var c = new Case("live bits", live.Length, 2, 2, tq, tk, 16, Causal: causal, Padding: true, Dropout: dropout);
        var x = new Operands(c, tq * 7 + tk);
        for (int b = 0; b < c.B; b++)
            for (int h = 0; h < c.NH; h++)
                Array.Clear(x.DO, ((b * c.NH + h) * c.Tq + live[b]) * c.HS, (c.Tq - live[b]) * c.HS);
        var whole = RunKernel(x, flash: true);
        var withLive = RunKernel(new Operands(c with { Live = live }, tq * 7 + tk), flash: true);
        bool Live(int i) => i / c.HS % c.Tq < live[i / (c.HS * c.Tq * c.NH)];
        void Same(float[] expected, float[] actual, bool liveOnly, string what)
        {
            for (int i = 0; i < expected.Length; i++)
                if (!liveOnly || Live(i))
                    Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                        $"{what}[{i}]: {expected[i]:R} without query lengths, {actual[i]:R} with");
        }
        Same(whole.O, withLive.O, liveOnly: true, "O");
        Same(whole.Dq, withLive.Dq, liveOnly: true, "dQ");
        Same(whole.Dk, withLive.Dk, liveOnly: false, "dK");
        Same(whole.Dv, withLive.Dv, liveOnly: false, "dV");
    }
}
