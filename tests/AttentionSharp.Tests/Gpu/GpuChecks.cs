using AttentionSharp.Gpu;
using AttentionSharp.Kernels;
using AttentionSharp.Tests.Kernels;

namespace AttentionSharp.Tests.Gpu;

/// <summary>
/// Each kernel family on a <see cref="GpuDevice"/> against the CPU engine: the CPU side goes through the public core
/// API (Tensor ops with autograd for gradients, the public span kernels where a saved value such as mean, rstd or the
/// logsumexp is compared). The same checks run on the CPU simulator and, where there is one, on a CUDA GPU.
/// </summary>
internal static class GpuChecks
{
    // Tolerances: |expected − actual| ≤ atol + rtol·|expected|.
    /// <summary>Sums in another order (register tiles, FMAs, group reductions): a few float roundings of values near 1.</summary>
    public const double SumAtol = 1e-5, SumRtol = 1e-5;

    /// <summary>
    /// The device's exp (.NET's MathF.Exp on the simulator, ex2.approx on CUDA) against the CPU engine's Cephes exp:
    /// each within a few ulp, so the results differ by ~1e-6 relative.
    /// </summary>
    public const double ExpAtol = 2e-6, ExpRtol = 2e-5;

    /// <summary>
    /// Attention: the GPU tiles (16–32 keys) rescale the online softmax at other points than the CPU's 64-key tiles, and
    /// the backward pass sums dQ over key tiles through atomics; both differ from the CPU by float rounding of O(1)
    /// values over up to 65 terms.
    /// </summary>
    public const double AttentionAtol = 3e-5, AttentionRtol = 1e-4;

    /// <summary>
    /// AdamW: the same float operations in the same order; only sqrt/division rounding and FMA contraction differ.
    /// </summary>
    public const double AdamAtol = 1e-7, AdamRtol = 1e-6;

    static float[] Uniform(int seed, int n, float scale) => KernelTestKit.Uniform(new Random(seed), n, scale);

    static Tensor Randn(int seed, params int[] shape) => Tensor.Randn(new Generator((ulong)seed), shape);

