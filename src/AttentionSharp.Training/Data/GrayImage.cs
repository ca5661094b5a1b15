// Sources: the Netpbm PGM format (P2 plain, P5 raw; netpbm.sourceforge.net/doc/pgm.html); PNG, JPEG, BMP, GIF and WebP
// through SkiaSharp's decoder.
using System.Text;
using SkiaSharp;

namespace AttentionSharp.Data;

/// <summary>
/// A grayscale image read from a file, pixel values in [0, 1] row by row (0 black, 1 white). PGM files (P2 and P5, any
/// maxval up to 65535) are read here; every other format SkiaSharp decodes (PNG, JPEG, BMP, GIF, WebP) is converted to
/// luma Y = 0.299·R + 0.587·G + 0.114·B, composited on black where it is transparent.
/// </summary>
public sealed record GrayImage(int Width, int Height, float[] Pixels)
{
    /// <summary>Reads <paramref name="path"/>; an unreadable or malformed file is a <see cref="DataSourceException"/> naming it.</summary>
    public static GrayImage Read(string path)
    {
        if (!File.Exists(path)) throw new DataSourceException($"The image file '{path}' does not exist.");
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Decodes an image file's bytes; <paramref name="path"/> names it in errors.</summary>
    public static GrayImage Parse(byte[] bytes, string path)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length >= 2 && bytes[0] == 'P' && (bytes[1] == '2' || bytes[1] == '5')) return ReadPgm(bytes, path);
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data);
        using var bitmap = (codec is null ? null : SKBitmap.Decode(codec))
            ?? throw new DataSourceException($"'{path}' is not an image this program can read: expected PGM (P2 or P5), PNG, JPEG, BMP, GIF or WebP.");
        var pixels = new float[bitmap.Width * bitmap.Height];
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                float alpha = c.Alpha / 255f;
                pixels[y * bitmap.Width + x] = alpha * (0.299f * c.Red + 0.587f * c.Green + 0.114f * c.Blue) / 255f;
            }
        return new GrayImage(bitmap.Width, bitmap.Height, pixels);
    }

    /// <summary>The header "P2|P5 width height maxval" (whitespace and #-comments between fields), then the samples.</summary>
    static GrayImage ReadPgm(byte[] bytes, string path)
    {
        int pos = 2;
        int Field(string name)
        {
            while (pos < bytes.Length)
            {
                if (bytes[pos] == '#') { while (pos < bytes.Length && bytes[pos] != '\n') pos++; }
                else if (char.IsWhiteSpace((char)bytes[pos])) pos++;
                else break;
            }
            int start = pos;
            while (pos < bytes.Length && bytes[pos] >= '0' && bytes[pos] <= '9') pos++;
            if (pos == start || pos - start > 9)
                throw new DataSourceException($"'{path}' is not a valid PGM file: its {name} is missing or not a number (at byte {start}).");
            return int.Parse(Encoding.ASCII.GetString(bytes, start, pos - start));
        }
        bool raw = bytes[1] == '5';
        int width = Field("width"), height = Field("height"), maxval = Field("maxval");
        if (width <= 0 || height <= 0) throw new DataSourceException($"'{path}' is a PGM file of {width}×{height} pixels; both must be positive.");
        if (maxval is <= 0 or > 65535) throw new DataSourceException($"'{path}' is a PGM file with maxval {maxval}; expected 1 to 65535.");
        long count = (long)width * height;
        if (count > int.MaxValue) throw new DataSourceException($"'{path}' is a PGM file of {width}×{height} pixels, too large.");
        // The samples must be there before anything is allocated for them: a header can claim billions of pixels.
        int size = maxval < 256 ? 1 : 2;
        long available = Math.Max(0, bytes.Length - pos - (raw ? 1 : 0));
        long needed = raw ? count * size : 2 * count - 1;   // plain PGM: at least one digit per sample and a space between
        if (available < needed)
            throw new DataSourceException($"'{path}' is a PGM file of {width}×{height} pixels but holds only {available} bytes of the {needed} or more its samples need.");
        var pixels = new float[count];
        if (raw)
        {
            pos++;   // exactly one whitespace byte ends the header
            for (int i = 0; i < pixels.Length; i++)
            {
                int v = size == 1 ? bytes[pos + i] : bytes[pos + 2 * i] << 8 | bytes[pos + 2 * i + 1];
                pixels[i] = Sample(v, maxval, i, path);
            }
        }
        else
            for (int i = 0; i < pixels.Length; i++) pixels[i] = Sample(Field($"sample {i}"), maxval, i, path);
        return new GrayImage(width, height, pixels);
    }

    static float Sample(int v, int maxval, int i, string path) => v <= maxval
        ? (float)v / maxval : throw new DataSourceException($"'{path}': sample {i} is {v}, above the file's maxval {maxval}.");
}
