using AttentionSharp.Kernels;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;
using static AttentionSharp.Tests.Nn.LayerTestKit;

namespace AttentionSharp.Tests.Nn;

/// <summary>The feed-forward block equals its formula written out with the engine's ops, for every activation.</summary>
public class FeedForwardTests
{
    [Theory]
    [InlineData(FeedForwardActivation.Relu)]
    [InlineData(FeedForwardActivation.Gelu)]
    [InlineData(FeedForwardActivation.GeluTanh)]
    [InlineData(FeedForwardActivation.SwiGlu)]
    public void EqualsItsFormula(FeedForwardActivation activation)
    {
        var ffn = new FeedForward(8, 20, activation, new Generator(41));
        var x = Random(42, 2, 3, 8);
        Tensor Lin(Linear l, Tensor t) => Tensor.Linear(t, l.Weight, l.Bias);
        var hidden = activation switch
        {
            FeedForwardActivation.Relu => Lin(ffn.Up, x).Relu(),                               // max(0, xW₁ + b₁)
            FeedForwardActivation.Gelu => Lin(ffn.Up, x).Gelu(GeluApproximation.None),
            FeedForwardActivation.GeluTanh => Lin(ffn.Up, x).Gelu(GeluApproximation.Tanh),
            _ => Lin(ffn.Gate!, x).Silu() * Lin(ffn.Up, x),                                    // SiLU(xW_gate) ⊙ xW_up
        };
        TensorAssert.Close(Lin(ffn.Down, hidden), ffn.Forward(x), 1e-6, 0, $"{activation} FFN");
    }

