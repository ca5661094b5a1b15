using AttentionSharp.Autograd;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;
using static AttentionSharp.Tests.Nn.LayerTestKit;

namespace AttentionSharp.Tests.Nn;

/// <summary>The claims made about attention, as properties of the modules.</summary>
public class MultiHeadAttentionTests
{
    // Reordering tokens reorders the same sums; only summation order inside softmax and matmul changes.
    const double EquivarianceTolerance = 1e-5;

    // A positional encoding must move outputs by far more than rounding when tokens are reordered.
    const double PositionSensitivity = 1e-3;

    static readonly int[] Perm = [3, 0, 4, 1, 2];

    static MultiHeadAttention Mha(PositionalEncodingKind positions = PositionalEncodingKind.None, int? kvHeads = null, ulong seed = 1) =>
        new(new MultiHeadAttentionConfig { Width = 16, Heads = 4, KvHeads = kvHeads, PositionalEncoding = positions }, new Generator(seed));

    [Fact]
    public void SelfAttentionWithoutPositionsIsPermutationEquivariant()
    {
        var mha = Mha();
        var x = Random(2, 2, 5, 16);
        var permutedThenAttended = mha.Forward(PermuteTokens(x, Perm));
        var attendedThenPermuted = PermuteTokens(mha.Forward(x), Perm);
        TensorAssert.Close(attendedThenPermuted, permutedThenAttended, EquivarianceTolerance, 0, "attention(permuted x) vs permuted attention(x)");
    }

    [Theory]
    [InlineData(PositionalEncodingKind.None, true)]
    [InlineData(PositionalEncodingKind.Sinusoidal, false)]
    [InlineData(PositionalEncodingKind.Learned, false)]
    [InlineData(PositionalEncodingKind.Rotary, false)]
    [InlineData(PositionalEncodingKind.Alibi, false)]
    public void AnEncoderIsPermutationEquivariantExactlyWhenItHasNoPositions(PositionalEncodingKind positions, bool equivariant)
    {
        var encoder = new TransformerEncoder(Tiny(positions) with { Layers = 1 }, new Generator(4));
        var x = Random(5, 2, 5, 16);
        double diff = MaxDifference(PermuteTokens(encoder.Forward(x), Perm), encoder.Forward(PermuteTokens(x, Perm)));
        if (equivariant) Assert.True(diff <= EquivarianceTolerance, $"{positions}: max |Δ| = {diff:G3}, expected equivariance");
        else Assert.True(diff > PositionSensitivity, $"{positions}: max |Δ| = {diff:G3}, expected the order to matter");
    }

    [Fact]
    public void AnEncoderLayerWithoutPositionsIsPermutationEquivariant()
    {
        var layer = new TransformerEncoderLayer(Tiny() with { NormFirst = false }, new Generator(6));
        var x = Random(7, 2, 5, 16);
        TensorAssert.Close(PermuteTokens(layer.Forward(x), Perm), layer.Forward(PermuteTokens(x, Perm)), EquivarianceTolerance, 0, "encoder layer");
    }

    [Theory]
    [InlineData(PositionalEncodingKind.None)]
    [InlineData(PositionalEncodingKind.Rotary)]
    [InlineData(PositionalEncodingKind.Alibi)]
    public void CausalOutputAtTDoesNotSeeTheFuture(PositionalEncodingKind positions)
    {
        var mha = Mha(positions);
        const int t = 2;
        var x = Random(8, 2, 6, 16);
        var changed = x.Copy();
        for (int i = t + 1; i < 6; i++)
            for (int c = 0; c < 16; c++) { changed[0, i, c] += 3f; changed[1, i, c] -= 2f; }
        var before = mha.Forward(x, AttentionMask.CausalOnly);
        var after = mha.Forward(changed, AttentionMask.CausalOnly);
        TensorAssert.Close(Tokens(before, 0, t + 1), Tokens(after, 0, t + 1), 0, 0, "outputs up to t");
        Assert.True(MaxDifference(Tokens(before, t + 1, 5 - t), Tokens(after, t + 1, 5 - t)) > PositionSensitivity);
    }

