using AttentionSharp.Autograd;
using static AttentionSharp.Tests.Kernels.KernelTestKit;

namespace AttentionSharp.Tests.Autograd;

/// <summary>
/// The attention op: both implementations against finite differences and each other, and its contract's claims.
/// </summary>
public class AttentionTests
{
    // Flash and plain compute the same sums in different orders (tiles vs. GEMM blocks).
    const double SamePathsAbs = 2e-5, SamePathsRel = 1e-4;

    static Tensor Leaf(Generator rng, params int[] shape)
    {
        var t = Tensor.Uniform(rng, -1f, 1f, shape);
        t.RequiresGrad = true;
        return t;
    }

    public static TheoryData<string, AttentionImplementation> GradCases()
    {
        var data = new TheoryData<string, AttentionImplementation>();
        foreach (var name in new[] { "causal", "gqa", "padding", "additive", "cross", "cache", "dropout", "views" })
            foreach (var impl in new[] { AttentionImplementation.Plain, AttentionImplementation.Flash })
                data.Add(name, impl);
        return data;
    }

    [Theory]
    [MemberData(nameof(GradCases))]
    public void MatchesFiniteDifferences(string name, AttentionImplementation impl)
    {
        var rng = new Generator(11);
        var o = new AttentionOptions { Implementation = impl };
        Tensor q = Leaf(rng, 2, 2, 5, 3), k = Leaf(rng, 2, 2, 5, 3), v = Leaf(rng, 2, 2, 5, 3);
        Func<Tensor[], Tensor> f = x => Tensor.ScaledDotProductAttention(x[0], x[1], x[2], o);
        switch (name)
        {
            case "causal": o = o with { Causal = true }; break;
            case "gqa": k = Leaf(rng, 2, 1, 5, 3); v = Leaf(rng, 2, 1, 5, 3); o = o with { Causal = true }; break;
            case "padding":
                o = o with { KeyPadding = new[] { false, true, false, false, true, false, false, false, false, true } };
                break;
            case "additive": o = o with { AdditiveMask = Tensor.Uniform(rng, -1f, 1f, 5, 5) }; break;
            case "cross": k = Leaf(rng, 2, 2, 7, 3); v = Leaf(rng, 2, 2, 7, 3); q = Leaf(rng, 2, 2, 2, 3); break;
            case "cache":
                k = Leaf(rng, 2, 2, 7, 3); v = Leaf(rng, 2, 2, 7, 3); q = Leaf(rng, 2, 2, 2, 3); o = o with { Causal = true };
                break;
            case "dropout":
                // A fresh generator per call: every evaluation draws the same mask.
                f = x => Tensor.ScaledDotProductAttention(x[0], x[1], x[2],
                    o with { Dropout = 0.3f, DropoutRng = new Generator(5) });
                break;
            case "views":
                // Heads split from (B, T, C) as a model does: strided (B, NH, T, HS) views.
                q = Leaf(rng, 2, 5, 6); k = Leaf(rng, 2, 5, 6); v = Leaf(rng, 2, 5, 6);
                f = x => Tensor.ScaledDotProductAttention(Heads(x[0], 2), Heads(x[1], 2), Heads(x[2], 2),
                    o with { Causal = true });
                break;
        }
        var report = GradCheck.Check(f, [q, k, v]);
        Assert.True(report.Passed, $"{name} {impl}: {report}");
    }

    [Theory]
    [InlineData("causal")]
    [InlineData("full")]
    [InlineData("window")]
    public void PackedSelfAttentionMatchesFiniteDifferences(string name)
    {
        var rng = new Generator(12);
        var qkv = Leaf(rng, 2, 6, 3 * 4);
        var o = name switch
        {
            "causal" => new AttentionOptions { Causal = true },
            "window" => new AttentionOptions { Causal = true, Window = 2, GlobalTokens = new[] { 0 } },
            _ => new AttentionOptions(),
        };
        var report = GradCheck.Check(x => Tensor.PackedSelfAttention(x[0], 2, o), [qkv]);
        Assert.True(report.Passed, $"{name}: {report}");
    }

    public static TheoryData<string> PackedCases() => ["causal", "full", "padding", "alibi", "window", "dropout", "hs64"];

