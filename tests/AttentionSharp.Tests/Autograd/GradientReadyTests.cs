namespace AttentionSharp.Tests.Autograd;

/// <summary>
/// <see cref="Tensor.Backward(Tensor?, Action{Tensor})"/>: each leaf that needs a gradient is reported once, when its
/// gradient is final, in the order the sweep finishes them.
/// </summary>
public class GradientReadyTests
{
    [Fact]
    public void EachLeafIsReportedOnceWithItsFinalGradient()
    {
        var rng = new Generator(7);
        Tensor Leaf(params int[] shape) { var t = Tensor.Randn(rng, shape); t.RequiresGrad = true; return t; }
        var w1 = Leaf(3, 4);
        var w2 = Leaf(4, 2);
        var bias = Leaf(2);
        var x = Tensor.Randn(rng, 5, 3);                          // no gradient: never reported
        // w1 is read twice, in the first product and in the penalty beside the loss: it is done only after the product's
        // rule, the last the sweep runs.
        Tensor Loss()
        {
            var y = x.MatMul(w1).MatMul(w2) + bias;             // (5, 2)
            return (y * y).Sum() + (w1 * w1).Sum();
        }

        var reported = new List<(Tensor Leaf, float[] Gradient)>();
        Loss().Backward(null, leaf => reported.Add((leaf, leaf.Grad!.Data.ToArray())));

        Assert.Equal([bias, w2, w1], reported.Select(r => r.Leaf));
        foreach (var (leaf, gradient) in reported) Assert.Equal(leaf.Grad!.Data.ToArray(), gradient);

        // The same gradients as a backward without reports.
        var expected = reported.Select(r => r.Gradient).ToArray();
        foreach (var p in new[] { w1, w2, bias }) p.ZeroGrad();
        Loss().Backward();
        Assert.Equal(expected, reported.Select(r => r.Leaf.Grad!.Data.ToArray()).ToArray());
    }

    [Fact]
    public void TheReportIsRequired() =>
        Assert.Throws<ArgumentNullException>(() => Tensor.Scalar(1f).Backward(null, null!));
}
