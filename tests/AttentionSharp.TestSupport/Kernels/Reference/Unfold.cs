// Reference twin of Kernels.Unfold.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain im2col and col2im: one window, one channel, one kernel row, one float at a time.</summary>
public static class Unfold
{
    /// <summary>y (B, Ho·Wo, Ch·K·K) = the windows of x (B, Ch, H, W).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int batch, int channels, int height, int width, int kernel,
        int stride, int padding)
    {
        var (ho, wo) = Kernels.Unfold.Validate(y.Length, x.Length, batch, channels, height, width, kernel, stride, padding,
            nameof(y));
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
        var (ho, wo) = Kernels.Unfold.Validate(dy.Length, dx.Length, batch, channels, height, width, kernel, stride, padding,
            nameof(dy));
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
}
