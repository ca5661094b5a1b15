using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Nn;

/// <summary>
/// Unfold2d (im2col) and the Conv2d built on it against direct loops; its backward as the exact adjoint of its forward;
/// the patch cut as the reshape it replaced; clear errors. PyTorch parity is in EngineParityTests and ModelsParityTests.
/// </summary>
public class Conv2dTests
{
    /// <summary>x[b, c, i, j], or 0 outside the image.</summary>
    static float At(float[] x, int channels, int h, int w, int b, int c, int i, int j) =>
        (uint)i < (uint)h && (uint)j < (uint)w ? x[((b * channels + c) * h + i) * w + j] : 0f;

    /// <summary>
    /// Every entry of the windows (B, Ho·Wo, Ch·K·K) of a (B, Ch, H, W) image: its flat index, and the pixel (b, c, i, j)
    /// it reads, where i or j may lie in the padding.
    /// </summary>
    static IEnumerable<(int Entry, int B, int C, int I, int J)> Entries(int batch, int channels, int h, int w, int k, int stride,
        int pad)
    {
        int ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
        for (int b = 0; b < batch; b++)
            for (int oi = 0; oi < ho; oi++)
                for (int oj = 0; oj < wo; oj++)
                    for (int c = 0; c < channels; c++)
                        for (int i = 0; i < k; i++)
                            for (int j = 0; j < k; j++)
                                yield return (((b * ho + oi) * wo + oj) * channels * k * k + (c * k + i) * k + j, b, c,
                                              oi * stride - pad + i, oj * stride - pad + j);
    }

    [Theory]
    [InlineData(2, 3, 5, 7, 3, 2, 1)]
    [InlineData(1, 1, 6, 6, 3, 1, 1)]
    [InlineData(3, 2, 7, 4, 3, 2, 2)]
    [InlineData(2, 4, 8, 8, 4, 4, 0)]
    [InlineData(1, 2, 5, 5, 2, 3, 1)]
    public void UnfoldReadsEveryWindowAndZerosOutsideTheImage(int batch, int channels, int h, int w, int k, int stride, int pad)
    {
        using var images = Tensor.Randn(new Generator(3), batch, channels, h, w);
        var x = images.ToArray();
        using var windows = images.Unfold2d(k, stride, pad);
        int ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
        Assert.Equal([batch, ho * wo, channels * k * k], windows.Shape.ToArray());
        var y = windows.ToArray();
        foreach (var e in Entries(batch, channels, h, w, k, stride, pad))
            Assert.Equal(At(x, channels, h, w, e.B, e.C, e.I, e.J), y[e.Entry]);
    }

    [Theory]
    [InlineData(2, 3, 5, 7, 3, 2, 1)]
    [InlineData(1, 2, 6, 5, 3, 1, 2)]
    [InlineData(2, 1, 8, 8, 2, 2, 0)]
    public void UnfoldBackwardIsTheAdjointOfForward(int batch, int channels, int h, int w, int k, int stride, int pad)
    {
        // ⟨Unfold(x), g⟩ = ⟨x, Unfoldᵀ(g)⟩ for any x and g: the backward sums each window gradient onto its pixels.
        var rng = new Generator(5);
        var x = Tensor.Randn(rng, batch, channels, h, w);
        x.RequiresGrad = true;
        var windows = x.Unfold2d(k, stride, pad);
        var g = Tensor.Randn(rng, windows.Shape.ToArray());
        (windows * g).Sum().Backward();
        double lhs = windows.ToArray().Zip(g.ToArray(), (a, b) => (double)a * b).Sum();
        double rhs = x.ToArray().Zip(x.Grad!.ToArray(), (a, b) => (double)a * b).Sum();
        Assert.Equal(lhs, rhs, 1e-3);
        // Every gradient entry is the sum of the window entries that read that pixel.
        var expected = new double[x.Count];
        var gv = g.ToArray();
        foreach (var e in Entries(batch, channels, h, w, k, stride, pad))
            if ((uint)e.I < (uint)h && (uint)e.J < (uint)w) expected[((e.B * channels + e.C) * h + e.I) * w + e.J] += gv[e.Entry];
        TensorAssert.Close([.. expected.Select(v => (float)v)], x.Grad!.ToArray(), 1e-5, 1e-5, "col2im");
    }

