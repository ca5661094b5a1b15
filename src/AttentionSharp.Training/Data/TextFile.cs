using System.Buffers;
using System.Text.Unicode;

namespace AttentionSharp.Data;

/// <summary>Training text held as two disjoint parts.</summary>
public sealed record TextSplit(string Train, string Validation);

/// <summary>
/// Plain UTF-8 text files, as <c>--data FILE</c> names them. Reading is strict: a byte sequence that is not UTF-8 is an error
/// naming its offset, never a silent U+FFFD, because a wrongly encoded corpus trains a model on noise.
/// </summary>
public static class TextFile
{
    /// <summary>The file's text, without a UTF-8 byte order mark. Throws <see cref="DataSourceException"/> when the file is
    /// missing, unreadable, not UTF-8 or empty.</summary>
    public static string Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataSourceException($"The data file {path} does not exist.", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataSourceException($"The data file {path} could not be read: {e.Message}", e);
        }
        string text = Decode(bytes, path);
        if (text.Length == 0)
            throw new DataSourceException($"The data file {path} is empty; it needs some UTF-8 text.");
        return text;
    }

    /// <summary>Strict UTF-8 decoding; <paramref name="source"/> names the bytes in the error message.</summary>
    internal static string Decode(ReadOnlySpan<byte> bytes, string source)
    {
        ReadOnlySpan<byte> bom = [0xEF, 0xBB, 0xBF];
        int start = bytes.StartsWith(bom) ? bom.Length : 0;
        var body = bytes[start..];
        char[] chars = ArrayPool<char>.Shared.Rent(Math.Max(1, body.Length)); // UTF-8 never yields more UTF-16 units than bytes
        try
        {
            var status = Utf8.ToUtf16(body, chars, out int bytesRead, out int charsWritten, replaceInvalidSequences: false);
            if (status != System.Buffers.OperationStatus.Done)
            {
                long offset = start + bytesRead;
                string what = status == System.Buffers.OperationStatus.NeedMoreData
                    ? "the file ends inside a multi-byte character"
                    : $"the byte 0x{bytes[(int)offset]:X2} does not continue a valid UTF-8 sequence";
                throw new DataSourceException(
                    $"The data file {source} is not valid UTF-8 at byte offset {offset}: {what}; save it as UTF-8.");
            }
            return new string(chars, 0, charsWritten);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    /// <summary>
    /// Splits text into training and validation parts: validation is the last <paramref name="validationFraction"/> of the
    /// characters (never splitting a surrogate pair), so the split is the same on every run and platform.
    /// </summary>
    public static TextSplit Split(string text, double validationFraction = 0.1)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must lie strictly between 0 and 1.");
        if (text.Length < 2)
            throw new DataSourceException($"The text has {text.Length} characters; splitting off a validation part needs at least 2.");
        int cut = Math.Clamp(text.Length - (int)Math.Round(text.Length * validationFraction), 1, text.Length - 1);
        if (char.IsLowSurrogate(text[cut]) && char.IsHighSurrogate(text[cut - 1]))
        {
            cut += cut > 1 ? -1 : 1;
            if (cut >= text.Length)
                throw new DataSourceException("The text is a single character; splitting off a validation part needs at least 2.");
        }
        return new TextSplit(text[..cut], text[cut..]);
    }
}
