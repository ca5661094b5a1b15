using System.Text.Json.Nodes;
using AttentionSharp.Autograd;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;
using AttentionSharp.Training;

namespace AttentionSharp.Tests.Models;

/// <summary>The attention kind as a model setting: full, sliding-window and linear GPTs train, decode with the cache as without, and round-trip their config.</summary>
public class GptAttentionPatternTests
{
    static readonly GptConfig Shape = new() { VocabSize = 12, ContextLength = 16, Layers = 2, Heads = 2, Width = 16 };

    public static TheoryData<string, PositionalEncodingKind> Patterns() => new()
    {
        { "full", PositionalEncodingKind.Learned },
        { "sliding:3", PositionalEncodingKind.Rotary },
        { "sliding:4:0,5", PositionalEncodingKind.Learned },
        { "sliding:2", PositionalEncodingKind.Alibi },
        { "linear", PositionalEncodingKind.Learned },
        { "linear", PositionalEncodingKind.Rotary },
    };

    [Theory]
    [MemberData(nameof(Patterns))]
    public void TrainsAndDecodesWithTheCacheAsWithout(string pattern, PositionalEncodingKind positions)
    {
        var config = Shape with { Attention = AttentionPattern.Parse(pattern), PositionalEncoding = positions };
        Assert.Equal(config, GptConfig.FromJson(JsonNode.Parse(config.ToJson().ToJsonString())!.AsObject()));
        var model = new Gpt(config, new Generator(5));
        int[] ids = [1, 4, 2, 7, 3, 3, 9, 0, 5, 5, 1, 2];
        var optimizer = new AdamW(model.ParameterGroups(), lr: 1e-2f);
        float first = 0, last = 0;
        for (int step = 0; step < 15; step++)
        {
            optimizer.ZeroGrad();
            var loss = model.Loss(model.Forward(ids[..^1], 1, ids.Length - 1), ids[1..]);
            loss.Backward();
            optimizer.Step();
            if (step == 0) first = loss.Item(); else last = loss.Item();
        }
        Assert.True(last < first, $"{pattern}: the loss did not fall ({first} → {last})");

        using (GradMode.NoGrad())
        {
            model.Eval();
            var full = model.Forward(ids, 1, ids.Length).ToArray();
            using var cache = new KvCache(config.Layers);
            var stepwise = new List<float>(model.Forward(ids[..3], 1, 3, cache).ToArray());   // a prompt of 3, then one at a time
            for (int t = 3; t < 9; t++) stepwise.AddRange(model.Forward([ids[t]], 1, 1, cache).ToArray());
            stepwise.AddRange(model.Forward(ids[9..], 1, ids.Length - 9, cache).ToArray()); // and a chunk of 3
            TensorAssert.Close(full, stepwise.ToArray(), 1e-4, 0, $"{pattern}: cached logits");
            Assert.Equal(ids.Length, cache.Length);
            if (config.Attention.Kind == AttentionKind.Linear)
            {
                // Linear attention keeps its recurrent state, S and z per key/value head, and no keys.
                Assert.Null(cache[0].Keys);
                Assert.Equal([1, 2, 8 * 8 + 8], cache[0].LinearState!.Shape.ToArray());
                return;
            }
            // A window without global tokens keeps only the last w − 1 positions; otherwise the cache holds them all.
            int kept = config.Attention.CacheWindow is { } w ? Math.Max(1, w - 1) : ids.Length;
            Assert.Equal(kept, cache[0].Keys!.Size(2));
        }
    }

