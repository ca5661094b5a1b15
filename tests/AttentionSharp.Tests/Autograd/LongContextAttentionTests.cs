using AttentionSharp.Autograd;
using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;

namespace AttentionSharp.Tests.Autograd;

/// <summary>
/// Sliding-window attention (with global tokens) and linear attention as ops: finite differences, and equality with the
/// plain attention path given the corresponding materialised mask, or with linear attention composed from elementary ops.
/// </summary>
public class LongContextAttentionTests
{
    // Different summation orders (tiles, chunks, GEMM blocks) of the same float sums.
    const double SameAbs = 2e-5, SameRel = 1e-4;

    static Tensor Leaf(Generator rng, params int[] shape) => GradCheckTests.Leaf(rng, shape);

    static Tensor Heads(Tensor x, int heads) => AttentionTests.Heads(x, heads);

    public static TheoryData<string, AttentionImplementation> WindowGradCases()
    {
        var data = new TheoryData<string, AttentionImplementation>();
        foreach (var name in new[] { "causal", "bidirectional", "global", "gqa", "cache" })
            foreach (var impl in new[] { AttentionImplementation.Plain, AttentionImplementation.Flash })
                data.Add(name, impl);
        return data;
    }

    [Theory]
    [MemberData(nameof(WindowGradCases))]
    public void SlidingWindowMatchesFiniteDifferences(string name, AttentionImplementation impl)
    {
        var rng = new Generator(31);
        var o = new AttentionOptions { Implementation = impl, Window = 2 };
        Tensor q = Leaf(rng, 1, 2, 7, 3), k = Leaf(rng, 1, 2, 7, 3), v = Leaf(rng, 1, 2, 7, 3);
        switch (name)
        {
            case "causal": o = o with { Causal = true }; break;
            case "bidirectional": break;
            case "global": o = o with { Causal = true, GlobalTokens = new[] { 0, 4 } }; break;
            case "gqa": k = Leaf(rng, 1, 1, 7, 3); v = Leaf(rng, 1, 1, 7, 3); o = o with { GlobalTokens = new[] { 3 } }; break;
            case "cache": q = Leaf(rng, 1, 2, 2, 3); o = o with { Causal = true, Window = 3, GlobalTokens = new[] { 1 } }; break;
        }
        var report = GradCheck.Check(x => Tensor.ScaledDotProductAttention(x[0], x[1], x[2], o), [q, k, v]);
        Assert.True(report.Passed, $"window {name} {impl}: {report}");
    }

    public static TheoryData<string> LinearGradCases() => ["causal", "non-causal", "gqa", "cache", "cross", "views"];

    [Theory]
    [MemberData(nameof(LinearGradCases))]
    public void LinearMatchesFiniteDifferences(string name)
    {
        var rng = new Generator(37);
        Tensor q = Leaf(rng, 2, 2, 6, 3), k = Leaf(rng, 2, 2, 6, 3), v = Leaf(rng, 2, 2, 6, 3);
        bool causal = name != "non-causal" && name != "cross";
        Func<Tensor[], Tensor> f = x => Tensor.LinearAttention(x[0], x[1], x[2], causal);
        switch (name)
        {
            case "gqa": k = Leaf(rng, 2, 1, 6, 3); v = Leaf(rng, 2, 1, 6, 3); break;
            case "cache": q = Leaf(rng, 2, 2, 2, 3); break;
            case "cross": q = Leaf(rng, 2, 2, 4, 3); k = Leaf(rng, 2, 2, 7, 3); v = Leaf(rng, 2, 2, 7, 3); break;
            case "views":
                q = Leaf(rng, 2, 5, 6); k = Leaf(rng, 2, 5, 6); v = Leaf(rng, 2, 5, 6);
                f = x => Tensor.LinearAttention(Heads(x[0], 2), Heads(x[1], 2), Heads(x[2], 2), causal: true);
                break;
        }
        var report = GradCheck.Check(f, [q, k, v]);
        Assert.True(report.Passed, $"linear {name}: {report}");
    }