    static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what,
        GpuDevice device) =>
        KernelTestKit.Close(expected, actual, atol, rtol, $"{what} on {device.Kind}/{device.Shapes}");

    /// <summary>C = α·op(A)·op(B) + β·C for <paramref name="batch"/> products, against the CPU engine's GEMM.</summary>
    public static void Gemm(GpuDevice device, Transpose ta, Transpose tb, int m, int n, int k, int batch = 1,
        float alpha = 1f, float beta = 0f)
    {
        int aRows = ta == Transpose.No ? m : k, aCols = ta == Transpose.No ? k : m;
        int bRows = tb == Transpose.No ? k : n, bCols = tb == Transpose.No ? n : k;
        int seed = m * 10007 + n * 101 + k + batch;
        var a = Uniform(seed, batch * aRows * aCols, 1f);
        var b = Uniform(seed + 1, batch * bRows * bCols, 1f);
        var c = Uniform(seed + 2, batch * m * n, 1f);
        var expected = new float[batch * m * n];
        var product = new float[m * n];
        for (int i = 0; i < batch; i++)
        {
            AttentionSharp.Kernels.Gemm.Multiply(ta, tb, m, n, k,
                a.AsSpan(i * aRows * aCols), aCols, b.AsSpan(i * bRows * bCols), bCols, product, n);
            for (int e = 0; e < m * n; e++)
                expected[i * m * n + e] = beta == 0f ? alpha * product[e] : alpha * product[e] + beta * c[i * m * n + e];
        }
        using var ga = device.Upload(a);
        using var gb = device.Upload(b);
        using var gc = device.Upload(beta == 0f ? Enumerable.Repeat(float.NaN, c.Length).ToArray() : c);
        device.Gemm.MultiplyBatched(ta, tb, batch, m, n, k, alpha, ga, aCols, (long)aRows * aCols, gb, bCols, (long)bRows * bCols,
            beta, gc, n, (long)m * n);
        Close(expected, gc.ToArray(), SumAtol, SumRtol, $"GEMM ({ta}, {tb}) {batch}×{m}×{n}×{k} α={alpha} β={beta}", device);
    }

    /// <summary>LayerNorm forward (y, mean, rstd) and backward (dx, dweight, dbias), with or without weight and bias.</summary>
    public static void LayerNorm(GpuDevice device, int rows, int cols, bool affine)
    {
        const float eps = 1e-5f;
        var x = Randn(rows * 31 + cols, rows, cols);
        x.RequiresGrad = true;
        Tensor? w = affine ? Tensor.Normal(new Generator(7), 1f, 0.3f, cols) : null;
        Tensor? b = affine ? Randn(8, cols) : null;
        if (w is not null) w.RequiresGrad = true;
        if (b is not null) b.RequiresGrad = true;
        var y = Tensor.LayerNorm(x, w, b, eps);
        var dy = Randn(9, rows, cols);
        y.Backward(dy);
        var mean = new float[rows];
        var rstd = new float[rows];
        AttentionSharp.Kernels.LayerNorm.Forward(new float[rows * cols], mean, rstd, x.Data,
            w is null ? default : w.Data, b is null ? default : b.Data, rows, cols, eps);

        using var gx = device.Upload(x);
        using var gw = w is null ? null : device.Upload(w);
        using var gb = b is null ? null : device.Upload(b);
        using var gy = device.Zeros(rows, cols);
        using var gmean = device.Zeros(rows);
        using var grstd = device.Zeros(rows);
        device.LayerNorm.Forward(gy, gmean, grstd, gx, gw, gb, rows, cols, eps);
        Close(y.ToArray(), gy.ToArray(), SumAtol, SumRtol, $"LayerNorm y ({rows}, {cols})", device);
        Close(mean, gmean.ToArray(), SumAtol, SumRtol, "LayerNorm mean", device);
        Close(rstd, grstd.ToArray(), SumAtol, SumRtol, "LayerNorm rstd", device);

        using var gdy = device.Upload(dy);
        using var gdx = device.Zeros(rows, cols);
        using var gdw = affine ? device.Zeros(cols) : null;
        using var gdb = affine ? device.Zeros(cols) : null;
        device.LayerNorm.Backward(gdx, gdw, gdb, gdy, gx, gw, gmean, grstd, rows, cols);
        Close(x.Grad!.ToArray(), gdx.ToArray(), SumAtol, SumRtol, "LayerNorm dx", device);
        if (!affine) return;
        Close(w!.Grad!.ToArray(), gdw!.ToArray(), SumAtol, SumRtol, "LayerNorm dweight", device);
        Close(b!.Grad!.ToArray(), gdb!.ToArray(), SumAtol, SumRtol, "LayerNorm dbias", device);
    }

    /// <summary>GELU forward and backward (dx accumulates onto what it held) over [−12, 12] and some extremes.</summary>
    public static void Gelu(GpuDevice device, GeluApproximation approximation)
    {
        var values = Uniform(11, 997, 12f).Concat([0f, -0f, 30f, -30f, 1e-3f, -1e-3f, 1f, -1f, 2f, -2f]).ToArray();
        var x = Tensor.FromArray(values, values.Length);
        x.RequiresGrad = true;
        var y = x.Gelu(approximation);
        var dy = Tensor.FromArray(Uniform(12, values.Length, 1f), values.Length);
        y.Backward(dy);
        var dx0 = Uniform(13, values.Length, 1f);
        var expectedDx = x.Grad!.ToArray();
        for (int i = 0; i < dx0.Length; i++) expectedDx[i] += dx0[i];

        using var gx = device.Upload(x);
        using var gy = device.Zeros(values.Length);
        device.Gelu.Forward(gy, gx, approximation);
        Close(y.ToArray(), gy.ToArray(), ExpAtol, ExpRtol, $"GELU ({approximation})", device);
        using var gdy = device.Upload(dy);
        using var gdx = device.Upload(dx0);
        device.Gelu.Backward(gdx, gdy, gx, approximation);
        Close(expectedDx, gdx.ToArray(), ExpAtol, ExpRtol, $"GELU′ ({approximation})", device);
    }

    /// <summary>Row softmax forward and backward, with a partly and a wholly −∞ row.</summary>
    public static void Softmax(GpuDevice device, int rows, int cols)
    {
        var values = Uniform(21, rows * cols, 6f);
        for (int j = 0; j < cols; j += 3) values[j] = float.NegativeInfinity;               // row 0: partly masked
        for (int j = 0; j < cols; j++) values[(rows - 1) * cols + j] = float.NegativeInfinity; // last row: all masked
        var x = Tensor.FromArray(values, rows, cols);
        x.RequiresGrad = true;
        var y = x.Softmax();
        var dy = Randn(22, rows, cols);
        y.Backward(dy);

        using var gx = device.Upload(x);
        using var gy = device.Zeros(rows, cols);
        device.Softmax.Forward(gy, gx, rows, cols);
        Close(y.ToArray(), gy.ToArray(), ExpAtol, ExpRtol, $"softmax ({rows}, {cols})", device);
        using var gdy = device.Upload(dy);
        using var gdx = device.Zeros(rows, cols);
        device.Softmax.Backward(gdx, gdy, gy, rows, cols);
        Close(x.Grad!.ToArray(), gdx.ToArray(), ExpAtol, ExpRtol, "softmax backward", device);
    }

    /// <summary>Cross-entropy per row (loss, lse), the mean over counted rows, and the gradient of the mean.</summary>
    public static void CrossEntropy(GpuDevice device, int rows, int vocab, float labelSmoothing)
    {
        const int ignore = -100;
        var rng = new Random(rows + vocab);
        var targets = Enumerable.Range(0, rows).Select(r => r % 5 == 2 ? ignore : rng.Next(vocab)).ToArray();
        var logits = Tensor.FromArray(Uniform(31, rows * vocab, 8f), rows, vocab);
        logits.RequiresGrad = true;
        var loss = Tensor.CrossEntropy(logits, targets, ignore, labelSmoothing);
        loss.Backward();
        var rowLoss = new float[rows];
        var lse = new float[rows];
        AttentionSharp.Kernels.CrossEntropy.Forward(rowLoss, lse, logits.Data, targets, rows, vocab, ignore, labelSmoothing);

        using var gx = device.Upload(logits);
        using var gt = device.Upload(targets);
        using var gRowLoss = device.Zeros(rows);
        using var gLse = device.Zeros(rows);
        using var gLoss = device.Zeros(1);
        device.CrossEntropy.Forward(gRowLoss, gLse, gx, gt, rows, vocab, ignore, labelSmoothing);
        device.CrossEntropy.Mean(gLoss, gRowLoss, gt, ignore);
        Close(rowLoss, gRowLoss.ToArray(), ExpAtol, ExpRtol, $"cross-entropy row loss (ε = {labelSmoothing})", device);
        Close(lse, gLse.ToArray(), ExpAtol, ExpRtol, "cross-entropy logsumexp", device);
        Close([loss.Item()], gLoss.ToArray(), ExpAtol, ExpRtol, "cross-entropy mean", device);

        using var gdRow = device.Zeros(rows);
        using var gdx = device.Zeros(rows, vocab);
        device.CrossEntropy.MeanGradient(gdRow, gt, 1f, ignore);
        device.CrossEntropy.Backward(gdx, gdRow, gx, gLse, gt, rows, vocab, ignore, labelSmoothing);
        Close(logits.Grad!.ToArray(), gdx.ToArray(), ExpAtol, ExpRtol, "cross-entropy dlogits", device);
    }

    /// <summary>Embedding lookup and its scatter-add backward, with repeated ids.</summary>
    public static void Embedding(GpuDevice device, int vocab, int dim, int count)
    {
        var rng = new Random(41);
        var ids = Enumerable.Range(0, count).Select(i => i % 4 == 0 ? 3 : rng.Next(vocab)).ToArray();
        var table = Randn(42, vocab, dim);
        table.RequiresGrad = true;
        var y = Tensor.Embedding(table, ids);
        var dy = Randn(43, count, dim);
        y.Backward(dy);

        using var gTable = device.Upload(table);
        using var gIds = device.Upload(ids);
        using var gy = device.Zeros(count, dim);
        device.Embedding.Forward(gy, gIds, gTable, vocab, dim);
        Close(y.ToArray(), gy.ToArray(), 0, 0, "embedding", device);
        using var gdy = device.Upload(dy);
        using var gdTable = device.Zeros(vocab, dim);
        device.Embedding.Backward(gdTable, gdy, gIds, vocab, dim);
        Close(table.Grad!.ToArray(), gdTable.ToArray(), SumAtol, SumRtol, "embedding backward", device);
    }

    /// <summary>Three AdamW steps with weight decay and a clipping factor, against the CPU kernel.</summary>
    public static void AdamW(GpuDevice device, int n)
    {
        var p = Uniform(51, n, 1f);
        var m = new float[n];
        var v = new float[n];
        using var gp = device.Upload(p);
        using var gm = device.Zeros(n);
        using var gv = device.Zeros(n);
        for (int step = 1; step <= 3; step++)
        {
            var g = Uniform(51 + step, n, 2f);
            AttentionSharp.Kernels.AdamW.Step(p, g, m, v, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, gradScale: 0.7f);
            using var gg = device.Upload(g);
            device.AdamW.Step(gp, gg, gm, gv, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, gradScale: 0.7f);
            Close(p, gp.ToArray(), AdamAtol, AdamRtol, $"AdamW parameters, step {step}", device);
            Close(m, gm.ToArray(), AdamAtol, AdamRtol, $"AdamW m, step {step}", device);
            Close(v, gv.ToArray(), AdamAtol, AdamRtol, $"AdamW v, step {step}", device);
        }
    }

    /// <summary>Σx² over several buffers into one total, scaling in place, and column sums (a bias gradient).</summary>
    public static void Reductions(GpuDevice device)
    {
        int[] lengths = [1, 1000, 4099];
        double expected = 0;
        using var total = device.Zeros(1);
        foreach (int n in lengths)
        {
            var x = Uniform(60 + n, n, 3f);
            expected += Norms.SumOfSquares(x);
            using var gx = device.Upload(x);
            device.Reduce.SumOfSquares(total, gx);
        }
        Close([(float)expected], total.ToArray(), SumAtol, SumRtol, "sum of squares", device);

        var values = Uniform(70, 777, 3f);
        using var gs = device.Upload(values);
        device.Reduce.Scale(gs, 0.37f);
        Close(values.Select(e => e * 0.37f).ToArray(), gs.ToArray(), 0, 0, "scale", device);

        const int rows = 131, cols = 19;
        var matrix = Randn(71, rows, cols);
        var start = Uniform(72, cols, 1f);
        var sums = matrix.Sum(0).ToArray();
        for (int j = 0; j < cols; j++) sums[j] += start[j];
        using var gm = device.Upload(matrix);
        using var gsum = device.Upload(start);
        device.Reduce.ColumnSum(gsum, gm, rows, cols);
        Close(sums, gsum.ToArray(), SumAtol, SumRtol, "column sum", device);
    }

    /// <summary>
    /// Attention forward (O, logsumexp) and backward (dQ, dK, dV) on dense (B, NH, T, HS) operands, causal and/or with
    /// key padding, against the CPU engine's flash path with autograd; the logsumexp against its flash kernel. With
    /// <paramref name="keyTime"/> the keys outnumber the queries (the queries are the last Tq positions, as when
    /// decoding after a cache).
    /// </summary>
    public static unsafe void Attention(GpuDevice device, int batch, int heads, int time, int headSize, bool causal, bool padding,
        int? keyTime = null, float dropout = 0f)
    {
        // Dropout on the weights: both sides take the seed the CPU's attention draws from this generator's state.
        const ulong dropoutSeed = 77;
        int tq = time, tk = keyTime ?? time;
        var q = Randn(100 + tq, batch, heads, tq, headSize);
        var k = Randn(200 + tk, batch, heads, tk, headSize);
        var v = Randn(300 + tk, batch, heads, tk, headSize);
        foreach (var t in new[] { q, k, v }) t.RequiresGrad = true;
        // Batch b pads every fifth key from b + 1 on, and (b ≥ 1) key 0: under the causal mask query 0 of batch 1 sees
        // nothing when Tq = Tk, the fully masked row (O = 0, L = +∞).
        var pad = new bool[batch * tk];
        if (padding)
        {
            for (int b = 0; b < batch; b++)
                for (int j = 0; j < tk; j++) pad[b * tk + j] = (j > b && j % 5 == 3) || (b >= 1 && j == 0 && tk > 1);
        }
        var options = new AttentionOptions
        {
            Causal = causal, KeyPadding = padding ? pad : default, Implementation = AttentionImplementation.Flash,
            Dropout = dropout, DropoutRng = dropout > 0 ? new Generator(dropoutSeed) : null,
        };
        var o = Tensor.ScaledDotProductAttention(q, k, v, options);
        var dO = Randn(400 + tq, batch, heads, tq, headSize);
        o.Backward(dO);
        var lse = new float[batch * heads * tq];
        var oCpu = new float[batch * heads * tq * headSize];
        fixed (float* pq = q.Data, pk = k.Data, pv = v.Data, po = oCpu, pl = lse)
        fixed (bool* pp = pad)
        {
            var problem = new AttentionProblem
            {
                Batch = batch, Heads = heads, KvHeads = heads, QueryLength = tq, KeyLength = tk, HeadSize = headSize,
                Scale = 1f / MathF.Sqrt(headSize), Causal = causal, KeyPadding = padding ? pp : null,
            };
            AttentionFlash.Forward(problem, HeadTensor.Dense(pq, heads, tq, headSize), HeadTensor.Dense(pk, heads, tk, headSize),
                HeadTensor.Dense(pv, heads, tk, headSize), HeadTensor.Dense(po, heads, tq, headSize), pl);
        }

        using var gPad = padding ? device.Upload(pad) : null;
        var shape = new GpuAttentionProblem(batch, heads, tq, tk, headSize)
        {
            Causal = causal, KeyPadding = gPad, Dropout = dropout,
            DropoutSeed = dropout > 0 ? new Generator(dropoutSeed).NextUInt64() : 0,
        };
        using var gq = device.Upload(q);
        using var gk = device.Upload(k);
        using var gv = device.Upload(v);
        using var go = device.Zeros(batch, heads, tq, headSize);
        using var gl = device.Zeros(batch, heads, tq);
        GpuHeads Queries(GpuTensor t) => GpuHeads.Dense(t, heads, tq, headSize);
        GpuHeads Keys(GpuTensor t) => GpuHeads.Dense(t, heads, tk, headSize);
        device.FlashAttention.Forward(shape, Queries(gq), Keys(gk), Keys(gv), Queries(go), gl);
        string what = $"attention B={batch} NH={heads} Tq={tq} Tk={tk} HS={headSize}" +
                      $"{(causal ? " causal" : "")}{(padding ? " padded" : "")}{(dropout > 0 ? $" dropout {dropout}" : "")}";
        Close(o.ToArray(), go.ToArray(), AttentionAtol, AttentionRtol, $"{what}: O", device);
        Close(lse, gl.ToArray(), AttentionAtol, AttentionRtol, $"{what}: logsumexp", device);

        using var gdO = device.Upload(dO);
        using var gdq = device.Zeros(batch, heads, tq, headSize);
        using var gdk = device.Zeros(batch, heads, tk, headSize);
        using var gdv = device.Zeros(batch, heads, tk, headSize);
        device.FlashAttention.Backward(shape, Queries(gq), Keys(gk), Keys(gv), Queries(go), gl,
            Queries(gdO), Queries(gdq), Keys(gdk), Keys(gdv));
        Close(q.Grad!.ToArray(), gdq.ToArray(), AttentionAtol, AttentionRtol, $"{what}: dQ", device);
        Close(k.Grad!.ToArray(), gdk.ToArray(), AttentionAtol, AttentionRtol, $"{what}: dK", device);
        Close(v.Grad!.ToArray(), gdv.ToArray(), AttentionAtol, AttentionRtol, $"{what}: dV", device);
    }

    /// <summary>y = x·Wᵀ + b through the GEMM's bias epilogue, against the CPU GEMM plus the bias.</summary>
    public static void Linear(GpuDevice device, int rows, int inFeatures, int outFeatures, bool bias)
    {
        var x = Uniform(rows * 7 + inFeatures, rows * inFeatures, 1f);
        var w = Uniform(outFeatures * 3 + 1, outFeatures * inFeatures, 1f);
        var b = Uniform(outFeatures + 5, outFeatures, 1f);
        var expected = new float[rows * outFeatures];
        AttentionSharp.Kernels.Gemm.Multiply(Transpose.No, Transpose.Yes, rows, outFeatures, inFeatures, x, inFeatures, w,
            inFeatures, expected, outFeatures);
        if (bias)
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < outFeatures; j++) expected[r * outFeatures + j] += b[j];
        using var gx = device.Upload(x);
        using var gw = device.Upload(w);
        using var gb = device.Upload(b);
        using var gy = device.Upload(Enumerable.Repeat(float.NaN, rows * outFeatures).ToArray());
        device.Gemm.Linear(gy, gx, gw, bias ? gb : null, rows, inFeatures, outFeatures);
        Close(expected, gy.ToArray(), SumAtol, SumRtol, $"Linear {rows}×{inFeatures}→{outFeatures} bias={bias}", device);
    }

    /// <summary>y = a + table[r mod P] (P = rows: the residual sum; P = T: positions; P = 1: a bias), exactly.</summary>
    public static void AddRows(GpuDevice device, int rows, int cols, int period)
    {
        var a = Uniform(rows + cols, rows * cols, 1f);
        var table = Uniform(period + 3, period * cols, 1f);
        var expected = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++) expected[r * cols + j] = a[r * cols + j] + table[r % period * cols + j];
        using var ga = device.Upload(a);
        using var gt = device.Upload(table);
        using var gy = device.Zeros(rows * cols);
        if (period == rows && cols > 0) device.Add.Residual(gy, ga, gt);
        else device.Add.Rows(gy, ga, gt, rows, cols, period);
        Close(expected, gy.ToArray(), 0, 0, $"Add {rows}×{cols} period {period}", device);
        device.Add.Rows(ga, ga, gt, rows, cols, period);                         // in place
        Close(expected, ga.ToArray(), 0, 0, $"Add in place {rows}×{cols} period {period}", device);
    }

    /// <summary>
    /// <see cref="GpuGptCheck"/>: logits, loss, every gradient and three AdamW steps with clipping against the CPU
    /// <see cref="AttentionSharp.Models.Gpt"/>; fails naming each tensor out of tolerance, with its largest difference.
    /// </summary>
    public static void Gpt(GpuDevice device, AttentionSharp.Models.GptConfig config, int batch, int time, int steps = 3)
    {
        var results = GpuGptCheck.Compare(device, config, batch, time, steps);
        Assert.True(results.Count > 3, $"only {results.Count} comparisons");
        var failed = results.Where(r => !r.Passed).ToList();
        Assert.True(failed.Count == 0, string.Join(Environment.NewLine, failed));
    }
}
