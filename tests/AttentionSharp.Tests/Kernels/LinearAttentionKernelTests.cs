using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

/// <summary>The chunked linear-attention kernel against its explicit T×T twin.</summary>
[Trait("Category", "Kernels")]
public unsafe class LinearAttentionKernelTests
{
    // Outputs are ratios of sums of up to a few hundred positive O(1) terms, accumulated in chunks vs. in double.
    const double OutputAbsTol = 2e-5, OutputRelTol = 1e-4;
    // Gradients: sums of a few hundred products, and the state carried across chunks in float.
    const double GradientAbsTol = 1e-4, GradientRelTol = 1e-3;

    public sealed record Case(string Name, int B, int NH, int NKV, int Tq, int Tk, int HS, bool Causal, bool Strided = false)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<Case> Cases() =>
    [
        new("causal T = 1", 1, 2, 2, 1, 1, 8, true),
        new("causal one chunk less one", 2, 2, 2, 63, 63, 16, true),
        new("causal one chunk", 1, 2, 2, 64, 64, 16, true),
        new("causal chunk + 1", 1, 2, 2, 65, 65, 7, true),
        new("causal 3 chunks + tail", 2, 3, 3, 200, 200, 16, true),
        new("non-causal", 2, 2, 2, 130, 130, 16, false),
        new("non-causal cross Tq ≠ Tk", 1, 2, 2, 9, 150, 7, false),
        new("non-causal Tq > Tk", 1, 2, 2, 100, 33, 7, false),
        new("cache-style causal", 1, 2, 2, 5, 130, 16, true),
        new("causal Tq < Tk, shift off the chunk grid", 1, 2, 2, 70, 201, 16, true),
        new("GQA 4/2 causal", 2, 4, 2, 100, 100, 16, true),
        new("MQA 3/1 non-causal", 1, 3, 1, 70, 70, 7, false),
        new("HS = 1", 1, 2, 2, 80, 80, 1, true),
        new("HS = 64", 1, 2, 2, 129, 129, 64, true),
        new("strided views", 2, 4, 2, 90, 90, 16, true, Strided: true),
    ];

    sealed record Results(float[] O, float[] Dq, float[] Dk, float[] Dv);

    static AttentionProblem Problem(Case c) => new()
    {
        Batch = c.B, Heads = c.NH, KvHeads = c.NKV, QueryLength = c.Tq, KeyLength = c.Tk, HeadSize = c.HS, Causal = c.Causal,
    };

    static float[] Start(int n, int seed) => Uniform(new Random(seed), n, 0.5f);

    /// <summary>Strided cases store (B, T, H, HS) with 5 spare floats per row and view it as (B, H, T, HS).</summary>
    static float[] Layout(Case c, float[] dense, int heads, int time)
    {
        if (!c.Strided) return dense;
        int row = heads * c.HS + 5;
        var store = new float[c.B * time * row];
        for (int b = 0; b < c.B; b++)
            for (int h = 0; h < heads; h++)
                for (int t = 0; t < time; t++)
                    for (int d = 0; d < c.HS; d++)
                        store[(b * time + t) * row + h * c.HS + d] = dense[((b * heads + h) * time + t) * c.HS + d];
        return store;
    }

    static HeadTensor View(Case c, float* p, int heads, int time) => c.Strided
        ? new HeadTensor(p, (long)time * (heads * c.HS + 5), c.HS, heads * c.HS + 5)
        : HeadTensor.Dense(p, heads, time, c.HS);

    static (float[] Q, float[] K, float[] V, float[] DO) Operands(Case c, int seed)
    {
        var rng = new Random(seed);
        // Scale 2 puts about half of the inputs below 0, so both branches of φ run.
        return (Uniform(rng, c.B * c.NH * c.Tq * c.HS, 2f), Uniform(rng, c.B * c.NKV * c.Tk * c.HS, 2f),
            Uniform(rng, c.B * c.NKV * c.Tk * c.HS, 1f), Uniform(rng, c.B * c.NH * c.Tq * c.HS, 1f));
    }

    static Results Reference(Case c, (float[] Q, float[] K, float[] V, float[] DO) x)
    {
        var o = new float[x.DO.Length];
        float[] dq = Start(x.Q.Length, 1), dk = Start(x.K.Length, 2), dv = Start(x.V.Length, 3);
        var p = Problem(c);
        Ref.LinearAttention.Forward(o, x.Q, x.K, x.V, in p);
        Ref.LinearAttention.Backward(dq, dk, dv, x.DO, x.Q, x.K, x.V, in p);
        return new Results(o, dq, dk, dv);
    }

