using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class UnfoldTests
{
    /// <summary>
    /// Shapes (B, Ch, H, W, K, stride, padding): windows inside, on every edge and past them; kernels wider than the
    /// image's padded side in one direction only; the ViT's patch cut and stem; and shapes large enough to run threaded.
    /// </summary>
    public static IEnumerable<(int B, int Ch, int H, int W, int K, int Stride, int Pad)> Shapes()
    {
        for (int k = 1; k <= 5; k++)
            for (int stride = 1; stride <= 3; stride++)
                for (int pad = 0; pad < k; pad++)
                    foreach (var (h, w) in new[] { (k, k), (5, 7), (8, 3) })
                        if (h + 2 * pad >= k && w + 2 * pad >= k) yield return (2, 3, h, w, k, stride, pad);
        yield return (0, 2, 4, 4, 2, 2, 0);
        yield return (3, 1, 28, 28, 3, 1, 1);    // the ViT's stem on one channel
        yield return (5, 16, 28, 28, 7, 7, 0);   // its patches, cut from 16 channels: threaded
        yield return (8, 3, 31, 29, 3, 2, 1);    // threaded with odd sides
    }

    [Fact]
    public void MatchesReferenceBitForBit()
    {
        // Forward copies floats; backward adds each pixel's window gradients in the reference's order, so both match
        // it exactly, for every thread count.
        foreach (var (b, ch, h, w, k, stride, pad) in Shapes())
        {
            string what = $"unfold B={b} Ch={ch} {h}×{w} K={k} stride {stride} pad {pad} ({ActiveWidth})";
            int ho = Unfold.OutputSide(h, k, stride, pad), wo = Unfold.OutputSide(w, k, stride, pad);
            var rng = new Random(h * 131 + w * 17 + k * 5 + stride + pad);
            var x = Uniform(rng, b * ch * h * w, 1f);
            int n = b * ho * wo * ch * k * k;
            var (y, ye) = (Garbage(n), Garbage(n));
            Unfold.Forward(y, x, b, ch, h, w, k, stride, pad);
            Ref.Unfold.Forward(ye, x, b, ch, h, w, k, stride, pad);
            SameBits(ye, y, what);

            var dy = Uniform(rng, n, 1f);
            var dx = Uniform(rng, x.Length, 1f);
            var dxe = (float[])dx.Clone();
            Unfold.Backward(dx, dy, b, ch, h, w, k, stride, pad);
            Ref.Unfold.Backward(dxe, dy, b, ch, h, w, k, stride, pad);
            SameBits(dxe, dx, what + " backward");
        }
    }

    /// <summary>
    /// Images read through strides (channels-last, as a stem's rows are handed on) unfold to the same bits as the same
    /// images laid out (B, Ch, H, W).
    /// </summary>
    [Fact]
    public unsafe void ChannelsLastViewMatchesContiguousImages()
    {
        foreach (var (b, ch, h, w, k, stride, pad) in Shapes())
        {
            string what = $"unfold channels-last B={b} Ch={ch} {h}×{w} K={k} stride {stride} pad {pad} ({ActiveWidth})";
            var rng = new Random(h * 7 + w * 31 + k * 3 + stride + pad);
            var nhwc = Uniform(rng, b * h * w * ch, 1f);
            var nchw = new float[nhwc.Length];
            for (int n = 0; n < b; n++)
                for (int c = 0; c < ch; c++)
                    for (int i = 0; i < h; i++)
                        for (int j = 0; j < w; j++)
                            nchw[((n * ch + c) * h + i) * w + j] = nhwc[((n * h + i) * w + j) * ch + c];
            int count = b * Unfold.OutputSide(h, k, stride, pad) * Unfold.OutputSide(w, k, stride, pad) * ch * k * k;
            var (y, ye) = (Garbage(count), Garbage(count));
            Unfold.Forward(ye, nchw, b, ch, h, w, k, stride, pad);
            fixed (float* px = nhwc) Unfold.Forward(y, px, [h * w * ch, 1, w * ch, ch], b, ch, h, w, k, stride, pad);
            SameBits(ye, y, what);
        }
    }

    [Fact]
    public void RefusesMismatchedBuffers()
    {
        var x = new float[2 * 3 * 5 * 5];
        var message = Assert.Throws<ArgumentException>(() => Unfold.Forward(new float[10], x, 2, 3, 5, 5, 3, 1, 1)).Message;
        Assert.Contains("y", message);
        var dy = new float[2 * 25 * 27];
        message = Assert.Throws<ArgumentException>(() => Unfold.Backward(new float[10], dy, 2, 3, 5, 5, 3, 1, 1)).Message;
        Assert.Contains("images", message);
    }

    [Fact]
    public unsafe void StridedReadRefusesBadStridesAndShortWindows()
    {
        var x = new float[2 * 3 * 5 * 5];
        var y = new float[2 * 25 * 27];
        fixed (float* px = x)
        {
            float* p = px;
            var message = Assert.Throws<ArgumentException>(() => Unfold.Forward(y, p, [75, 25, 5], 2, 3, 5, 5, 3, 1, 1)).Message;
            Assert.Contains("four non-negative strides", message);
            message = Assert.Throws<ArgumentException>(() => Unfold.Forward(y, p, [75, 25, -5, 1], 2, 3, 5, 5, 3, 1, 1)).Message;
            Assert.Contains("four non-negative strides", message);
            var shortWindows = new float[10];
            message = Assert.Throws<ArgumentException>(() => Unfold.Forward(shortWindows, p, [75, 25, 5, 1], 2, 3, 5, 5, 3, 1, 1))
                .Message;
            Assert.Contains("y", message);
        }
    }
}