    [Fact]
    public void PatchesAreTheReshapeAndPermuteOfTheImage()
    {
        // The Vision Transformer cut its patches with reshape and permute before Unfold2d; both give the same floats.
        using var images = Tensor.Randn(new Generator(7), 3, 2, 12, 8);
        using var windows = images.Unfold2d(4, 4);
        using var reshaped = images.Reshape(3, 2, 3, 4, 2, 4).Permute(0, 2, 4, 1, 3, 5).Reshape(3, 6, 32);
        Assert.Equal(reshaped.ToArray(), windows.ToArray());
    }

    [Fact]
    public void Conv2dIsTheDirectSumOverItsWindows()
    {
        var conv = new Conv2d(3, 4, 3, 2, 1, new Generator(11));
        using var images = Tensor.Randn(new Generator(12), 2, 3, 7, 6);
        using var y = conv.Forward(images);
        Assert.Equal([2, 4, 4, 3], y.Shape.ToArray());
        var x = images.ToArray(); var wt = conv.Weight.ToArray(); var bias = conv.Bias!.ToArray(); var yv = y.ToArray();
        for (int b = 0; b < 2; b++)
            for (int o = 0; o < 4; o++)
                for (int oi = 0; oi < 4; oi++)
                    for (int oj = 0; oj < 3; oj++)
                    {
                        double sum = bias[o];
                        for (int c = 0; c < 3; c++)
                            for (int i = 0; i < 3; i++)
                                for (int j = 0; j < 3; j++)
                                    sum += wt[((o * 3 + c) * 3 + i) * 3 + j] *
                                           At(x, 3, 7, 6, b, c, oi * 2 - 1 + i, oj * 2 - 1 + j);
                        Assert.Equal(sum, yv[((b * 4 + o) * 4 + oi) * 3 + oj], 1e-5);
                    }
        using var rows = conv.ForwardRows(images);
        Assert.Equal([2, 12, 4], rows.Shape.ToArray());
        Assert.Equal(y.Permute(0, 2, 3, 1).Contiguous().ToArray(), rows.ToArray());
        Assert.Equal([4, 3, 3, 3], conv.Weight.Shape.ToArray());
        Assert.Equal(2, conv.OutputSide(3));
    }

    [Fact]
    public void BadShapesAndSettingsAreRefusedByName()
    {
        using var images = Tensor.Zeros(1, 2, 4, 4);
        Assert.Contains("(B, Ch, H, W)", Assert.Throws<ArgumentException>(() => Tensor.Zeros(2, 4, 4).Unfold2d(2, 2)).Message);
        Assert.Contains("padding < kernel", Assert.Throws<ArgumentException>(() => images.Unfold2d(3, 1, 3)).Message);
        Assert.Contains("stride > 0", Assert.Throws<ArgumentException>(() => images.Unfold2d(3, 0, 1)).Message);
        Assert.Contains("does not fit", Assert.Throws<ArgumentException>(() => images.Unfold2d(5, 1)).Message);
        var conv = new Conv2d(3, 4, 3, 1, 1, new Generator(1));
        Assert.Contains("(B, 3, H, W)", Assert.Throws<ArgumentException>(() => conv.Forward(images)).Message);
        Assert.Contains("positive channel",
            Assert.Throws<ArgumentException>(() => new Conv2d(0, 4, 3, 1, 1, new Generator(1))).Message);
        Assert.Contains("padding < kernel",
            Assert.Throws<ArgumentException>(() => new Conv2d(1, 4, 3, 1, 3, new Generator(1))).Message);
    }
}
