using AttentionSharp.Autograd;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Tensors;

public class TensorTests
{
    static Tensor Seq(params int[] shape) => Tensor.Arange(0, ShapeCount(shape)).Reshape(shape);
    static int ShapeCount(int[] shape) => shape.Aggregate(1, (a, b) => a * b);

    [Fact]
    public void CreationFillsAsPromised()
    {
        Assert.All(Tensor.Zeros(3, 4).ToArray(), v => Assert.Equal(0f, v));
        Assert.All(Tensor.Ones(2, 2).ToArray(), v => Assert.Equal(1f, v));
        Assert.All(Tensor.Full(2.5f, 5).ToArray(), v => Assert.Equal(2.5f, v));
        Assert.Equal([0f, 2f, 4f, 6f], Tensor.Arange(0, 7, 2).ToArray());
        Assert.Equal([1f, 0.5f, 0f], Tensor.Arange(1, -0.1f, -0.5f).ToArray());
        Assert.Equal(0, Tensor.Arange(0).Count);
        Assert.Equal(7f, Tensor.Scalar(7f).Item());
        Assert.Equal(0, Tensor.Scalar(7f).Rank);
    }

    [Fact]
    public void StorageIsAlignedTo64Bytes()
    {
        for (int n = 1; n < 300; n += 7)
            unsafe { Assert.Equal(0UL, (ulong)Tensor.Zeros(n).Pointer % 64); }
    }

    [Fact]
    public void SameSeedSameNumbers()
    {
        var a = Tensor.Randn(new Generator(5), 100).ToArray();
        var b = Tensor.Randn(new Generator(5), 100).ToArray();
        var c = Tensor.Randn(new Generator(6), 100).ToArray();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        double mean = a.Average(), var = a.Select(v => (v - mean) * (v - mean)).Average();
        Assert.InRange(mean, -0.3, 0.3);
        Assert.InRange(var, 0.6, 1.4);
    }

    [Fact]
    public void GeneratorStateResumesTheStream()
    {
        var g = new Generator(9);
        g.NextNormal(); // leaves a spare normal in the state
        var state = g.GetState();
        var expected = Enumerable.Range(0, 10).Select(_ => g.NextNormal()).ToArray();
        var h = new Generator(1);
        h.SetState(state);
        Assert.Equal(expected, Enumerable.Range(0, 10).Select(_ => h.NextNormal()).ToArray());
    }

    [Fact]
    public void ReshapeAndViewShareMemory()
    {
        var t = Seq(2, 3, 4);
        var r = t.Reshape(4, -1);
        Assert.Equal([4, 6], r.Shape.ToArray());
        r[0, 1] = 100f;
        Assert.Equal(100f, t[0, 0, 1]);
        Assert.Throws<ArgumentException>(() => t.Reshape(5, -1));
        Assert.Throws<ArgumentException>(() => t.Reshape(-1, -1));
    }

    [Fact]
    public void ReshapeViewsStridedTensorsWhereStridesAllowAndCopiesOtherwise()
    {
        // Heads split from a fused QKV projection: a Narrow of (B, T, 3C) reshaped to (B, T, NH, HS) is a view.
        var qkv = Seq(2, 5, 3 * 12);
        var q = qkv.Narrow(2, 12, 12);
        var heads = q.Reshape(2, 5, 3, 4);
        Assert.False(heads.IsContiguous);
        heads[1, 4, 2, 3] = -7f;
        Assert.Equal(-7f, qkv[1, 4, 12 + 11]);                                  // shares memory
        // Attention's output laid out (B, T, NH, HS), seen as (B, NH, T, HS) and merged back: a dense view.
        var merged = Seq(2, 5, 3, 4).Transpose(1, 2).Transpose(1, 2).Reshape(2, 5, 12);
        Assert.True(merged.IsContiguous);
        // A transposed matrix flattened needs a copy: the result does not alias.
        var t = Seq(3, 4).Transpose(0, 1);
        var flat = t.Reshape(12);
        flat[1] = 100f;
        Assert.NotEqual(100f, t[0, 1]);
        Assert.Throws<InvalidOperationException>(() => t.View(12));

        // Every way of reshaping a random strided view gives the values of reshaping its dense copy.
        var rng = new Random(5);
        for (int trial = 0; trial < 300; trial++)
        {
            int[] shape = [rng.Next(1, 4), rng.Next(1, 5), rng.Next(1, 4), rng.Next(1, 5)];
            var x = Seq(shape);
            var view = trial % 3 == 0 ? x.Permute(0, 2, 1, 3) : trial % 3 == 1 ? x.Narrow(3, 0, Math.Max(1, shape[3] - 1)) : x.Select(0, 0).Unsqueeze(1);
            var dense = view.Contiguous();
            foreach (var target in Factorings(dense.Count, rng))
            {
                var expected = dense.Reshape(target).ToArray();
                var actual = view.Reshape(target);
                Assert.Equal(target, actual.Shape.ToArray());
                Assert.Equal(expected, actual.ToArray());
            }
        }
    }