    /// <summary>The fused path gives, to the bit, what splitting the heads, attending and merging them gives.</summary>
    [Theory]
    [MemberData(nameof(PackedCases))]
    public void PackedSelfAttentionEqualsTheSplitPath(string name)
    {
        int b = 2, t = 70, nh = 4, hs = 16;
        var options = new AttentionOptions { Causal = true };
        switch (name)
        {
            case "full": options = new AttentionOptions(); break;
            case "padding":
                options = options with { KeyPadding = Enumerable.Range(0, b * t).Select(j => j % 7 == 3).ToArray() };
                break;
            case "alibi":
                options = options with { AdditiveMask = AttentionSharp.Nn.Alibi.Bias(AttentionSharp.Nn.Alibi.Slopes(nh), t, t) };
                break;
            case "window": options = options with { Window = 9, GlobalTokens = new[] { 0, 33 } }; break;
            case "dropout": options = options with { Dropout = 0.2f }; break;
            case "hs64": hs = 64; t = 129; break;
        }
        var results = new List<float[][]>();
        foreach (bool packed in new[] { false, true })
        {
            var qkv = Leaf(new Generator(3), b, t, 3 * nh * hs);
            var opts = options with { DropoutRng = options.Dropout > 0 ? new Generator(8) : null };
            Tensor y;
            if (packed) y = Tensor.PackedSelfAttention(qkv, nh, opts);
            else
            {
                var parts = qkv.Split([nh * hs, nh * hs, nh * hs], 2);
                y = Tensor.ScaledDotProductAttention(Heads(parts[0], nh), Heads(parts[1], nh), Heads(parts[2], nh), opts)
                    .Transpose(1, 2).Reshape(b, t, nh * hs);
            }
            Assert.Equal([b, t, nh * hs], y.Shape.ToArray());
            using var w = Tensor.Uniform(new Generator(4), -1f, 1f, y.Shape);
            (y * w).Sum().Backward();
            results.Add([y.ToArray(), qkv.Grad!.ToArray()]);
        }
        Assert.Equal(results[0][0], results[1][0]);
        Assert.Equal(results[0][1], results[1][1]);
    }

