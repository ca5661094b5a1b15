// Source: PyTorch torch.nn.functional.unfold (im2col) and fold (col2im); Chellapilla et al., "High Performance
// Convolutional Neural Networks for Document Processing" (2006), the unrolling of a convolution into a matrix product.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// Sliding square windows of images, unrolled (im2col): images (B, Ch, H, W) → (B, L, Ch·K·K), L = Ho·Wo windows in
/// row-major order, Ho = (H + 2·pad − K) / stride + 1 (likewise Wo), each window's values in (ch, i, j) order; a pixel
/// outside the image (padding) reads 0. This is torch's F.unfold transposed to rows of windows, so a convolution is
/// this followed by a product with its weight reshaped to (C_out, Ch·K·K).
/// </summary>
public static unsafe class Unfold
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
        Validate(y.Length, x.Length, batch, channels, height, width, kernel, stride, padding, nameof(y));
        fixed (float* px = x)
            Forward(y, px, [channels * height * width, height * width, width, 1], batch, channels, height, width, kernel,
                stride, padding);
    }

    /// <summary>
    /// As <see cref="Forward(Span{float}, ReadOnlySpan{float}, int, int, int, int, int, int, int)"/>, from images laid out
    /// by <paramref name="strides"/> (batch, channel, row, column): pixel (b, c, i, j) at
    /// x[b·s₀ + c·s₁ + i·s₂ + j·s₃]. A view is read in place, such as a stem's channels-last rows (B, H·W, Ch)
    /// seen as (B, Ch, H, W). The caller guarantees that every pixel lies inside x.
    /// </summary>
    internal static void Forward(Span<float> y, float* x, ReadOnlySpan<int> strides, int batch, int channels, int height,
        int width, int kernel, int stride, int padding)
    {
        var (ho, wo) = OutputSize(height, width, kernel, stride, padding);
        Guard.Matrix(nameof(y), y.Length, batch * ho * wo, channels * kernel * kernel, "batch·Ho·Wo", "channels·kernel²");
        if (strides.Length != 4 || strides[0] < 0 || strides[1] < 0 || strides[2] < 0 || strides[3] < 0)
            throw new ArgumentException("Unfold needs four non-negative strides (batch, channel, row, column); " +
                $"got [{string.Join(", ", strides.ToArray())}].", nameof(strides));
        var shape = new Shape(channels, height, width, kernel, stride, padding, ho, wo);
        fixed (float* py = y)
            Work.Rows(batch * ho, wo * channels * kernel * kernel,
                new ForwardKernel(py, x, shape, new Layout(strides[0], strides[1], strides[2], strides[3])));
    }

    /// <summary>
    /// dx (B, Ch, H, W) += the window gradients dy (B, Ho·Wo, Ch·K·K) summed back onto their pixels (col2im).
    /// </summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, int batch, int channels, int height, int width,
        int kernel, int stride, int padding)
    {
        var (ho, wo) = Validate(dy.Length, dx.Length, batch, channels, height, width, kernel, stride, padding, nameof(dy));
        var shape = new Shape(channels, height, width, kernel, stride, padding, ho, wo);
        fixed (float* pdx = dx)
        fixed (float* pdy = dy)
            Work.Rows(batch * channels, ho * wo * kernel * kernel, new BackwardKernel(pdx, pdy, shape));
    }

    readonly record struct Shape(int Channels, int Height, int Width, int Kernel, int Stride, int Padding, int Ho, int Wo)
    {
        /// <summary>Floats in one window: Ch·K·K.</summary>
        public int Row => Channels * Kernel * Kernel;
    }

    /// <summary>Where pixel (b, c, i, j) of the images lies: b·Image + c·Channel + i·Row + j·Column.</summary>
    readonly record struct Layout(long Image, long Channel, long Row, long Column);

    readonly struct ForwardKernel(float* y, float* x, Shape s, Layout l) : IRangeKernel
    {
        // Over rows of windows, r = b·Ho + oi: each writes its own Wo windows, so rows never share an output.
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int k = s.Kernel, k2 = k * k, row = s.Row;
            long column = l.Column;
            for (int r = start; r < end; r++)
            {
                int b = r / s.Ho, oi = r % s.Ho;
                float* image = x + b * l.Image;
                for (int oj = 0; oj < s.Wo; oj++)
                {
                    float* window = y + ((long)r * s.Wo + oj) * row;
                    int x0 = oj * s.Stride - s.Padding;
                    bool inside = x0 >= 0 && x0 + k <= s.Width;
                    for (int c = 0; c < s.Channels; c++)
                        for (int i = 0; i < k; i++)
                        {
                            int yi = oi * s.Stride - s.Padding + i;
                            float* dst = window + c * k2 + i * k;
                            if ((uint)yi >= (uint)s.Height)
                            {
                                for (int j = 0; j < k; j++) dst[j] = 0f;
                                continue;
                            }
                            float* src = image + c * l.Channel + yi * l.Row + x0 * column;
                            if (inside && column == 1)
                                for (int j = 0; j < k; j++) dst[j] = src[j];
                            else if (inside)
                                for (int j = 0; j < k; j++) dst[j] = src[j * column];
                            else
                                for (int j = 0; j < k; j++) dst[j] = (uint)(x0 + j) < (uint)s.Width ? src[j * column] : 0f;
                        }
                }
            }
        }
    }

    readonly struct BackwardKernel(float* dx, float* dy, Shape s) : IRangeKernel
    {
        // Over image planes, p = b·Ch + c: each adds only onto its own plane, and in the reference's order of windows,
        // so every pixel's sum is the same floats added in the same order for any split.
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int k = s.Kernel, k2 = k * k, row = s.Row;
            for (int p = start; p < end; p++)
            {
                int b = p / s.Channels, c = p % s.Channels;
                float* image = dx + (long)p * s.Height * s.Width;
                for (int oi = 0; oi < s.Ho; oi++)
                    for (int oj = 0; oj < s.Wo; oj++)
                    {
                        float* window = dy + (((long)b * s.Ho + oi) * s.Wo + oj) * row + c * k2;
                        int x0 = oj * s.Stride - s.Padding;
                        bool inside = x0 >= 0 && x0 + k <= s.Width;
                        for (int i = 0; i < k; i++)
                        {
                            int yi = oi * s.Stride - s.Padding + i;
                            if ((uint)yi >= (uint)s.Height) continue;
                            float* src = window + i * k, dst = image + (long)yi * s.Width + x0;
                            if (inside)
                                for (int j = 0; j < k; j++) dst[j] += src[j];
                            else
                                for (int j = 0; j < k; j++)
                                    if ((uint)(x0 + j) < (uint)s.Width) dst[j] += src[j];
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

    /// <summary>Shape checks shared with the reference twin: (Ho, Wo).</summary>
    internal static (int Ho, int Wo) Validate(int windowsLength, int imagesLength, int batch, int channels, int height, int width,
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