    static Results Kernel(Case c, (float[] Q, float[] K, float[] V, float[] DO) x)
    {
        var o = new float[x.DO.Length];
        var den = new float[c.B * c.NH * c.Tq];
        float[] dq = Start(x.Q.Length, 1), dk = Start(x.K.Length, 2), dv = Start(x.V.Length, 3);
        float[] qs = Layout(c, x.Q, c.NH, c.Tq), ks = Layout(c, x.K, c.NKV, c.Tk), vs = Layout(c, x.V, c.NKV, c.Tk);
        fixed (float* q = qs, k = ks, v = vs, po = o, pd = den, pdo = x.DO, pdq = dq, pdk = dk, pdv = dv)
        {
            var p = Problem(c);
            HeadTensor hq = View(c, q, c.NH, c.Tq), hk = View(c, k, c.NKV, c.Tk), hv = View(c, v, c.NKV, c.Tk);
            HeadTensor ho = HeadTensor.Dense(po, c.NH, c.Tq, c.HS);
            AttentionLinear.Forward(in p, hq, hk, hv, ho, pd);
            AttentionLinear.Backward(in p, hq, hk, hv, ho, pd, HeadTensor.Dense(pdo, c.NH, c.Tq, c.HS),
                HeadTensor.Dense(pdq, c.NH, c.Tq, c.HS), HeadTensor.Dense(pdk, c.NKV, c.Tk, c.HS), HeadTensor.Dense(pdv, c.NKV, c.Tk, c.HS));
        }
        return new Results(o, dq, dk, dv);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTheExplicitForm(Case c)
    {
        var x = Operands(c, c.Name.Length * 17 + c.Tq);
        var expected = Reference(c, x);
        var actual = Kernel(c, x);
        string what = $"{c} ({ActiveWidth})";
        Close(expected.O, actual.O, OutputAbsTol, OutputRelTol, $"{what}: O");
        Close(expected.Dq, actual.Dq, GradientAbsTol, GradientRelTol, $"{what}: dQ");
        Close(expected.Dk, actual.Dk, GradientAbsTol, GradientRelTol, $"{what}: dK");
        Close(expected.Dv, actual.Dv, GradientAbsTol, GradientRelTol, $"{what}: dV");
    }

    [Fact]
    public void ResultsDoNotDependOnThreadCount()
    {
        var c = new Case("threads", 2, 4, 2, 130, 130, 16, true, Strided: true);
        var x = Operands(c, 3);
        int saved = AttentionSharp.Kernels.Parallel.ThreadCount;
        try
        {
            AttentionSharp.Kernels.Parallel.ThreadCount = 1;
            var one = Kernel(c, x);
            AttentionSharp.Kernels.Parallel.ThreadCount = 3;
            var three = Kernel(c, x);
            Assert.Equal(one.O, three.O);
            Assert.Equal(one.Dq, three.Dq);
            Assert.Equal(one.Dk, three.Dk);
            Assert.Equal(one.Dv, three.Dv);
        }
        finally { AttentionSharp.Kernels.Parallel.ThreadCount = saved; }
    }

    [Fact]
    public void HugeNegativeInputsStayFinite()
    {
        // φ underflows to 0 for q, k ≪ 0: the ε in the denominator keeps O finite (and 0).
        var c = new Case("underflow", 1, 1, 1, 70, 70, 4, true);
        var x = Operands(c, 5);
        Array.Fill(x.Q, -200f);
        Array.Fill(x.K, -200f);
        var r = Kernel(c, x);
        Assert.All(r.O, v => Assert.Equal(0f, v));
        Assert.All(r.Dq.Concat(r.Dk).Concat(r.Dv), v => Assert.True(float.IsFinite(v), $"gradient {v} is not finite"));
    }

    [Fact]
    public void RejectsMasksItCannotApply()
    {
        var p = new AttentionProblem { Batch = 1, Heads = 1, KvHeads = 1, QueryLength = 4, KeyLength = 4, HeadSize = 2, Window = 2 };
        var e = Assert.Throws<ArgumentException>(() => AttentionLinear.Forward(in p, default, default, default, default, null));
        Assert.Contains("only the causal mask", e.Message);
        var tooMany = p with { Window = 0, Causal = true, QueryLength = 5 };
        e = Assert.Throws<ArgumentException>(() => AttentionLinear.Forward(in tooMany, default, default, default, default, null));
        Assert.Contains("Tq = 5 > Tk = 4", e.Message);
    }
}
