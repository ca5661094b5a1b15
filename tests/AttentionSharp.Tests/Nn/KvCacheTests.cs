using AttentionSharp.Autograd;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;
using Xunit.Abstractions;
using static AttentionSharp.Tests.Nn.LayerTestKit;

namespace AttentionSharp.Tests.Nn;

/// <summary>Incremental decoding with a K/V cache reproduces the full causal forward pass.</summary>
public class KvCacheTests(ITestOutputHelper output)
{
    // A cached step computes the same dot products as the full pass, but over shorter rows (one query), so the GEMM
    // blocks and softmax sums may round differently: a few ulps, well under this bound.
    const double StepTolerance = 1e-5;

    [Theory]
    [InlineData(PositionalEncodingKind.None, null, true)]
    [InlineData(PositionalEncodingKind.Sinusoidal, null, false)]
    [InlineData(PositionalEncodingKind.Learned, null, true)]
    [InlineData(PositionalEncodingKind.Rotary, 2, true)]
    [InlineData(PositionalEncodingKind.Alibi, 1, false)]
    public void StepByStepDecodingMatchesTheFullCausalPass(PositionalEncodingKind positions, int? kvHeads, bool normFirst)
    {
        var decoder = new TransformerDecoder(Tiny(positions) with { KvHeads = kvHeads, NormFirst = normFirst, FinalNorm = normFirst }, new Generator(21));
        decoder.Eval();
        const int b = 2, t = 7;
        var x = Random(22, b, t, 16);
        var memory = Random(23, b, 5, 16);
        var memoryMask = new AttentionMask { KeyPadding = new[] { false, false, false, false, false, false, false, false, true, true } };
        using (GradMode.NoGrad())
        {
            var full = decoder.Forward(x, memory, memoryMask: memoryMask);                     // (B, T, C)
            using var cache = decoder.NewCache();
            double worst = 0;
            for (int step = 0; step < t; step++)
            {
                Assert.Equal(step, cache.Length);
                var y = decoder.Forward(Tokens(x, step, 1), memory, memoryMask: memoryMask, cache: cache);   // (B, 1, C)
                double d = TensorAssert.Close(Tokens(full, step, 1), y, StepTolerance, 0, $"step {step}");
                worst = Math.Max(worst, d);
            }
            Assert.Equal(t, cache.Length);
            Assert.Equal([b, kvHeads ?? 4, t, 4], cache[1].Keys!.Shape.ToArray());
            output.WriteLine($"{positions}, NKV = {kvHeads ?? 4}: max |Δ| over {t} steps = {worst:G3}");
        }
    }

    [Fact]
    public void ChunksOfSeveralTokensMatchToo()
    {
        var decoder = new TransformerDecoder(Tiny(PositionalEncodingKind.Rotary), new Generator(24));
        decoder.Eval();
        var x = Random(25, 1, 6, 16);
        var memory = Random(26, 1, 3, 16);
        using (GradMode.NoGrad())
        {
            var full = decoder.Forward(x, memory);
            using var cache = decoder.NewCache();
            var first = decoder.Forward(Tokens(x, 0, 4), memory, cache: cache);                 // a prompt of 4 tokens
            var second = decoder.Forward(Tokens(x, 4, 2), memory, cache: cache);                // then 2 more
            TensorAssert.Close(Tokens(full, 0, 4), first, StepTolerance, 0, "prompt");
            TensorAssert.Close(Tokens(full, 4, 2), second, StepTolerance, 0, "continuation");
        }
    }

    [Fact]
    public void TheMemorysKeysAndValuesAreComputedOnce()
    {
        var mha = new MultiHeadAttention(new MultiHeadAttentionConfig { Width = 16, Heads = 4 }, new Generator(27));
        var memory = Random(28, 1, 3, 16);
        using (GradMode.NoGrad())
        {
            var layer = new KvCacheLayer();
            var y1 = mha.Forward(Random(29, 1, 1, 16), memory, cache: layer);
            var keys = layer.MemoryKeys;
            Assert.Equal([1, 4, 3, 4], keys!.Shape.ToArray());
            mha.Forward(Random(30, 1, 1, 16), memory, cache: layer);
            Assert.Same(keys, layer.MemoryKeys);
            Assert.Equal(0, layer.Length);
            layer.Reset();
            Assert.Null(layer.MemoryKeys);
        }
    }