    /// <summary>A few shapes with <paramref name="count"/> elements, size-1 dimensions included.</summary>
    static IEnumerable<int[]> Factorings(int count, Random rng)
    {
        yield return [count];
        yield return [1, count, 1];
        for (int i = 0; i < 4; i++)
        {
            var dims = new List<int>(); int left = count;
            while (left > 1)
            {
                var divisors = Enumerable.Range(2, left - 1).Where(d => left % d == 0).ToArray();
                int d = divisors[rng.Next(divisors.Length)];
                dims.Add(d); left /= d;
                if (rng.Next(4) == 0) dims.Add(1);
            }
            if (dims.Count == 0) dims.Add(1);
            yield return [.. dims];
        }
    }

    [Fact]
    public void PermuteTransposeNarrowAreViews()
    {
        var t = Seq(2, 3, 4);
        var p = t.Permute(2, 0, 1);
        Assert.Equal([4, 2, 3], p.Shape.ToArray());
        Assert.False(p.IsContiguous);
        Assert.Equal(t[1, 2, 3], p[3, 1, 2]);
        Assert.Throws<InvalidOperationException>(() => { _ = p.Data.Length; });
        var c = p.Contiguous();
        Assert.True(c.IsContiguous);
        Assert.Equal(t[1, 0, 2], c[2, 1, 0]);

        var tr = t.Transpose(0, 2);
        Assert.Equal(t[1, 2, 3], tr[3, 2, 1]);

        var n = t.Narrow(2, 1, 2);
        Assert.Equal([2, 3, 2], n.Shape.ToArray());
        Assert.Equal(t[1, 1, 2], n[1, 1, 1]);
        Assert.Equal(t[1, 2, 3], t.Select(0, 1)[2, 3]);
        Assert.Equal(t[0, 2, 1], t.Select(-1, 1)[0, 2]);
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Narrow(1, 2, 2));
    }

    /// <summary>
    /// Views large enough that their copies and gradients are split over threads (a ViT stem's (B, H, W, C) output
    /// read as (B, C, H, W), a transpose, a narrowed last dimension): every element lands where the indices say, and the
    /// gradient of each view element reaches its source element.
    /// </summary>
    [Fact]
    public void LargeViewsCopyAndPassGradientsBackElementByElement()
    {
        var x = Tensor.Uniform(new Generator(11), -1f, 1f, 3, 28, 28, 16);
        x.RequiresGrad = true;
        Func<Tensor, Tensor>[] views = [t => t.Permute(0, 3, 1, 2), t => t.Transpose(1, 3), t => t.Narrow(3, 1, 14)];
        foreach (var view in views)
        {
            x.ZeroGrad();
            var v = view(x);
            var c = v.Contiguous();
            var w = Tensor.Uniform(new Generator(12), -1f, 1f, c.Shape);
            (c * w).Sum().Backward();
            var (values, weights, dx, source) = (c.ToArray(), w.ToArray(), x.Grad!.ToArray(), x.ToArray());
            var expectedDx = new float[x.Count];
            var shape = v.Shape.ToArray();
            var sx = x.Detach();
            var strides = view(sx).Strides.ToArray();
            int i = 0;
            for (int a = 0; a < shape[0]; a++)
                for (int b = 0; b < shape[1]; b++)
                    for (int d = 0; d < shape[2]; d++)
                        for (int e = 0; e < shape[3]; e++, i++)
                        {
                            int at = a * strides[0] + b * strides[1] + d * strides[2] + e * strides[3] + view(sx).Offset;
                            Assert.Equal(source[at], values[i]);
                            expectedDx[at] = weights[i];
                        }
            Assert.Equal(expectedDx, dx);
        }
    }

    /// <summary>
    /// Broadcast arithmetic large enough to be split over threads by rows, on a transposed operand, gives every element
    /// the single-float result.
    /// </summary>
    [Fact]
    public void LargeBroadcastArithmeticMatchesElementByElement()
    {
        var a = Tensor.Uniform(new Generator(13), -1f, 1f, 3, 200, 100).Transpose(1, 2);  // (3, 100, 200), strided
        var b = Tensor.Uniform(new Generator(14), 0.5f, 1.5f, 100, 1);
        var (sum, quotient) = ((a + b).ToArray(), (a / b).ToArray());
        var (av, bv) = (a.Contiguous().ToArray(), b.ToArray());
        for (int i = 0; i < av.Length; i++)
        {
            float bi = bv[i / 200 % 100];
            Assert.Equal(av[i] + bi, sum[i]);
            Assert.Equal(av[i] / bi, quotient[i]);
        }
    }

    [Fact]
    public void CatAndSplitRoundTrip()
    {
        var a = Seq(2, 3, 4);
        var parts = a.Split([1, 2], 1);
        Assert.Equal([2, 1, 4], parts[0].Shape.ToArray());
        var back = Tensor.Cat(parts, 1);
        Assert.Equal(a.ToArray(), back.ToArray());
        var chunks = a.Chunk(2, -1);
        Assert.Equal(a.ToArray(), Tensor.Cat(chunks, -1).ToArray());
        Assert.Throws<ArgumentException>(() => Tensor.Cat([Seq(2, 3), Seq(3, 3)], 1));
    }

    [Fact]
    public void BroadcastingArithmetic()
    {
        var a = Seq(2, 3);
        var b = Tensor.FromArray([10f, 20f, 30f], 3);
        Assert.Equal([10f, 21f, 32f, 13f, 24f, 35f], (a + b).ToArray());
        var col = Tensor.FromArray([1f, 2f], 2, 1);
        Assert.Equal([0f, 1f, 2f, 6f, 8f, 10f], (a * col).ToArray());
        Assert.Equal([-1f, 0f, 1f, 1f, 2f, 3f], (a - col).ToArray());
        Assert.Equal(new[] { 0f, 0.5f, 1f }, (Seq(3) / Tensor.Scalar(2f)).ToArray());
        Assert.Equal([2, 3], (Tensor.Scalar(1f) + a).Shape.ToArray());
        var ex = Assert.Throws<ArgumentException>(() => Seq(2, 3) + Seq(2, 2));
        Assert.Contains("(2, 3)", ex.Message);
        // Broadcasting against a strided view.
        var t = a.Transpose(0, 1); // (3, 2)
        Assert.Equal([0f, 4f, 1f, 5f, 2f, 6f], (t + Tensor.FromArray([0f, 1f], 2)).ToArray());
    }

    [Fact]
    public void Reductions()
    {
        var t = Seq(2, 3, 4);
        Assert.Equal(276f, t.Sum().Item());
        Assert.Equal(11.5f, t.Mean().Item());
        var s1 = t.Sum(1);
        Assert.Equal([2, 4], s1.Shape.ToArray());
        Assert.Equal(0f + 4 + 8, s1[0, 0]);
        Assert.Equal([2, 3, 1], t.Mean(-1, keepDim: true).Shape.ToArray());
        Assert.Equal(1.5f, t.Mean(-1)[0, 0]);
        var m = Tensor.FromArray([1f, 5f, 3f, 7f, 2f, 7f], 2, 3);
        var (values, idx) = m.Max(1);
        Assert.Equal([5f, 7f], values.ToArray());
        Assert.Equal([1, 0], idx);
        Assert.Equal([1, 0, 1], m.ArgMax(0));
    }

    [Fact]
    public void MatMulMatchesNaiveProductWithBroadcastAndTransposedViews()
    {
        var rng = new Generator(3);
        var a = Tensor.Randn(rng, 2, 3, 5, 7);
        var b = Tensor.Randn(rng, 3, 7, 4);
        var c = a.MatMul(b);
        Assert.Equal([2, 3, 5, 4], c.Shape.ToArray());
        for (int i = 0; i < 2; i++) for (int j = 0; j < 3; j++) for (int r = 0; r < 5; r++) for (int q = 0; q < 4; q++)
        {
            double s = 0;
            for (int k = 0; k < 7; k++) s += a[i, j, r, k] * b[j, k, q];
            Assert.Equal(s, c[i, j, r, q], 4);
        }
        var bt = Tensor.Randn(rng, 3, 4, 7);
        var c2 = a.MatMul(bt.Transpose(-2, -1));
        var c3 = a.MatMul(bt.Transpose(-2, -1).Contiguous());
        TensorAssert.Close(c3, c2, 1e-5);
        Assert.Throws<ArgumentException>(() => a.MatMul(a));
    }

    [Fact]
    public void ViewsKeepStorageAliveAfterBaseIsDisposed()
    {
        var t = Seq(4, 4);
        var v = t.Narrow(0, 1, 2);
        t.Dispose();
        var other = Tensor.Full(-1f, 16); // would reuse t's block if it had been returned
        Assert.Equal(4f, v[0, 0]);
        Assert.Equal(-1f, other[0]);
    }

    [Fact]
    public void NoGradRecordsNothing()
    {
        var x = Tensor.Ones(3);
        x.RequiresGrad = true;
        using (GradMode.NoGrad())
        {
            var y = x * x;
            Assert.False(y.RequiresGrad);
            Assert.Null(y.GradFn);
        }
        Assert.NotNull((x * x).GradFn);
    }

    [Fact]
    public void GradientsAccumulateAcrossBackwardCalls()
    {
        var x = Tensor.FromArray([1f, 2f, 3f], 3);
        x.RequiresGrad = true;
        (x * x).Sum().Backward();
        Assert.Equal([2f, 4f, 6f], x.Grad!.ToArray());
        (x * x).Sum().Backward();
        Assert.Equal([4f, 8f, 12f], x.Grad!.ToArray());
        x.ZeroGrad();
        Assert.Equal([0f, 0f, 0f], x.Grad!.ToArray());
    }

    [Fact]
    public void BackwardErrorsAreClear()
    {
        var x = Tensor.Ones(3);
        Assert.Contains("does not require", Assert.Throws<InvalidOperationException>(() => x.Sum().Backward()).Message);
        x.RequiresGrad = true;
        Assert.Contains("scalar", Assert.Throws<InvalidOperationException>(() => (x * x).Backward()).Message);
    }
}