    [Fact]
    public void AWindowAsLongAsTheContextIsFullAttention()
    {
        int[] ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7];
        float[] Logits(AttentionPattern pattern)
        {
            var model = new Gpt(Shape with { Attention = pattern }, new Generator(9));
            using (GradMode.NoGrad()) return model.Forward(ids, 1, ids.Length).ToArray();
        }
        var full = Logits(AttentionPattern.Full);
        TensorAssert.Close(full, Logits(AttentionPattern.Sliding(Shape.ContextLength)), 1e-5, 0, "window = context");
        // A narrow window changes the function.
        Assert.True(MaxDifference(full, Logits(AttentionPattern.Sliding(2))) > 1e-3);
    }

    static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    [Fact]
    public void MultiHeadAttentionWithAWindowEqualsTheMaterialisedMask()
    {
        const int t = 20, window = 4;
        int[] global = [0, 11];
        var windowed = new MultiHeadAttention(new MultiHeadAttentionConfig { Width = 16, Heads = 4, KvHeads = 2, Attention = AttentionPattern.Sliding(window, global) }, new Generator(3));
        var plain = new MultiHeadAttention(new MultiHeadAttentionConfig { Width = 16, Heads = 4, KvHeads = 2 }, new Generator(3));
        var mask = new float[t * t];
        for (int i = 0; i < t; i++)
            for (int j = 0; j < t; j++)
                mask[i * t + j] = j <= i && (i - j < window || global.Contains(i) || global.Contains(j)) ? 0f : float.NegativeInfinity;
        var x = Tensor.Uniform(new Generator(4), -1f, 1f, 2, t, 16);
        using (GradMode.NoGrad())
        {
            var a = windowed.Forward(x, AttentionMask.CausalOnly);
            var b = plain.Forward(x, new AttentionMask { Additive = Tensor.FromArray(mask, t, t) });
            TensorAssert.Close(b, a, 1e-5, 0, "window vs mask");
            var (_, weights) = windowed.ForwardWithWeights(x, mask: AttentionMask.CausalOnly);
            var w = weights.ToArray();
            for (int i = 0; i < w.Length; i++) if (float.IsNegativeInfinity(mask[i % (t * t)])) Assert.Equal(0f, w[i]);
        }
    }

    [Fact]
    public void LinearMultiHeadAttentionDecodesStepByStep()
    {
        var mha = new MultiHeadAttention(new MultiHeadAttentionConfig { Width = 16, Heads = 4, Attention = AttentionPattern.LinearAttention, PositionalEncoding = PositionalEncodingKind.Rotary }, new Generator(6));
        var x = Tensor.Uniform(new Generator(7), -1f, 1f, 2, 9, 16);
        using (GradMode.NoGrad())
        {
            var full = mha.Forward(x, AttentionMask.CausalOnly);
            var layer = new KvCacheLayer();
            for (int t = 0; t < 6; t++)
            {
                var y = mha.Forward(x.Narrow(1, t, 1).Contiguous(), AttentionMask.CausalOnly, layer);
                TensorAssert.Close(full.Narrow(1, t, 1).Contiguous(), y, 1e-5, 0, $"step {t}");
            }
            // A chunk of 3 at once: causal within the chunk, the state before it.
            TensorAssert.Close(full.Narrow(1, 6, 3).Contiguous(), mha.Forward(x.Narrow(1, 6, 3).Contiguous(), AttentionMask.CausalOnly, layer), 1e-5, 0, "chunk");
            Assert.Equal(9, layer.Length);
            Assert.Null(layer.Keys);
            Assert.Throws<InvalidOperationException>(() => mha.ForwardWithWeights(x));
        }
    }

    [Theory]
    [InlineData("full", "full")]
    [InlineData(" Linear ", "linear")]
    [InlineData("sliding:512", "sliding:512")]
    [InlineData("sliding_window:64:0,7", "sliding:64:0,7")]
    public void ParsesAndPrints(string text, string printed) => Assert.Equal(printed, AttentionPattern.Parse(text).ToString());

    [Theory]
    [InlineData("sparse", "unknown")]
    [InlineData("sliding", "unknown")]
    [InlineData("sliding:x", "'x'")]
    [InlineData("sliding:4:1,-2", "'-2'")]
    public void BadTextIsNamed(string text, string expected) =>
        Assert.Contains(expected, Assert.Throws<ArgumentException>(() => AttentionPattern.Parse(text)).Message);

    [Fact]
    public void BadConfigurationsNameTheField()
    {
        Assert.Contains("window of at least 1", Assert.Throws<ArgumentException>(() => (Shape with { Attention = AttentionPattern.Sliding(0) }).Validate()).Message);
        Assert.Contains("position 16", Assert.Throws<ArgumentException>(() => (Shape with { Attention = AttentionPattern.Sliding(4, 16) }).Validate()).Message);
        Assert.Contains("ALiBi", Assert.Throws<ArgumentException>(() => (Shape with { Attention = AttentionPattern.LinearAttention, PositionalEncoding = PositionalEncodingKind.Alibi }).Validate()).Message);
        Assert.Contains("ALiBi", Assert.Throws<ArgumentException>(() => new MultiHeadAttentionConfig { Attention = AttentionPattern.LinearAttention, PositionalEncoding = PositionalEncodingKind.Alibi }.Validate()).Message);
        var json = Shape.ToJson();
        json["attention_type"] = "sliding_window";
        Assert.Contains("attention_window", Assert.Throws<ArgumentException>(() => GptConfig.FromJson(json)).Message);
        json["attention_type"] = "dilated";
        Assert.Contains("'dilated'", Assert.Throws<ArgumentException>(() => GptConfig.FromJson(json)).Message);
        // A configuration written before the field existed reads as full attention.
        var old = new GptConfig { VocabSize = 5 }.ToJson();
        Assert.True(old.Remove("attention_type"));
        Assert.Equal(AttentionPattern.Full, GptConfig.FromJson(old).Attention);
    }
}