    /// <summary>The Longformer mask written out: 0 where query i may see key j, −∞ elsewhere, (Tq, Tk).</summary>
    static Tensor WindowMask(int tq, int tk, int window, bool causal, int[] global)
    {
        var m = new float[tq * tk];
        for (int i = 0; i < tq; i++)
            for (int j = 0; j < tk; j++)
            {
                int pos = i + tk - tq;
                bool sees = Math.Abs(pos - j) < window || global.Contains(pos) || global.Contains(j);
                if (causal && j > pos) sees = false;
                m[i * tk + j] = sees ? 0f : float.NegativeInfinity;
            }
        return Tensor.FromArray(m, tq, tk);
    }

    public static TheoryData<string, int, int, int, bool, int[]> WindowCases() => new()
    {
        { "causal", 150, 150, 33, true, [] },
        { "bidirectional", 131, 131, 20, false, [] },
        { "causal + global", 200, 200, 17, true, [0, 65, 199] },
        { "bidirectional + global", 97, 97, 8, false, [1, 50] },
        { "decoding step", 3, 140, 64, true, [0] },
    };

    [Theory]
    [MemberData(nameof(WindowCases))]
    public void SlidingWindowEqualsPlainWithTheMaterialisedMask(string name, int tq, int tk, int window, bool causal, int[] global)
    {
        int b = 2, nh = 4, nkv = 2, hs = 16;
        var results = new List<float[][]>();
        foreach (bool windowed in new[] { false, true })
        {
            var rng = new Generator(3);
            Tensor q = Leaf(rng, b, tq, nh * hs), k = Leaf(rng, b, tk, nkv * hs), v = Leaf(rng, b, tk, nkv * hs);
            var options = windowed
                ? new AttentionOptions { Causal = causal, Window = window, GlobalTokens = global, Implementation = AttentionImplementation.Flash }
                : new AttentionOptions { AdditiveMask = WindowMask(tq, tk, window, causal, global), Implementation = AttentionImplementation.Plain };
            var y = Tensor.ScaledDotProductAttention(Heads(q, nh), Heads(k, nkv), Heads(v, nkv), options);
            using var w = Tensor.Uniform(new Generator(4), -1f, 1f, y.Shape);
            (y * w).Sum().Backward();
            results.Add([y.ToArray(), q.Grad!.ToArray(), k.Grad!.ToArray(), v.Grad!.ToArray()]);
        }
        string[] what = ["O", "dQ", "dK", "dV"];
        for (int i = 0; i < 4; i++) Close(results[0][i], results[1][i], SameAbs, SameRel, $"{name}: {what[i]} window (flash) vs plain + mask");
    }

    /// <summary>φ(x) = elu(x) + 1 from elementary ops: relu(x) + exp(−relu(−x)).</summary>
    static Tensor Phi(Tensor x) => x.Relu() + (-(-x).Relu()).Exp();

    [Theory]
    [InlineData(true, 70, 70)]
    [InlineData(true, 5, 131)]
    [InlineData(false, 33, 90)]
    public void LinearEqualsTheExplicitFeatureMapForm(bool causal, int tq, int tk)
    {
        int b = 2, nh = 2, hs = 8;
        var results = new List<float[][]>();
        foreach (bool fused in new[] { false, true })
        {
            var rng = new Generator(5);
            Tensor q = Leaf(rng, b, nh, tq, hs), k = Leaf(rng, b, nh, tk, hs), v = Leaf(rng, b, nh, tk, hs);
            Tensor y;
            if (fused) y = Tensor.LinearAttention(q, k, v, causal);
            else
            {
                // W = φ(Q)·φ(K)ᵀ (masked), O = W·V / (rowsum W + ε)
                var weights = Phi(q).MatMul(Phi(k).Transpose(2, 3));                                    // (B, NH, Tq, Tk)
                if (causal)
                {
                    var keep = new float[tq * tk];
                    for (int i = 0; i < tq; i++) for (int j = 0; j <= i + tk - tq; j++) keep[i * tk + j] = 1f;
                    weights = weights * Tensor.FromArray(keep, tq, tk);
                }
                y = weights.MatMul(v) / (weights.Sum(3, keepDim: true) + AttentionLinear.Epsilon);
            }
            using var w = Tensor.Uniform(new Generator(6), -1f, 1f, y.Shape);
            (y * w).Sum().Backward();
            results.Add([y.ToArray(), q.Grad!.ToArray(), k.Grad!.ToArray(), v.Grad!.ToArray()]);
        }
        string[] what = ["O", "dQ", "dK", "dV"];
        for (int i = 0; i < 4; i++) Close(results[0][i], results[1][i], SameAbs, SameRel, $"linear causal={causal} {tq}×{tk}: {what[i]} op vs explicit");
    }

