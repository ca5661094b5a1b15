using AttentionSharp.Kernels;

namespace AttentionSharp.Tests.Kernels;

/// <summary>
/// A few literal values computed with PyTorch 1.13 (float32, CPU) — torch.nn.functional.gelu (both forms), softmax,
/// layer_norm, cross_entropy with label_smoothing, and torch.optim.AdamW — as an anchor independent of the reference twins.
/// </summary>
[Trait("Category", "Kernels")]
public class TorchValueTests
{
    // float32 results of PyTorch vs ours: a few ulp of O(1) values; AdamW also differs in lr = 0.1 (double) vs 0.1f.
    const double Tol = 2e-6;

    [Fact]
    public void GeluMatchesTorch()
    {
        float[] x = [1.5f, -2.5f];
        var y = new float[2];
        Gelu.Forward(y, x, GeluApproximation.None);
        Assert.Equal(1.3997890949249268, y[0], Tol);
        Assert.Equal(-0.015524178743362427, y[1], Tol);
        float[] xt = [-0.7f, 3.0f];
        Gelu.Forward(y, xt, GeluApproximation.Tanh);
        Assert.Equal(-0.16942985355854034, y[0], Tol);
        Assert.Equal(2.9963626861572266, y[1], Tol);
    }

    [Fact]
    public void SoftmaxLayerNormAndCrossEntropyMatchTorch()
    {
        var y = new float[4];
        Softmax.Forward(y, [1f, 2f, 3f, -1f], 1, 4);
        Assert.Equal(0.08894681185483932, y[0], Tol);
        Assert.Equal(0.012037642300128937, y[3], Tol);

        LayerNorm.Forward(y, new float[1], new float[1], [0.5f, -1f, 2f, 3.5f], [1f, 0.5f, -2f, 1.5f], [0.1f, 0.2f, 0.3f, -0.4f], 1, 4, 1e-5f);
        Assert.Equal(-0.4708191752433777, y[1], Tol);
        Assert.Equal(1.6124576330184937, y[3], Tol);

        var (loss, lse) = (new float[1], new float[1]);
        CrossEntropy.Forward(loss, lse, [2f, -1f, 0.5f, 0f, 1f], [2], 1, 5, -100, 0.1f);
        Assert.Equal(2.0744380950927734, loss[0], Tol);
    }

    [Fact]
    public void AdamWMatchesTorchAfterThreeSteps()
    {
        float[] p = [0.5f, -1f], m = new float[2], v = new float[2];
        float[][] grads = [[0.3f, -0.2f], [0.1f, 0.4f], [-0.5f, 0.05f]];
        for (int t = 1; t <= 3; t++) AdamW.Step(p, grads[t - 1], m, v, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
        Assert.Equal(0.32971954345703125, p[0], Tol);
    }
}
