using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;

namespace AttentionSharp.Tests.Kernels;

/// <summary>
/// Backward kernels that can write their input's gradient instead of adding to it (a gradient buffer's first writer
/// skips the zeros): writing into garbage gives exactly what adding to zeros gives, bit for bit.
/// </summary>
[Trait("Category", "Kernels")]
public unsafe class WrittenGradientTests
{
    [Fact]
    public void LayerNormWritesWhatItAddsToZeros()
    {
        foreach (var (rows, cols) in RowShapes().Where(s => s.Cols > 0))
        {
            var rng = new Random(rows * 31 + cols);
            var x = Uniform(rng, rows * cols, 2f); var dy = Uniform(rng, rows * cols, 1f); var w = Uniform(rng, cols, 1f);
            var mean = new float[rows]; var rstd = new float[rows]; var y = new float[rows * cols];
            LayerNorm.Forward(y, mean, rstd, x, w, default, rows, cols, 1e-5f);
            var added = new float[rows * cols];
            LayerNorm.Backward(added, default, default, dy, x, w, mean, rstd, rows, cols);
            var written = Garbage(rows * cols);
            LayerNorm.Backward(written, default, default, dy, x, w, mean, rstd, rows, cols, accumulateInput: false);
            SameBits(added, written, $"LayerNorm {rows}×{cols}");
        }
    }

    [Fact]
    public void CrossEntropyWritesWhatItAddsToZerosIgnoredRowsIncluded()
    {
        foreach (var (rows, vocab) in RowShapes().Where(s => s.Cols > 0))
            foreach (float smoothing in new[] { 0f, 0.1f })
            {
                var rng = new Random(rows * 17 + vocab);
                var logits = Uniform(rng, rows * vocab, 8f);
                var targets = Enumerable.Range(0, rows).Select(r => r % 3 == 1 ? -100 : rng.Next(vocab)).ToArray();
                var loss = new float[rows]; var lse = new float[rows];
                CrossEntropy.Forward(loss, lse, logits, targets, rows, vocab, -100, smoothing);
                var dRow = Uniform(rng, rows, 1f);
                var added = new float[rows * vocab];
                CrossEntropy.Backward(added, dRow, logits, lse, targets, rows, vocab, -100, smoothing);
                var written = Garbage(rows * vocab);
                CrossEntropy.Backward(written, dRow, logits, lse, targets, rows, vocab, -100, smoothing, accumulate: false);
                SameBits(added, written, $"CrossEntropy {rows}×{vocab}, ε = {smoothing}");
            }
    }

    [Theory]
    [InlineData(GeluApproximation.Tanh)]
    [InlineData(GeluApproximation.None)]
    public void GeluWritesWhatItAddsToZeros(GeluApproximation approximation)
    {
        foreach (int n in new[] { 1, 7, 8, 9, 17, 33, 100, 40_000 })
        {
            var rng = new Random(n);
            var x = Uniform(rng, n, 6f); var dy = Uniform(rng, n, 1f);
            var added = new float[n];
            Gelu.Backward(added, dy, x, approximation);
            var written = Garbage(n);
            Gelu.Backward(written, dy, x, approximation, accumulate: false);
            SameBits(added, written, $"GELU {approximation}, n = {n}");
        }
    }

    /// <summary>
    /// Flash attention's backward pass told to set its gradients clears every row of dQ, dK and dV in the thread that
    /// owns it, whatever the buffer held: with grouped K/V heads, a K/V-cache shape, odd head sizes and a sliding window
    /// (whose skipped tiles leave rows only the clear writes).
    /// </summary>
    [Theory]
    [InlineData(2, 4, 2, 70, 70, 8, true, 0)]
    [InlineData(1, 3, 3, 33, 33, 13, false, 0)]
    [InlineData(2, 4, 1, 3, 70, 8, true, 0)]
    [InlineData(1, 2, 2, 90, 90, 16, true, 5)]
    public void FlashAttentionSetsWhatItAddsToZeros(int batch, int heads, int kvHeads, int tq, int tk, int hs, bool causal,
        int window)
    {
        var rng = new Random(batch * 1000 + tq * 10 + hs);
        float[] q = Uniform(rng, batch * heads * tq * hs, 1f), k = Uniform(rng, batch * kvHeads * tk * hs, 1f);
        float[] v = Uniform(rng, batch * kvHeads * tk * hs, 1f), dO = Uniform(rng, batch * heads * tq * hs, 1f);
        var o = new float[q.Length];
        var lse = new float[batch * heads * tq];
        float[] dqAdded = new float[q.Length], dkAdded = new float[k.Length], dvAdded = new float[v.Length];
        float[] dqSet = Garbage(q.Length), dkSet = Garbage(k.Length), dvSet = Garbage(v.Length);
        var p = new AttentionProblem
        {
            Batch = batch, Heads = heads, KvHeads = kvHeads, QueryLength = tq, KeyLength = tk, HeadSize = hs,
            Scale = 1f / MathF.Sqrt(hs), Causal = causal, Window = window,
        };
        fixed (float* pq = q, pk = k, pv = v, pdo = dO, po = o, pl = lse)
        fixed (float* qa = dqAdded, ka = dkAdded, va = dvAdded, qs = dqSet, ks = dkSet, vs = dvSet)
        {
            HeadTensor Query(float* x) => HeadTensor.Dense(x, heads, tq, hs);
            HeadTensor Key(float* x) => HeadTensor.Dense(x, kvHeads, tk, hs);
            AttentionFlash.Forward(in p, Query(pq), Key(pk), Key(pv), Query(po), pl);
            AttentionFlash.Backward(in p, Query(pq), Key(pk), Key(pv), Query(po), pl, Query(pdo), Query(qa), Key(ka), Key(va));
            AttentionFlash.Backward(in p, Query(pq), Key(pk), Key(pv), Query(po), pl, Query(pdo), Query(qs), Key(ks), Key(vs),
                clear: true);
        }
        SameBits(dqAdded, dqSet, "dQ");
        SameBits(dkAdded, dkSet, "dK");
        SameBits(dvAdded, dvSet, "dV");
    }

    /// <summary>
    /// Through autograd: an input read by two ops gets the first op's gradient written and the second's added, whichever
    /// runs first, and equals the sum of the two computed separately.
    /// </summary>
    [Fact]
    public void AGradientWithTwoWritersIsTheirSum()
    {
        var rng = new Generator(3);
        var x = Tensor.Normal(rng, 0f, 1f, [6, 10]);
        x.RequiresGrad = true;
        var w1 = Tensor.Normal(rng, 0f, 1f, [4, 10]); var w2 = Tensor.Normal(rng, 0f, 1f, [4, 10]);
        var g = Tensor.Normal(rng, 0f, 1f, [4]); var b = Tensor.Normal(rng, 0f, 1f, [10]);
        float[] GradOf(Func<Tensor, Tensor> f)
        {
            x.Grad = null;
            f(x).Sum().Backward();
            return x.Grad!.ToArray();
        }
        Tensor First(Tensor t) => Tensor.LayerNormLinear(t, b, null, 1e-5f, w1, null);
        Tensor Second(Tensor t) => Tensor.GeluLinear(t, w2, null, GeluApproximation.Tanh);
        var one = GradOf(First); var two = GradOf(Second);
        var both = GradOf(t => First(t) + Second(t));
        for (int i = 0; i < both.Length; i++)
            Assert.True(Math.Abs(both[i] - (one[i] + two[i])) <= 1e-5f * (1 + Math.Abs(both[i])),
                $"element {i}: {both[i]} with both ops, {one[i] + two[i]} summed");
    }
}
