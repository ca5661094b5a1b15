using SkiaSharp;

namespace AttentionSharp.Visualization;

/// <summary>
/// Attention maps as PNG pictures (SkiaSharp): a grid of layer × head heat maps, queries down and keys across, with the
/// tokens written along the edges when there are few enough to read; and, for image models, the picture beside its
/// attention rollout.
/// </summary>
public static class AttentionGrid
{
    /// <summary>Tokens are written on the axes up to this many per side.</summary>
    public const int MaxLabelledTokens = 64;

    /// <summary>Writes the layer × head grid of <paramref name="view"/> to <paramref name="path"/>.</summary>
    public static void Save(string path, AttentionView view)
    {
        if (view.Layers.Count == 0) throw new ArgumentException("There are no attention layers to draw.", nameof(view));
        int heads = view.Layers.Max(l => l.HeadCount);
        int maxQ = view.Layers.Max(l => l.QueryTokens.Count), maxK = view.Layers.Max(l => l.KeyTokens.Count);
        bool labels = maxQ <= MaxLabelledTokens && maxK <= MaxLabelledTokens;
        int cell = Math.Clamp(Math.Max(maxQ, maxK) * (labels ? 9 : 3), 120, 360);
        using var font = new SKFont(SKTypeface.Default, 10);
        using var headerFont = new SKFont(SKTypeface.Default, 14);
        float labelWidth = labels ? view.Layers.SelectMany(l => l.QueryTokens.Concat(l.KeyTokens)).Select(t => font.MeasureText(Printable(t))).DefaultIfEmpty(0).Max() + 6 : 0;
        const int gap = 14, titleHeight = 62, headerHeight = 20, rowHeader = 70;
        int cellWidth = (int)(labelWidth + cell), cellHeight = (int)(headerHeight + cell + labelWidth);
        int width = rowHeader + heads * (cellWidth + gap) + gap;
        int height = titleHeight + view.Layers.Count * (cellHeight + gap) + gap;

        using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.DrawText(view.Title, gap, 22, headerFont, ink);
        using var fill = new SKPaint { IsAntialias = false };
        DrawColorbar(canvas, width - gap - 160, 32, 160, font, ink, fill);   // under the title, right-aligned
        for (int l = 0; l < view.Layers.Count; l++)
        {
            var layer = view.Layers[l];
            float top = titleHeight + l * (cellHeight + gap);
            canvas.DrawText(layer.Name, 6, top + headerHeight + cell / 2f, headerFont, ink);
            for (int h = 0; h < layer.HeadCount; h++)
            {
                float left = rowHeader + h * (cellWidth + gap) + labelWidth;
                float mapTop = top + headerHeight;
                canvas.DrawText($"head {h}", left, top + 15, font, ink);
                var map = layer.Heads[h];
                int tq = map.GetLength(0), tk = map.GetLength(1);
                float dy = (float)cell / tq, dx = (float)cell / tk;
                for (int i = 0; i < tq; i++)
                    for (int j = 0; j < tk; j++)
                    {
                        fill.Color = Colormap.Viridis(MathF.Sqrt(Math.Max(map[i, j], 0f)));
                        canvas.DrawRect(left + j * dx, mapTop + i * dy, dx + 0.5f, dy + 0.5f, fill);
                    }
                if (!labels) continue;
                for (int i = 0; i < tq; i++)   // query tokens down the left edge
                {
                    var text = Printable(layer.QueryTokens[i]);
                    canvas.DrawText(text, left - 3 - font.MeasureText(text), mapTop + (i + 0.5f) * dy + 3.5f, font, ink);
                }
                for (int j = 0; j < tk; j++)   // key tokens along the bottom, written downwards
                {
                    canvas.Save();
                    canvas.Translate(left + (j + 0.5f) * dx + 3.5f, mapTop + cell + 3);
                    canvas.RotateDegrees(90);
                    canvas.DrawText(Printable(layer.KeyTokens[j]), 0, 0, font, ink);
                    canvas.Restore();
                }
            }
        }
        SavePng(surface, path);
    }