    [Fact]
    public void ADecoderStackDoesNotSeeTheFuture()
    {
        var decoder = new TransformerDecoder(Tiny(PositionalEncodingKind.Sinusoidal), new Generator(3));
        var x = Random(9, 1, 6, 16);
        var memory = Random(10, 1, 4, 16);
        var changed = x.Copy();
        for (int c = 0; c < 16; c++) changed[0, 4, c] = 5f;
        TensorAssert.Close(Tokens(decoder.Forward(x, memory), 0, 4), Tokens(decoder.Forward(changed, memory), 0, 4), 0, 0, "decoder outputs before the change");
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void AttentionWeightsAreADistributionPerQuery(bool causal, bool padded)
    {
        var mha = Mha(PositionalEncodingKind.Alibi);
        var mask = new AttentionMask { Causal = causal, KeyPadding = padded ? new[] { false, false, false, false, false, false, false, false, true, true } : default };
        var (_, weights) = mha.ForwardWithWeights(Random(11, 2, 5, 16), mask: mask);
        Assert.Equal([2, 4, 5, 5], weights.Shape.ToArray());
        var w = weights.ToArray();
        Assert.All(w, v => Assert.True(v >= 0f, $"negative weight {v}"));
        for (int row = 0; row < w.Length / 5; row++)
        {
            double sum = 0;
            for (int j = 0; j < 5; j++) sum += w[row * 5 + j];
            Assert.True(Math.Abs(sum - 1) < 1e-6, $"row {row} sums to {sum}");
            int i = row % 5, b = row / 20;
            for (int j = 0; j < 5; j++)
                if ((causal && j > i) || (padded && b == 1 && j >= 3)) Assert.Equal(0f, w[row * 5 + j]);
        }
    }

    [Fact]
    public void GroupedQueryAttentionEqualsFullAttentionWithSharedKeyValueHeads()
    {
        // NH = 4 query heads over NKV = 2 key/value heads is multi-head attention whose K/V heads 2g and 2g + 1 are copies of group g.
        var gqa = Mha(kvHeads: 2, seed: 3);
        var full = Mha(seed: 4);
        Assert.Equal([(4 + 2 * 2) * 4, 16], gqa.InProjWeight.Shape.ToArray());
        var gw = gqa.InProjWeight.ToArray(); var gb = gqa.InProjBias!.ToArray();
        var fw = new float[48 * 16]; var fb = new float[48];
        for (int row = 0; row < 48; row++)
        {
            // full rows: q (0–15), k (16–31), v (32–47); GQA rows: q (0–15), k (16–23), v (24–31)
            int part = row / 16, within = row % 16, head = within / 4, d = within % 4;
            int src = part == 0 ? row : 16 + (part - 1) * 8 + head / 2 * 4 + d;
            Array.Copy(gw, src * 16, fw, row * 16, 16); fb[row] = gb[src];
        }
        full.LoadStateDict(new Dictionary<string, Tensor>
        {
            ["in_proj_weight"] = Tensor.FromArray(fw, 48, 16), ["in_proj_bias"] = Tensor.FromArray(fb, 48),
            ["out_proj.weight"] = gqa.OutProj.Weight, ["out_proj.bias"] = gqa.OutProj.Bias!,
        });
        var x = Random(12, 2, 5, 16);
        TensorAssert.Close(full.Forward(x, AttentionMask.CausalOnly), gqa.Forward(x, AttentionMask.CausalOnly), 1e-6, 0, "GQA vs expanded MHA");
    }

    [Fact]
    public void ParameterNamesAreTorchMultiheadAttentions()
    {
        Assert.Equal(["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"], Mha().NamedParameters().Select(p => p.Name));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GradientMatchesFiniteDifferences(bool cross)
    {
        var mha = new MultiHeadAttention(new MultiHeadAttentionConfig { Width = 8, Heads = 2, KvHeads = cross ? 1 : 2, PositionalEncoding = PositionalEncodingKind.Rotary }, new Generator(13));
        var x = Random(14, 1, 3, 8); x.RequiresGrad = true;
        var memory = Random(15, 1, 4, 8); memory.RequiresGrad = true;
        Tensor[] inputs = [x, memory, mha.InProjWeight, mha.InProjBias!, mha.OutProj.Weight];
        var report = GradCheck.Check(
            xs => cross ? mha.Forward(xs[0], xs[1], new AttentionMask { KeyPadding = new[] { false, false, false, true } })
                        : mha.Forward(xs[0], AttentionMask.CausalOnly) + xs[1].Sum(),
            inputs);
        Assert.True(report.Passed, report.ToString());
    }

    [Fact]
    public void DropoutActsOnlyInTraining()
    {
        var mha = new MultiHeadAttention(new MultiHeadAttentionConfig { Width = 16, Heads = 4, Dropout = 0.5f }, new Generator(16));
        var x = Random(17, 1, 5, 16);
        var train1 = mha.Forward(x); var train2 = mha.Forward(x);
        Assert.True(MaxDifference(train1, train2) > PositionSensitivity);
        mha.Eval();
        TensorAssert.Close(mha.Forward(x), mha.Forward(x), 0, 0, "evaluation is deterministic");
    }

    [Fact]
    public void InputsOfTheWrongWidthAreRejectedWithTheirShapes()
    {
        var e = Assert.Throws<ArgumentException>(() => Mha().Forward(Tensor.Zeros(2, 5, 12)));
        Assert.Contains("(2, 5, 12)", e.Message);
        Assert.Contains("16", e.Message);
    }
}
