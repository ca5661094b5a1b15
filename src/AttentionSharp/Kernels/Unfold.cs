// Source: PyTorch torch.nn.functional.unfold (im2col) and fold (col2im); Chellapilla et al., "High Performance
// Convolutional Neural Networks for Document Processing" (2006), the unrolling of a convolution into a matrix product.
namespace AttentionSharp.Kernels;

/// <summary>
/// Sliding square windows of images, unrolled (im2col): images (B, Ch, H, W) → (B, L, Ch·K·K), L = Ho·Wo windows in
/// row-major order, Ho = (H + 2·pad − K) / stride + 1 (likewise Wo), each window's values in (ch, i, j) order; a pixel
/// outside the image (padding) reads 0. This is torch's F.unfold transposed to rows of windows, so a convolution is
/// this followed by a product with its weight reshaped to (C_out, Ch·K·K).
/// </summary>
public static class Unfold
{
    /// <summary>
    /// The output side of a window of <paramref name="kernel"/> sliding by <paramref name="stride"/> over
    /// <paramref name="side"/> + 2·pad pixels.
    /// </summary>
    public static int OutputSide(int side, int kernel, int stride, int padding) => (side + 2 * padding - kernel) / stride + 1;

    /// <summary>y (B, Ho·Wo, Ch·K·K) = the windows of x (B, Ch, H, W).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int batch, int channels, int height, int width, int kernel,
        int stride, int padding)
    {
        var (ho, wo) = Validate(y.Length, x.Length, batch, channels, height, width, kernel, stride, padding, nameof(y));
        int k2 = kernel * kernel, row = channels * k2;
        for (int b = 0; b < batch; b++)
        {
            var image = x.Slice(b * channels * height * width, channels * height * width);
            for (int oi = 0; oi < ho; oi++)
                for (int oj = 0; oj < wo; oj++)
                {
                    var window = y.Slice(((b * ho + oi) * wo + oj) * row, row);
                    for (int c = 0; c < channels; c++)
                        for (int i = 0; i < kernel; i++)
                        {
                            int yi = oi * stride - padding + i;
                            var dst = window.Slice(c * k2 + i * kernel, kernel);
                            if ((uint)yi >= (uint)height) { dst.Clear(); continue; }
                            var src = image.Slice((c * height + yi) * width, width);
                            for (int j = 0; j < kernel; j++)
                            {
                                int xj = oj * stride - padding + j;
                                dst[j] = (uint)xj < (uint)width ? src[xj] : 0f;
                            }
                        }
                }
        }
    }

    /// <summary>
    /// dx (B, Ch, H, W) += the window gradients dy (B, Ho·Wo, Ch·K·K) summed back onto their pixels (col2im).
    /// </summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, int batch, int channels, int height, int width,
        int kernel, int stride, int padding)
    {
        var (ho, wo) = Validate(dy.Length, dx.Length, batch, channels, height, width, kernel, stride, padding, nameof(dy));
        int k2 = kernel * kernel, row = channels * k2;
        for (int b = 0; b < batch; b++)
        {
            var image = dx.Slice(b * channels * height * width, channels * height * width);
            for (int oi = 0; oi < ho; oi++)
                for (int oj = 0; oj < wo; oj++)
                {
                    var window = dy.Slice(((b * ho + oi) * wo + oj) * row, row);
                    for (int c = 0; c < channels; c++)
                        for (int i = 0; i < kernel; i++)
                        {
                            int yi = oi * stride - padding + i;
                            if ((uint)yi >= (uint)height) continue;
                            var src = window.Slice(c * k2 + i * kernel, kernel);
                            var dst = image.Slice((c * height + yi) * width, width);
                            for (int j = 0; j < kernel; j++)
                            {
                                int xj = oj * stride - padding + j;
                                if ((uint)xj < (uint)width) dst[xj] += src[j];
                            }
                        }
                }
        }
    }

    /// <summary>
    /// (Ho, Wo) of the windows over a <paramref name="height"/>×<paramref name="width"/> image; throws, naming the values,
    /// unless kernel &gt; 0, stride &gt; 0, 0 ≤ padding &lt; kernel and a window fits the padded image.
    /// </summary>
    public static (int Ho, int Wo) OutputSize(int height, int width, int kernel, int stride, int padding)
    {
        if (kernel <= 0 || stride <= 0 || padding < 0 || padding >= kernel)
            throw new ArgumentException($"Unfold needs kernel > 0, stride > 0 and 0 ≤ padding < kernel; got kernel {kernel}, " +
                                        $"stride {stride}, padding {padding}.");
        if (height + 2 * padding < kernel || width + 2 * padding < kernel)
            throw new ArgumentException($"Unfold: a {kernel}×{kernel} window does not fit a {height}×{width} image " +
                                        $"padded by {padding}.");
        return (OutputSide(height, kernel, stride, padding), OutputSide(width, kernel, stride, padding));
    }

    static (int Ho, int Wo) Validate(int windowsLength, int imagesLength, int batch, int channels, int height, int width,
        int kernel, int stride, int padding, string windowsName)
    {
        if (batch < 0 || channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"Unfold needs a non-negative batch and positive channels, height and width; " +
                                        $"got batch {batch}, channels {channels}, height {height}, width {width}.");
        var (ho, wo) = OutputSize(height, width, kernel, stride, padding);
        Guard.Matrix("images", imagesLength, batch * channels, height * width, "batch·channels", "height·width");
        Guard.Matrix(windowsName, windowsLength, batch * ho * wo, channels * kernel * kernel,
            "batch·Ho·Wo", "channels·kernel²");
        return (ho, wo);
    }
}
