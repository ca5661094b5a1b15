namespace AttentionSharp.Data;

/// <summary>
/// Light augmentation for small images, applied to one image (Ch, H, W) at a time as it is copied into a batch:
/// a random crop of the image padded by P pixels on every side (shifts of up to ±P), a horizontal mirror, and random
/// erasing. The label never changes; the image keeps its shape.
/// </summary>
public static class ImageAugmentation
{
    /// <summary>
    /// Writes into <paramref name="target"/> the <paramref name="side"/>×<paramref name="side"/> window at a random
    /// offset of <paramref name="source"/> padded by <paramref name="padding"/> pixels of value <paramref name="fill"/>:
    /// target[c, y, x] = source[c, y + dy, x + dx] (fill outside the image), dy and dx uniform in [−P, P].
    /// </summary>
    public static void RandomCrop(ReadOnlySpan<float> source, Span<float> target, int channels, int side, int padding, float fill,
        Generator rng)
    {
        if (padding < 0)
            throw new ArgumentOutOfRangeException(nameof(padding), padding, "The crop padding cannot be negative.");
        int dy = rng.NextInt(2 * padding + 1) - padding, dx = rng.NextInt(2 * padding + 1) - padding;
        Shift(source, target, channels, side, dy, dx, fill);
    }

    /// <summary>
    /// target[c, y, x] = source[c, y + dy, x + dx], or <paramref name="fill"/> where that falls outside the image.
    /// </summary>
    public static void Shift(ReadOnlySpan<float> source, Span<float> target, int channels, int side, int dy, int dx, float fill)
    {
        int length = channels * side * side;
        if (source.Length != length || target.Length != length)
            throw new ArgumentException(
                $"Expected images of {channels}×{side}×{side} = {length} values; " +
                $"got {source.Length} in and room for {target.Length}.");
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < side; y++)
            {
                var row = target.Slice((c * side + y) * side, side);
                int sy = y + dy;
                if (sy < 0 || sy >= side) { row.Fill(fill); continue; }
                var from = source.Slice((c * side + sy) * side, side);
                for (int x = 0; x < side; x++)
                {
                    int sx = x + dx;
                    row[x] = sx >= 0 && sx < side ? from[sx] : fill;
                }
            }
    }

    /// <summary>The log of random erasing's smallest aspect ratio, 0.3, and the width of its log-uniform range.</summary>
    static readonly double LogRatioLow = Math.Log(0.3), LogRatioSpan = Math.Log(1 / 0.3) - Math.Log(0.3);

    /// <summary>
    /// Random erasing (Zhong et al., "Random Erasing Data Augmentation", 2017): with probability
    /// <paramref name="probability"/>, a rectangle of the image (every channel) is filled with noise drawn uniformly from
    /// [<paramref name="low"/>, <paramref name="high"/>) (the range of a pixel, in the images' units). Its area is a
    /// share s ~ U(0.02, 0.4) of the image and its aspect ratio r = h / w is drawn log-uniformly from [0.3, 1/0.3];
    /// a draw that does not fit is drawn again, up to 10 times, and then the image stays as it was, as torchvision's
    /// RandomErasing does. Nothing is drawn from <paramref name="rng"/> when the probability is 0. Returns whether the
    /// image was changed.
    /// </summary>
    public static bool RandomErase(Span<float> image, int channels, int side, float probability, float low, float high,
        Generator rng)
    {
        if (!(probability >= 0 && probability <= 1))
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "The erasing probability must be in [0, 1].");
        if (channels <= 0 || side <= 0 || image.Length != channels * side * side)
            throw new ArgumentException($"Expected an image of {channels}×{side}×{side} values; got {image.Length}.",
                nameof(image));
        if (!(low <= high)) throw new ArgumentException($"The noise range [{low}, {high}) is empty.", nameof(low));
        if (probability == 0 || rng.NextFloat() >= probability) return false;
        int area = side * side;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double share = 0.02 + (0.4 - 0.02) * rng.NextFloat();
            double ratio = Math.Exp(LogRatioLow + LogRatioSpan * rng.NextFloat());
            int h = (int)Math.Round(Math.Sqrt(share * area * ratio)), w = (int)Math.Round(Math.Sqrt(share * area / ratio));
            if (h < 1 || w < 1 || h > side || w > side) continue;
            int top = rng.NextInt(side - h + 1), left = rng.NextInt(side - w + 1);
            for (int c = 0; c < channels; c++)
                for (int y = top; y < top + h; y++)
                {
                    var row = image.Slice((c * side + y) * side + left, w);
                    for (int x = 0; x < w; x++) row[x] = low + (high - low) * rng.NextFloat();
                }
            return true;
        }
        return false;
    }

    /// <summary>Mirrors each row of an image (Ch, H, W) in place: x ↦ W − 1 − x.</summary>
    public static void FlipHorizontal(Span<float> image, int side)
    {
        if (side <= 0 || image.Length % side != 0)
            throw new ArgumentException($"An image of rows of {side} pixels cannot hold {image.Length} values.", nameof(image));
        for (int row = 0; row < image.Length / side; row++) image.Slice(row * side, side).Reverse();
    }
}