    /// <summary>
    /// The fused GELU + W₂ op keeps less and computes the same bits as the two ops, forward and backward: when h's
    /// gradient starts in it (the erf form then forms GELU and GELU′ in one pass) and when it adds to one already there
    /// (a second backward pass).
    /// </summary>
    [Theory]
    [InlineData(GeluApproximation.None)]
    [InlineData(GeluApproximation.Tanh)]
    public void GeluLinearEqualsGeluThenLinearBitForBit(GeluApproximation approximation)
    {
        var results = new List<float[][]>();
        foreach (bool fused in new[] { false, true })
        {
            var rng = new Generator(43);
            var h = Tensor.Uniform(rng, -3f, 3f, 3, 7, 37); var w = Tensor.Uniform(rng, -1f, 1f, 19, 37); var b = Tensor.Uniform(rng, -1f, 1f, 19);
            foreach (var p in new[] { h, w, b }) p.RequiresGrad = true;
            for (int pass = 0; pass < 2; pass++)
            {
                var y = fused ? Tensor.GeluLinear(h, w, b, approximation) : Tensor.Linear(h.Gelu(approximation), w, b);
                (y * Tensor.Uniform(new Generator(44 + (ulong)pass), -1f, 1f, y.Shape)).Sum().Backward();
                results.Add([y.ToArray(), h.Grad!.ToArray(), w.Grad!.ToArray(), b.Grad!.ToArray()]);
            }
        }
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < 4; i++) Assert.Equal(results[pass][i], results[2 + pass][i]);
    }

    /// <summary>
    /// GELU as an op of its own forms GELU′ with GELU where a gradient will be wanted (the erf form): the value, and the
    /// gradient when it starts there and when it adds to one already there, have the kernels' bits, and the value is the
    /// same without a gradient.
    /// </summary>
    [Theory]
    [InlineData(GeluApproximation.None)]
    [InlineData(GeluApproximation.Tanh)]
    public void GeluOpGivesTheKernelsBits(GeluApproximation approximation)
    {
        foreach (int n in new[] { 205, 100_003 }) // a tail, and threads
        {
            var x = Tensor.Uniform(new Generator(49), -9f, 9f, n, 1);
            x.RequiresGrad = true;
            var expectedY = new float[n];
            Gelu.Forward(expectedY, x.ToArray(), approximation);
            using (AttentionSharp.Autograd.GradMode.NoGrad()) Assert.Equal(expectedY, x.Gelu(approximation).ToArray());
            var expectedDx = new float[n];
            for (int pass = 0; pass < 2; pass++)
            {
                var y = x.Gelu(approximation);
                Assert.Equal(expectedY, y.ToArray());
                var dy = Tensor.Uniform(new Generator(50 + (ulong)pass), -1f, 1f, n, 1);
                y.Backward(dy);
                Gelu.Backward(expectedDx, dy.ToArray(), x.ToArray(), approximation, accumulate: pass > 0);
                Assert.Equal(expectedDx, x.Grad!.ToArray());
            }
        }
    }

    /// <summary>
    /// A residual added inside the product equals the separate sum, forward and every gradient, the residual's included;
    /// a residual of the wrong shape is refused by name.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ResidualInsideLinearEqualsSeparateAdd(bool gelu)
    {
        var results = new List<float[][]>();
        foreach (bool fused in new[] { false, true })
        {
            var rng = new Generator(45);
            // 700 rows: the product is threaded and takes the packed path, not the few-rows one.
            var h = Tensor.Uniform(rng, -3f, 3f, 7, 100, 37); var w = Tensor.Uniform(rng, -1f, 1f, 19, 37);
            var b = Tensor.Uniform(rng, -1f, 1f, 19); var r = Tensor.Uniform(rng, -1f, 1f, 7, 100, 19);
            foreach (var p in new[] { h, w, b, r }) p.RequiresGrad = true;
            var y = (fused, gelu) switch
            {
                (true, true) => Tensor.GeluLinear(h, w, b, GeluApproximation.Tanh, r),
                (true, false) => Tensor.Linear(h, w, b, r),
                (false, true) => r + Tensor.GeluLinear(h, w, b, GeluApproximation.Tanh),
                (false, false) => r + Tensor.Linear(h, w, b),
            };
            (y * Tensor.Uniform(new Generator(46), -1f, 1f, y.Shape)).Sum().Backward();
            results.Add([y.ToArray(), h.Grad!.ToArray(), w.Grad!.ToArray(), b.Grad!.ToArray(), r.Grad!.ToArray()]);
        }
        // One slice of k: the fused product adds bias, then the residual, to each dot product, as the separate ops do.
        for (int i = 0; i < 5; i++) Assert.Equal(results[0][i], results[1][i]);
        var e = Assert.Throws<ArgumentException>(() => Tensor.Linear(Tensor.Zeros(2, 3), Tensor.Zeros(4, 3), null, Tensor.Zeros(2, 3)));
        Assert.Contains("residual", e.Message);
    }

    /// <summary>
    /// LayerNorm inside the projection equals LayerNorm then Linear bit for bit, forward and every gradient; a norm
    /// weight of the wrong size is refused by name.
    /// </summary>
    [Fact]
    public void LayerNormLinearEqualsLayerNormThenLinearBitForBit()
    {
        var results = new List<float[][]>();
        foreach (bool fused in new[] { false, true })
        {
            var rng = new Generator(47);
            var x = Tensor.Uniform(rng, -3f, 3f, 7, 100, 37); var g = Tensor.Uniform(rng, 0.5f, 1.5f, 37); var be = Tensor.Uniform(rng, -1f, 1f, 37);
            var w = Tensor.Uniform(rng, -1f, 1f, 19, 37); var b = Tensor.Uniform(rng, -1f, 1f, 19);
            foreach (var p in new[] { x, g, be, w, b }) p.RequiresGrad = true;
            var y = fused ? Tensor.LayerNormLinear(x, g, be, 1e-5f, w, b) : Tensor.Linear(Tensor.LayerNorm(x, g, be, 1e-5f), w, b);
            (y * Tensor.Uniform(new Generator(48), -1f, 1f, y.Shape)).Sum().Backward();
            results.Add([y.ToArray(), x.Grad!.ToArray(), g.Grad!.ToArray(), be.Grad!.ToArray(), w.Grad!.ToArray(), b.Grad!.ToArray()]);
        }
        for (int i = 0; i < 6; i++) Assert.Equal(results[0][i], results[1][i]);
        var e = Assert.Throws<ArgumentException>(() => Tensor.LayerNormLinear(Tensor.Zeros(2, 3), Tensor.Ones(4), null, 1e-5f, Tensor.Zeros(4, 3), null));
        Assert.Contains("normWeight", e.Message);
    }

    [Fact]
    public void ParameterNamesFollowTorchAndLlama()
    {
        Assert.Equal(["linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"],
            new FeedForward(4, 8, FeedForwardActivation.Relu, new Generator(1)).NamedParameters().Select(p => p.Name));
        Assert.Equal(["gate_proj.weight", "up_proj.weight", "down_proj.weight"],
            new FeedForward(4, 8, FeedForwardActivation.SwiGlu, new Generator(1), bias: false).NamedParameters().Select(p => p.Name));
    }

    [Fact]
    public void DropoutActsOnlyInTraining()
    {
        var ffn = new FeedForward(8, 16, FeedForwardActivation.Gelu, new Generator(43), dropout: 0.5f);
        var x = Random(44, 1, 4, 8);
        Assert.True(MaxDifference(ffn.Forward(x), ffn.Forward(x)) > 1e-3);
        ffn.Eval();
        TensorAssert.Close(ffn.Forward(x), ffn.Forward(x), 0, 0, "evaluation is deterministic");
    }

    [Fact]
    public void EncoderAndDecoderLayersUseTorchNames()
    {
        var config = Tiny();
        var enc = new TransformerEncoderLayer(config, new Generator(1)).NamedParameters().Select(p => p.Name).ToList();
        Assert.Contains("self_attn.in_proj_weight", enc);
        Assert.Contains("ffn.linear1.weight", enc);
        Assert.Contains("norm2.bias", enc);
        var dec = new TransformerDecoder(config with { PositionalEncoding = PositionalEncodingKind.Learned }, new Generator(1)).NamedParameters().Select(p => p.Name).ToList();
        Assert.Contains("positions.weight", dec);
        Assert.Contains("layers.1.multihead_attn.out_proj.weight", dec);
        Assert.Contains("layers.0.norm3.weight", dec);
        Assert.Contains("norm.weight", dec);
    }
}
