using AttentionSharp.Autograd;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Nn;

/// <summary>The shared attention core: gradients of its new paths, and patterns against the masks they stand for.</summary>
public class AttentionCoreTests
{
    const int B = 2, T = 6, NH = 2, HS = 4, C = NH * HS;

    // The same function computed through a different mask route; only the order of masked terms may differ.
    const double SameFunctionAtol = 1e-5;

    static AttentionCore Core(PositionalEncodingKind positions, AttentionPattern pattern, int? kvHeads = null) =>
        new(new MultiHeadAttentionConfig { Width = C, Heads = NH, KvHeads = kvHeads, PositionalEncoding = positions, Attention = pattern },
            new Generator(3));

    public static TheoryData<string> Paths() =>
    [
        "sliding_bidirectional_rotary", "sliding_causal_global_alibi", "alibi_bidirectional", "linear_bidirectional_rotary",
        "linear_causal", "packed_sliding_alibi", "packed_gqa_rotary", "cross",
    ];

    [Theory]
    [MemberData(nameof(Paths))]
    public void GradientsMatchFiniteDifferences(string path)
    {
        var rng = new Generator(7);
        var bidirectional = AttentionMask.None;
        var causal = AttentionMask.CausalOnly;
        Tensor Leaf(params int[] shape) => Autograd.GradCheckTests.Leaf(rng, shape);
        Func<Tensor[], Tensor> f;
        Tensor[] inputs;
        switch (path)
        {
            case "packed_sliding_alibi":
            {
                var core = Core(PositionalEncodingKind.Alibi, AttentionPattern.Sliding(3, 1));
                (f, inputs) = (x => core.SelfAttention(x[0], bidirectional, null, training: false), [Leaf(B, T, 3 * C)]);
                break;
            }
            case "packed_gqa_rotary":
            {
                var core = Core(PositionalEncodingKind.Rotary, AttentionPattern.Full, kvHeads: 1);
                (f, inputs) = (x => core.SelfAttention(x[0], causal, null, training: false), [Leaf(B, T, C + 2 * HS)]);
                break;
            }
            case "cross":
            {
                var core = Core(PositionalEncodingKind.Rotary, AttentionPattern.Full);
                (f, inputs) = (x => core.CrossAttention(x[0], () => (x[1], x[2]), bidirectional, null, training: false),
                    [Leaf(B, T, C), Leaf(B, T - 2, C), Leaf(B, T - 2, C)]);
                break;
            }
            default:
            {
                var (positions, pattern, mask) = path switch
                {
                    "sliding_bidirectional_rotary" => (PositionalEncodingKind.Rotary, AttentionPattern.Sliding(2), bidirectional),
                    "sliding_causal_global_alibi" => (PositionalEncodingKind.Alibi, AttentionPattern.Sliding(2, 0), causal),
                    "alibi_bidirectional" => (PositionalEncodingKind.Alibi, AttentionPattern.Full, bidirectional),
                    "linear_bidirectional_rotary" => (PositionalEncodingKind.Rotary, AttentionPattern.LinearAttention, bidirectional),
                    _ => (PositionalEncodingKind.None, AttentionPattern.LinearAttention, causal),
                };
                var core = Core(positions, pattern);
                (f, inputs) = (x => core.SelfAttention(x[0], x[1], x[2], mask, null, training: false), [Leaf(B, T, C), Leaf(B, T, C), Leaf(B, T, C)]);
                break;
            }
        }
        var report = GradCheck.Check(f, inputs);
        Assert.True(report.Passed, $"{path}: {report}");
    }

