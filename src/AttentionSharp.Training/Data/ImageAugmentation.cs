namespace AttentionSharp.Data;

/// <summary>
/// Light augmentation for small images, applied to one image (Ch, H, W) at a time as it is copied into a batch:
/// a random crop of the image padded by P pixels on every side (shifts of up to ±P), and a horizontal mirror. The label
/// never changes; the image keeps its shape.
/// </summary>
public static class ImageAugmentation
{
    /// <summary>
    /// Writes into <paramref name="target"/> the <paramref name="side"/>×<paramref name="side"/> window at a random
    /// offset of <paramref name="source"/> padded by <paramref name="padding"/> pixels of value <paramref name="fill"/>:
    /// target[c, y, x] = source[c, y + dy, x + dx] (fill outside the image), dy and dx uniform in [−P, P].
    /// </summary>
    public static void RandomCrop(ReadOnlySpan<float> source, Span<float> target, int channels, int side, int padding, float fill, Generator rng)
    {
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, "The crop padding cannot be negative.");
        int dy = rng.NextInt(2 * padding + 1) - padding, dx = rng.NextInt(2 * padding + 1) - padding;
        Shift(source, target, channels, side, dy, dx, fill);
    }

    /// <summary>target[c, y, x] = source[c, y + dy, x + dx], or <paramref name="fill"/> where that falls outside the image.</summary>
    public static void Shift(ReadOnlySpan<float> source, Span<float> target, int channels, int side, int dy, int dx, float fill)
    {
        int length = channels * side * side;
        if (source.Length != length || target.Length != length)
            throw new ArgumentException($"Expected images of {channels}×{side}×{side} = {length} values; got {source.Length} in and room for {target.Length}.");
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

    /// <summary>Mirrors each row of an image (Ch, H, W) in place: x ↦ W − 1 − x.</summary>
    public static void FlipHorizontal(Span<float> image, int side)
    {
        if (side <= 0 || image.Length % side != 0) throw new ArgumentException($"An image of rows of {side} pixels cannot hold {image.Length} values.", nameof(image));
        for (int row = 0; row < image.Length / side; row++) image.Slice(row * side, side).Reverse();
    }
}