    [Theory]
    [InlineData(70)]
    [InlineData(1)]
    [InlineData(64)]
    public void TheRecurrentStepContinuesTheCausalForm(int split)
    {
        // Grouped-query heads, a first part then the rest through the state, against one causal pass over everything.
        int t = 100;
        var rng = new Generator(12);
        Tensor q = Tensor.Uniform(rng, -2f, 2f, 2, 4, t, 8), k = Tensor.Uniform(rng, -2f, 2f, 2, 2, t, 8), v = Tensor.Uniform(rng, -1f, 1f, 2, 2, t, 8);
        using (GradMode.NoGrad())
        {
            var full = Tensor.LinearAttention(q, k, v, causal: true);
            var state = Tensor.Zeros(2, 2, 8 * 8 + 8);
            var first = Tensor.LinearAttentionStep(q.Narrow(2, 0, split), k.Narrow(2, 0, split), v.Narrow(2, 0, split), state);
            var rest = Tensor.LinearAttentionStep(q.Narrow(2, split, t - split), k.Narrow(2, split, t - split), v.Narrow(2, split, t - split), state);
            Close(full.Narrow(2, 0, split).Contiguous().ToArray(), first.ToArray(), SameAbs, SameRel, $"first {split}");
            Close(full.Narrow(2, split, t - split).Contiguous().ToArray(), rest.ToArray(), SameAbs, SameRel, $"rest after {split}");
        }
    }

    [Fact]
    public void CausalWindowOutputIgnoresLaterInputsAndKeysOutsideTheWindow()
    {
        int t = 90, hs = 8, window = 10, at = 50;
        var rng = new Generator(8);
        var q = Tensor.Uniform(rng, -1f, 1f, 1, 1, t, hs);
        var k = Tensor.Uniform(rng, -1f, 1f, 1, 1, t, hs);
        var v = Tensor.Uniform(rng, -1f, 1f, 1, 1, t, hs);
        var options = new AttentionOptions { Causal = true, Window = window };
        var before = Tensor.ScaledDotProductAttention(q, k, v, options).ToArray();
        // Keys 0 … at − window are outside query at's window: changing them must not move its output.
        for (int j = 0; j <= at - window; j++) for (int c = 0; c < hs; c++) { k[0, 0, j, c] += 3f; v[0, 0, j, c] -= 2f; }
        var after = Tensor.ScaledDotProductAttention(q, k, v, options).ToArray();
        for (int c = 0; c < hs; c++) Assert.Equal(before[at * hs + c], after[at * hs + c]);
        // …but they do move a query whose window holds them.
        Assert.NotEqual(before[(at - window) * hs], after[(at - window) * hs]);
    }

    [Fact]
    public void RejectsWhatItCannotDo()
    {
        var x = Tensor.Uniform(new Generator(1), -1f, 1f, 1, 2, 4, 8);
        var e = Assert.Throws<ArgumentException>(() => Tensor.ScaledDotProductAttention(x, x, x, new AttentionOptions { GlobalTokens = new[] { 0 } }));
        Assert.Contains("global tokens", e.Message);
        e = Assert.Throws<ArgumentException>(() => Tensor.ScaledDotProductAttention(x, x, x, new AttentionOptions { Window = 2, GlobalTokens = new[] { 4 } }));
        Assert.Contains("position 4", e.Message);
        e = Assert.Throws<ArgumentException>(() => Tensor.ScaledDotProductAttention(x, x, x, new AttentionOptions { Window = -1 }));
        Assert.Contains("window", e.Message);
        var longer = Tensor.Uniform(new Generator(2), -1f, 1f, 1, 2, 5, 8);
        e = Assert.Throws<ArgumentException>(() => Tensor.LinearAttention(longer, x, x, causal: true));
        Assert.Contains("Tq = 5 > Tk = 4", e.Message);
    }
}
