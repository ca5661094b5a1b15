using AttentionSharp.Data;
using AttentionSharp.Tests.Support;
using SkiaSharp;

namespace AttentionSharp.Tests.Data;

/// <summary>Augmentation keeps shapes and moves pixels as stated; image files decode to the pixels written into them.</summary>
public class ImageInputTests
{
    static float[] Ramp(int channels, int side) => [.. Enumerable.Range(0, channels * side * side).Select(i => (float)i)];

    [Fact]
    public void ShiftMovesPixelsAndFillsTheUncoveredBorder()
    {
        var source = Ramp(2, 4);
        var target = new float[source.Length];
        ImageAugmentation.Shift(source, target, 2, 4, dy: 1, dx: -1, fill: -9f);
        for (int c = 0; c < 2; c++)
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 4; x++)
                {
                    int sy = y + 1, sx = x - 1;
                    float expected = sy < 4 && sx >= 0 ? source[(c * 4 + sy) * 4 + sx] : -9f;
                    Assert.True(expected == target[(c * 4 + y) * 4 + x],
                        $"c {c}, y {y}, x {x}: expected {expected}, got {target[(c * 4 + y) * 4 + x]}");
                }
        ImageAugmentation.Shift(source, target, 2, 4, 0, 0, -9f);
        Assert.Equal(source, target);
        Assert.Throws<ArgumentException>(() => ImageAugmentation.Shift(source, new float[5], 2, 4, 0, 0, 0f));
    }

    [Fact]
    public void RandomCropsStayWithinThePaddingAndKeepTheShape()
    {
        var source = Ramp(1, 6);
        var rng = new Generator(4);
        var shifts = new HashSet<(int, int)>();
        for (int trial = 0; trial < 200; trial++)
        {
            var target = new float[source.Length];
            ImageAugmentation.RandomCrop(source, target, 1, 6, padding: 2, fill: -1f, rng);
            // Recover the shift from where pixel 0 (value 0) or the first source value went; every value is the source's or fill.
            Assert.All(target, v => Assert.True(v == -1f || (v >= 0 && v < 36 && v == MathF.Floor(v))));
            int dy = -1, dx = -1;
            for (int i = 0; i < 36 && dy < 0; i++)
                if (target[i] >= 0) { int s = (int)target[i]; dy = s / 6 - i / 6; dx = s % 6 - i % 6; }
            Assert.InRange(dy, -2, 2);
            Assert.InRange(dx, -2, 2);
            shifts.Add((dy, dx));
        }
        Assert.Equal(25, shifts.Count);   // every shift in [−2, 2]² is drawn
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageAugmentation.RandomCrop(source, new float[36], 1, 6, -1, 0f, rng));
    }

    [Fact]
    public void RandomErasingFillsOneRectangleOfEveryChannelWithNoiseInRange()
    {
        const int side = 28, channels = 2;
        var rng = new Generator(5);
        int erased = 0;
        var areas = new List<double>();
        for (int trial = 0; trial < 400; trial++)
        {
            var image = new float[channels * side * side];
            Array.Fill(image, 100f);                                   // outside the noise's range [−1, 2)
            bool changed = ImageAugmentation.RandomErase(image, channels, side, 0.5f, -1f, 2f, rng);
            var cells = Enumerable.Range(0, side * side).Where(i => image[i] != 100f).ToArray();
            Assert.Equal(changed, cells.Length > 0);
            if (!changed) continue;
            erased++;
            // One rectangle: its bounding box is full, the same in every channel, and holds noise in [low, high).
            int top = cells.Min(i => i / side), bottom = cells.Max(i => i / side);
            int left = cells.Min(i => i % side), right = cells.Max(i => i % side);
            Assert.Equal((bottom - top + 1) * (right - left + 1), cells.Length);
            for (int c = 0; c < channels; c++)
                foreach (int i in cells) Assert.InRange(image[c * side * side + i], -1f, 1.9999999f);
            Assert.Equal(cells.Length * channels, image.Count(v => v != 100f));
            double aspect = (bottom - top + 1) / (double)(right - left + 1);
            Assert.InRange(aspect, 0.2, 5.0);                          // 0.3 … 1/0.3, rounded to whole pixels
            areas.Add(cells.Length / (double)(side * side));
        }
        Assert.InRange(erased, 150, 250);                              // about half of 400
        Assert.InRange(areas.Min(), 0.0, 0.06);                       // shares from 0.02 …
        Assert.InRange(areas.Max(), 0.3, 0.45);                       // … to 0.4
        // Probability 0 leaves the image and the generator as they were.
        var untouched = new float[side * side];
        var a = new Generator(9);
        Assert.False(ImageAugmentation.RandomErase(untouched, 1, side, 0f, -1f, 2f, a));
        Assert.All(untouched, v => Assert.Equal(0f, v));
        Assert.Equal(new Generator(9).NextUInt64(), a.NextUInt64());
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageAugmentation.RandomErase(untouched, 1, side, 1.5f, 0f, 1f, a));
        Assert.Throws<ArgumentException>(() => ImageAugmentation.RandomErase(untouched, 2, side, 0.5f, 0f, 1f, a));
        Assert.Throws<ArgumentException>(() => ImageAugmentation.RandomErase(untouched, 1, side, 0.5f, 2f, 1f, a));
    }

    [Fact]
    public void TestViewsAreTheImageItsMirrorAndTheirOnePixelShifts()
    {
        Assert.Equal([1, 2, 10], TestViews.Names.Select(n => new TestViews(n, 0f).Views.Count));
        Assert.True(new TestViews("none", 0f).IsIdentity);
        var shifts = new TestViews("shifts", -9f);
        Assert.Equal(10, shifts.Views.Distinct().Count());
        Assert.Equal(new TestViews.View(false, 0, 0), shifts.Views[0]);
        Assert.All(shifts.Views, v => Assert.InRange(Math.Abs(v.Dy) + Math.Abs(v.Dx), 0, 1));
        Assert.Equal(5, shifts.Views.Count(v => v.Mirror));

        // Each view is the image shifted (the border filled), then mirrored when the view says so: pixel by pixel.
        var image = Ramp(2, 5);
        foreach (var view in shifts.Views)
        {
            var target = new float[image.Length];
            shifts.Write(image, target, 2, 5, view);
            for (int c = 0; c < 2; c++)
                for (int y = 0; y < 5; y++)
                    for (int x = 0; x < 5; x++)
                    {
                        int sx = (view.Mirror ? 4 - x : x) + view.Dx, sy = y + view.Dy;
                        float expected = sx is >= 0 and < 5 && sy is >= 0 and < 5 ? image[(c * 5 + sy) * 5 + sx] : -9f;
                        Assert.Equal(expected, target[(c * 5 + y) * 5 + x]);
                    }
        }
        Assert.Equal("The test views 'sideways' are not known; use none, mirror, shifts.",
            Assert.Throws<ArgumentException>(() => new TestViews("sideways", 0f)).Message);
    }

    [Fact]
    public void FlipMirrorsEveryRow()
    {
        var image = Ramp(1, 3);
        ImageAugmentation.FlipHorizontal(image, 3);
        Assert.Equal([2f, 1, 0, 5, 4, 3, 8, 7, 6], image);
    }

    [Fact]
    public void PgmFilesDecodeInBothEncodings()
    {
        using var dir = new TempDirectory();
        var plain = dir.Write("plain.pgm", "P2\n# a comment\n3 2\n4\n0 1 2\n3 4 0\n");
        var image = GrayImage.Read(plain);
        Assert.Equal((3, 2), (image.Width, image.Height));
        Assert.Equal([0f, 0.25f, 0.5f, 0.75f, 1f, 0f], image.Pixels);

        var raw = dir.File("raw.pgm");
        File.WriteAllBytes(raw, [.. "P5 2 2 255\n"u8.ToArray(), 0, 255, 51, 102]);
        Assert.Equal([0f, 1f, 0.2f, 0.4f], GrayImage.Read(raw).Pixels);

        var truncated = dir.File("short.pgm");
        File.WriteAllBytes(truncated, [.. "P5 2 2 255\n"u8.ToArray(), 0, 255]);
        Assert.Contains("holds only 2 bytes", Assert.Throws<DataSourceException>(() => GrayImage.Read(truncated)).Message);
        var above = dir.Write("above.pgm", "P2 1 1 4 9");
        Assert.Contains("above the file's maxval", Assert.Throws<DataSourceException>(() => GrayImage.Read(above)).Message);
    }

    [Fact]
    public void AHeaderClaimingMorePixelsThanTheFileHoldsIsRefusedBeforeAnythingIsAllocated()
    {
        // 50,000 × 40,000 pixels would be 8 GB of floats; the file holds 3 bytes of samples.
        var raw = System.Text.Encoding.ASCII.GetBytes("P5\n50000 40000\n255\nabc");
        Assert.Contains("holds only 3 bytes", Assert.Throws<DataSourceException>(() => GrayImage.Parse(raw, "huge.pgm")).Message);
        var plain = System.Text.Encoding.ASCII.GetBytes("P2\n30000 30000\n255\n1 2 3\n");
        Assert.Contains("huge.pgm", Assert.Throws<DataSourceException>(() => GrayImage.Parse(plain, "huge.pgm")).Message);
    }

    [Fact]
    public void PngDecodesToLuma()
    {
        using var dir = new TempDirectory();
        var path = dir.File("pixels.png");
        using (var bitmap = new SKBitmap(2, 1, SKColorType.Rgba8888, SKAlphaType.Premul))
        {
            bitmap.SetPixel(0, 0, new SKColor(255, 255, 255));
            bitmap.SetPixel(1, 0, new SKColor(255, 0, 0));
            using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(path, data.ToArray());
        }
        var image = GrayImage.Read(path);
        Assert.Equal((2, 1), (image.Width, image.Height));
        Assert.Equal(1f, image.Pixels[0], 3);
        Assert.Equal(0.299f, image.Pixels[1], 3);

        var notAnImage = dir.Write("notes.png", "hello");
        Assert.Contains("not an image", Assert.Throws<DataSourceException>(() => GrayImage.Read(notAnImage)).Message);
        Assert.Contains("does not exist",
            Assert.Throws<DataSourceException>(() => GrayImage.Read(dir.File("missing.png"))).Message);
    }

    [Fact]
    public void FashionImagesMustBe28By28()
    {
        var right = new GrayImage(28, 28, new float[784]);
        var pixels = FashionMnist.Normalize(right, "a.png");
        Assert.Equal(784, pixels.Length);
        Assert.Equal(-FashionMnist.PixelMean / FashionMnist.PixelStd, pixels[0], 5);
        var e = Assert.Throws<DataSourceException>(
            () => FashionMnist.Normalize(new GrayImage(32, 28, new float[32 * 28]), "b.png"));
        Assert.Contains("32×28", e.Message);
        Assert.Contains("28×28", e.Message);
    }
}