    [Theory]
    [InlineData(2, new int[0])]
    [InlineData(2, new[] { 0 })]
    [InlineData(3, new[] { 1, 4 })]
    public void ABidirectionalSlidingWindowIsFullAttentionUnderTheEquivalentMask(int window, int[] global)
    {
        var config = new MultiHeadAttentionConfig { Width = C, Heads = NH, PositionalEncoding = PositionalEncodingKind.Rotary };
        var windowed = new MultiHeadAttention(config with { Attention = AttentionPattern.Sliding(window, global) }, new Generator(1));
        var full = new MultiHeadAttention(config, new Generator(1));
        // M_ij = 0 when |i − j| < w or i or j is global, −∞ otherwise
        var mask = new float[T * T];
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++)
                mask[i * T + j] = Math.Abs(i - j) < window || global.Contains(i) || global.Contains(j) ? 0f : float.NegativeInfinity;
        using var additive = Tensor.FromArray(mask, T, T);
        var x = LayerTestKit.Random(5, B, T, C);
        var xa = x.Detach(); xa.RequiresGrad = true;
        var xb = x.Detach(); xb.RequiresGrad = true;
        var ya = windowed.Forward(xa);
        var yb = full.Forward(xb, new AttentionMask { Additive = additive });
        TensorAssert.Close(yb, ya, SameFunctionAtol, 0, $"window {window}, global [{string.Join(',', global)}]: output");
        ya.Sum().Backward(); yb.Sum().Backward();
        TensorAssert.Close(xb.Grad!, xa.Grad!, SameFunctionAtol, 0, "dx");
        TensorAssert.Close(full.InProjWeight.Grad!, windowed.InProjWeight.Grad!, SameFunctionAtol, 0, "d in_proj_weight");
    }

    [Fact]
    public void LinearAttentionRefusesPaddedKeysAndIgnoresAMaskWithoutAny()
    {
        var core = Core(PositionalEncodingKind.None, AttentionPattern.LinearAttention);
        var q = LayerTestKit.Random(1, B, T, C); var k = LayerTestKit.Random(2, B, T, C); var v = LayerTestKit.Random(3, B, T, C);
        var padding = new bool[B * T];
        var unmasked = core.SelfAttention(q, k, v, AttentionMask.None, null, training: false);
        var noPadding = core.SelfAttention(q, k, v, new AttentionMask { KeyPadding = padding }, null, training: false);
        TensorAssert.Close(unmasked, noPadding, 0, 0, "linear attention under an all-false padding mask");
        padding[T - 1] = true;
        var e = Assert.Throws<ArgumentException>(() => core.SelfAttention(q, k, v, new AttentionMask { KeyPadding = padding }, null, training: false));
        Assert.Contains("padding", e.Message);
    }

    [Fact]
    public void TheFusedAndTheSeparateProjectionsGiveTheSameAttention()
    {
        var core = Core(PositionalEncodingKind.Alibi, AttentionPattern.Sliding(3, 0));
        var qkv = LayerTestKit.Random(4, B, T, 3 * C);
        var packed = core.SelfAttention(qkv, AttentionMask.CausalOnly, null, training: false);
        var parts = qkv.Split([C, C, C], 2);
        var split = core.SelfAttention(parts[0], parts[1], parts[2], AttentionMask.CausalOnly, null, training: false);
        TensorAssert.Close(split, packed, SameFunctionAtol, 0, "packed vs split heads");
    }

    [Fact]
    public void DropoutDrawsTheRowsTheGeneratorIsToldItHolds()
    {
        const int First = 1;
        var config = new MultiHeadAttentionConfig { Width = C, Heads = NH, Dropout = 0.3f };
        var x = LayerTestKit.Random(6, 2 * B, T, 3 * C);
        var whole = new AttentionCore(config, new Generator(9)).SelfAttention(x, AttentionMask.CausalOnly, null, training: true).ToArray();
        var rng = new Generator(9) { FirstRow = First };
        var part = new AttentionCore(config, rng).SelfAttention(x.Narrow(0, First, B).Contiguous(), AttentionMask.CausalOnly, null, training: true);
        TensorAssert.Close(whole.AsSpan(First * T * C, B * T * C), part.ToArray(), 1e-6, 1e-6, $"rows {First}… of the whole batch");
    }
}