    /// <summary>
    /// For an image view: the picture, and the picture under its class-token attention rollout (brighter = more
    /// attention), side by side, each <paramref name="scale"/> times the image's size.
    /// </summary>
    public static void SaveRollout(string path, AttentionView view, int scale = 12)
    {
        var image = view.Image ?? throw new ArgumentException("Attention rollout pictures are for image models; this view has no image.", nameof(view));
        ArgumentOutOfRangeException.ThrowIfLessThan(scale, 1);
        var map = AttentionRollout.ClassTokenMap(view);
        int w = image.Width * scale, h = image.Height * scale, gap = 16, titleHeight = 30;
        using var surface = SKSurface.Create(new SKImageInfo(2 * w + 3 * gap, h + titleHeight + gap, SKColorType.Rgba8888, SKAlphaType.Premul));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var headerFont = new SKFont(SKTypeface.Default, 14);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.DrawText(view.Title, gap, 20, headerFont, ink);
        using var fill = new SKPaint();
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                float v = Math.Clamp(image.Pixels[y * image.Width + x], 0f, 1f);
                byte g = (byte)MathF.Round(v * 255);
                fill.Color = new SKColor(g, g, g);
                canvas.DrawRect(gap + x * scale, titleHeight + y * scale, scale, scale, fill);
                var heat = Colormap.Viridis(map[Math.Min(y / image.Patch, image.GridHeight - 1), Math.Min(x / image.Patch, image.GridWidth - 1)]);
                // The picture dimmed by attention, tinted by the colormap: unattended patches fade to dark.
                float a = 0.25f + 0.75f * map[Math.Min(y / image.Patch, image.GridHeight - 1), Math.Min(x / image.Patch, image.GridWidth - 1)];
                fill.Color = new SKColor((byte)(heat.Red * (0.35f + 0.65f * v) * a), (byte)(heat.Green * (0.35f + 0.65f * v) * a), (byte)(heat.Blue * (0.35f + 0.65f * v) * a));
                canvas.DrawRect(2 * gap + w + x * scale, titleHeight + y * scale, scale, scale, fill);
            }
        SavePng(surface, path);
    }

    /// <summary>
    /// The legend: colour against weight. Colours follow √weight, so that the small weights spread over many keys stay
    /// visible next to a few large ones; the ticks are in weights.
    /// </summary>
    static void DrawColorbar(SKCanvas canvas, float left, float top, float width, SKFont font, SKPaint ink, SKPaint fill)
    {
        for (int x = 0; x < (int)width; x++)
        {
            fill.Color = Colormap.Viridis(x / (width - 1));
            canvas.DrawRect(left + x, top, 1.5f, 10, fill);
        }
        foreach (var w in new[] { 0f, 0.1f, 0.5f, 1f })
        {
            float x = left + MathF.Sqrt(w) * (width - 1);
            var label = w.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);
            canvas.DrawText(label, Math.Min(x - font.MeasureText(label) / 2, left + width - font.MeasureText(label)), top + 22, font, ink);
        }
        var caption = "weight (colour ∝ √weight)";
        canvas.DrawText(caption, left - font.MeasureText(caption) - 8, top + 9, font, ink);
    }

    /// <summary>Control characters and blanks made visible, so a space or a newline token shows as something.</summary>
    internal static string Printable(string token) => token switch
    {
        " " => "␣",
        "\n" => "↵",
        "\t" => "⇥",
        _ => new string(token.Select(c => char.IsControl(c) ? '·' : c).ToArray()),
    };

    static void SavePng(SKSurface surface, string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = full + $".tmp-{Environment.ProcessId}.png";
        using (var snapshot = surface.Snapshot())
        using (var data = snapshot.Encode(SKEncodedImageFormat.Png, 100))
        using (var stream = File.Create(temp))
            data.SaveTo(stream);
        File.Move(temp, full, overwrite: true);
    }
}

/// <summary>The viridis colormap (perceptually uniform, readable in grayscale and by colour-blind readers).</summary>
public static class Colormap
{
    // Nine evenly spaced stops of matplotlib's viridis; linear interpolation between them.
    static readonly (byte R, byte G, byte B)[] Stops =
    [
        (0x44, 0x01, 0x54), (0x48, 0x28, 0x78), (0x3E, 0x4A, 0x89), (0x31, 0x68, 0x8E), (0x26, 0x82, 0x8E),
        (0x1F, 0x9E, 0x89), (0x35, 0xB7, 0x79), (0x6D, 0xCD, 0x59), (0xFD, 0xE7, 0x25),
    ];

    /// <summary>The colour of <paramref name="value"/> in [0, 1] (clamped; NaN reads as 0).</summary>
    public static SKColor Viridis(float value)
    {
        float v = float.IsNaN(value) ? 0f : Math.Clamp(value, 0f, 1f) * (Stops.Length - 1);
        int i = Math.Min((int)v, Stops.Length - 2);
        float f = v - i;
        var (a, b) = (Stops[i], Stops[i + 1]);
        return new SKColor((byte)MathF.Round(a.R + f * (b.R - a.R)), (byte)MathF.Round(a.G + f * (b.G - a.G)), (byte)MathF.Round(a.B + f * (b.B - a.B)));
    }

    /// <summary>The same colour as a CSS hex string, for the HTML viewer's legend.</summary>
    public static string Css(SKColor c) => $"#{c.Red:X2}{c.Green:X2}{c.Blue:X2}";
}