    [Fact]
    public void PackedSelfAttentionRejectsAWidthThatIsNotThreeHeadsWide()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.PackedSelfAttention(Tensor.Zeros(1, 4, 10), 2));
        Assert.Contains("3·heads·HS", e.Message);
    }

    /// <summary>(B, T, NH·HS) → (B, NH, T, HS) as a view.</summary>
    internal static Tensor Heads(Tensor x, int heads) =>
        x.Reshape(x.Size(0), x.Size(1), heads, x.Size(2) / heads).Transpose(1, 2);

    public static TheoryData<string> SameCases() =>
        ["causal", "non-causal", "padding", "additive", "gqa", "dropout", "cross", "cache", "t1", "hs64"];

    [Theory]
    [MemberData(nameof(SameCases))]
    public void FlashEqualsPlain(string name)
    {
        int b = 2, t = 70, tk = 70, nh = 4, nkv = 4, hs = 16;
        var options = new AttentionOptions();
        switch (name)
        {
            case "causal": options = options with { Causal = true }; break;
            case "padding":
                options = options with { KeyPadding = Enumerable.Range(0, b * tk).Select(j => j % 5 == 2).ToArray() };
                break;
            case "additive":
                options = options with { AdditiveMask = Tensor.Uniform(new Generator(2), -3f, 3f, 1, nh, t, tk) };
                break;
            case "gqa": nkv = 2; options = options with { Causal = true }; break;
            case "dropout": options = options with { Causal = true, Dropout = 0.2f }; break;
            case "cross": t = 9; tk = 100; break;
            case "cache": t = 3; tk = 100; options = options with { Causal = true }; break;
            case "t1": t = 1; tk = 1; options = options with { Causal = true }; break;
            case "hs64": hs = 64; t = tk = 129; options = options with { Causal = true }; break;
        }
        var results = new List<float[][]>();
        foreach (var impl in new[] { AttentionImplementation.Plain, AttentionImplementation.Flash })
        {
            var rng = new Generator(3);
            Tensor q = Leaf(rng, b, t, nh * hs), k = Leaf(rng, b, tk, nkv * hs), v = Leaf(rng, b, tk, nkv * hs);
            var opts = options with { Implementation = impl, DropoutRng = options.Dropout > 0 ? new Generator(8) : null };
            var y = Tensor.ScaledDotProductAttention(Heads(q, nh), Heads(k, nkv), Heads(v, nkv), opts);
            using var w = Tensor.Uniform(new Generator(4), -1f, 1f, y.Shape);
            (y * w).Sum().Backward();
            results.Add([y.ToArray(), q.Grad!.ToArray(), k.Grad!.ToArray(), v.Grad!.ToArray()]);
        }
        string[] what = ["O", "dQ", "dK", "dV"];
        for (int i = 0; i < 4; i++)
            Close(results[0][i], results[1][i], SamePathsAbs, SamePathsRel, $"{name}: {what[i]} flash vs plain");
    }

    [Fact]
    public void WeightsAreNonNegativeWithRowsSummingToOne()
    {
        var rng = new Generator(6);
        var (output, weights) = Tensor.ScaledDotProductAttentionWithWeights(Leaf(rng, 2, 3, 17, 8), Leaf(rng, 2, 3, 17, 8),
            Leaf(rng, 2, 3, 17, 8), new AttentionOptions { Causal = true });
        Assert.Equal([2, 3, 17, 17], weights.Shape.ToArray());
        Assert.Equal([2, 3, 17, 8], output.Shape.ToArray());
        var w = weights.ToArray();
        for (int row = 0; row < w.Length / 17; row++)
        {
            double sum = 0;
            for (int j = 0; j < 17; j++)
            {
                Assert.True(w[row * 17 + j] >= 0f, $"weight ({row}, {j}) is {w[row * 17 + j]}");
                if (j > row % 17) Assert.Equal(0f, w[row * 17 + j]);
                sum += w[row * 17 + j];
            }
            Assert.True(Math.Abs(sum - 1) < 1e-5, $"row {row} sums to {sum:R}");
        }
    }

    [Theory]
    [InlineData(AttentionImplementation.Plain)]
    [InlineData(AttentionImplementation.Flash)]
    public void CausalOutputIgnoresLaterInputs(AttentionImplementation impl)
    {
        int b = 1, nh = 2, t = 80, hs = 8, cut = 37;
        var rng = new Generator(7);
        var q = Tensor.Uniform(rng, -1f, 1f, b, nh, t, hs);
        var k = Tensor.Uniform(rng, -1f, 1f, b, nh, t, hs);
        var v = Tensor.Uniform(rng, -1f, 1f, b, nh, t, hs);
        var options = new AttentionOptions { Causal = true, Implementation = impl };
        var before = Tensor.ScaledDotProductAttention(q, k, v, options).ToArray();
        // Change every input after position `cut`.
        for (int h = 0; h < nh; h++)
            for (int i = cut + 1; i < t; i++)
                for (int c = 0; c < hs; c++) { q[0, h, i, c] += 5f; k[0, h, i, c] -= 3f; v[0, h, i, c] *= -2f; }
        var after = Tensor.ScaledDotProductAttention(q, k, v, options).ToArray();
        for (int h = 0; h < nh; h++)
            for (int i = 0; i <= cut; i++)
                for (int c = 0; c < hs; c++)
                {
                    int at = (h * t + i) * hs + c;
                    Assert.Equal(before[at], after[at]);
                }
    }

    [Fact]
    public void DropoutMatchesSoftmaxThenDropoutWithTheSameGenerator()
    {
        // The mask is the dropout op's stream over the (B, NH, Tq, Tk) weights, so the op equals its composition.
        var rng = new Generator(9);
        Tensor q = Tensor.Uniform(rng, -1f, 1f, 2, 2, 12, 4), k = Tensor.Uniform(rng, -1f, 1f, 2, 2, 12, 4),
            v = Tensor.Uniform(rng, -1f, 1f, 2, 2, 12, 4);
        var fused = Tensor.ScaledDotProductAttention(q, k, v,
            new AttentionOptions { Causal = true, Dropout = 0.4f, DropoutRng = new Generator(21) });
        var (_, weights) = Tensor.ScaledDotProductAttentionWithWeights(q, k, v, new AttentionOptions { Causal = true });
        var composed = weights.Dropout(0.4f, training: true, new Generator(21)).MatMul(v);
        Close(composed.ToArray(), fused.ToArray(), SamePathsAbs, SamePathsRel, "dropout composition");
    }

    [Fact]
    public void RejectsWhatItCannotDo()
    {
        var rng = new Generator(1);
        var x = Tensor.Uniform(rng, -1f, 1f, 1, 2, 4, 8);
        var flashWeights = Assert.Throws<ArgumentException>(() =>
            Tensor.ScaledDotProductAttentionWithWeights(x, x, x,
                new AttentionOptions { Implementation = AttentionImplementation.Flash }));
        Assert.Contains("plain", flashWeights.Message);
        var mask = Leaf(rng, 4, 4);
        var maskGrad = Assert.Throws<ArgumentException>(() =>
            Tensor.ScaledDotProductAttention(x, x, x, new AttentionOptions { AdditiveMask = mask }));
        Assert.Contains("additive mask", maskGrad.Message);
        Assert.Throws<ArgumentException>(() =>
            Tensor.ScaledDotProductAttention(x, x, x, new AttentionOptions { Dropout = 0.1f }));
        // Per-batch arrays of the wrong size or with values out of range are named, on the split path and the fused one.
        var qkv = Tensor.Uniform(rng, -1f, 1f, 1, 4, 48);
        foreach (var attend in (Func<AttentionOptions, Tensor>[])
                 [o => Tensor.ScaledDotProductAttention(x, x, x, o), o => Tensor.PackedSelfAttention(qkv, 2, o)])
        {
            Assert.Contains("QueryLengths has 2 counts",
                Assert.Throws<ArgumentException>(() => attend(new AttentionOptions { QueryLengths = new[] { 1, 2 } })).Message);
            Assert.Contains("has 5 query rows to compute, outside [0, Tq = 4]",
                Assert.Throws<ArgumentException>(() => attend(new AttentionOptions { QueryLengths = new[] { 5 } })).Message);
            Assert.Contains("the key-padding mask has 3 flags",
                Assert.Throws<ArgumentException>(() => attend(new AttentionOptions { KeyPadding = new bool[3] })).Message);
        }
    }
}