    [Fact]
    public void TheCacheRefusesToRecordGradients()
    {
        var mha = new MultiHeadAttention(new MultiHeadAttentionConfig { Width = 16, Heads = 4 }, new Generator(31));
        var e = Assert.Throws<InvalidOperationException>(() => mha.Forward(Random(32, 1, 1, 16), cache: new KvCacheLayer()));
        Assert.Contains("NoGrad", e.Message);
    }

    [Fact]
    public void ACacheForAnotherDepthIsRejected()
    {
        var decoder = new TransformerDecoder(Tiny(), new Generator(33));
        using (GradMode.NoGrad())
        {
            var e = Assert.Throws<ArgumentException>(() => decoder.Forward(Random(34, 1, 1, 16), Random(35, 1, 2, 16), cache: new KvCache(3)));
            Assert.Contains("3 layers", e.Message);
            Assert.Contains("has 2", e.Message);
        }
    }

    [Fact]
    public void AReorderedCacheContinuesAsTheRowsItWasGiven()
    {
        // Decode 3 steps for batch rows {0, 1}, reorder to rows [1, 1, 0], then decode on: each new row must continue
        // exactly as a fresh decoding of its source row's sequence does.
        var decoder = new TransformerDecoder(Tiny(PositionalEncodingKind.Rotary), new Generator(36));
        decoder.Eval();
        const int t = 5;
        var x = Random(37, 2, t, 16);
        var memory = Random(38, 2, 3, 16);
        int[] rows = [1, 1, 0];
        using (GradMode.NoGrad())
        {
            var full = decoder.Forward(x, memory);                                                // (2, T, C)
            using var cache = decoder.NewCache();
            decoder.Forward(Tokens(x, 0, 3), memory, cache: cache);
            cache.Reorder(rows);
            Assert.Equal([3, 4, 3, 4], cache[0].Keys!.Shape.ToArray());
            Assert.Equal(3, cache[1].MemoryKeys!.Size(0));
            var next = decoder.Forward(Tokens(x, 3, 2).IndexSelect(0, rows), memory.IndexSelect(0, rows), cache: cache);   // (3, 2, C)
            TensorAssert.Close(Tokens(full, 3, 2).IndexSelect(0, rows), next, StepTolerance, 0, "after reordering");
        }
    }

    [Fact]
    public void AppendsWriteInPlaceAndGrowingKeepsEveryPosition()
    {
        // (B, NKV, 1, HS) steps and one 5-position chunk, past the first capacity, against the concatenation of all.
        const int b = 2, nkv = 3, hs = 5, steps = 70;
        var layer = new KvCacheLayer();
        var keys = new List<Tensor>(); var values = new List<Tensor>();
        using (GradMode.NoGrad())
        {
            for (int step = 0; step < steps; step++)
            {
                int t = step == 10 ? 5 : 1;
                // Strided inputs, as the heads split from a fused projection arrive: (B, T, NKV, HS) viewed as (B, NKV, T, HS).
                var k = Random(100 + (ulong)step, b, t, nkv, hs).Transpose(1, 2);
                var v = Random(200 + (ulong)step, b, t, nkv, hs).Transpose(1, 2);
                keys.Add(k); values.Add(v);
                int capacityBefore = layer.Capacity;
                var (allK, allV) = layer.Append(k, v);
                if (layer.Length <= capacityBefore) Assert.Equal(capacityBefore, layer.Capacity); // no reallocation until full
                Assert.Equal(layer.Length, allK.Size(2));
                TensorAssert.Close(Tensor.Cat([.. keys], 2), allK, 0, 0, $"keys after step {step}");
                TensorAssert.Close(Tensor.Cat([.. values], 2), allV, 0, 0, $"values after step {step}");
            }
            Assert.Equal(steps + 4, layer.Length);
            Assert.Equal(128, layer.Capacity);
            var e = Assert.Throws<ArgumentException>(() => layer.Append(Random(1, b, nkv, 1, hs + 1), Random(2, b, nkv, 1, hs + 1)));
            Assert.Contains("HS must match", e.Message);
            layer.Reset();
            Assert.Equal(0, layer.Length);
            Assert.Equal(0, layer.Capacity);
            Assert.Null(layer.Keys);
        }
    }
}
