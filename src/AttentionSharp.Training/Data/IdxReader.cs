// Source: the IDX format as described with the MNIST database (LeCun, Cortes, Burges): a 4-byte magic number
// (two zero bytes, a type byte, a dimension count), one big-endian 32-bit size per dimension, then the values row-major.
using System.Buffers.Binary;
using System.IO.Compression;

namespace AttentionSharp.Data;

/// <summary>An IDX array of unsigned bytes: its dimensions and its values in row-major order.</summary>
public sealed record IdxArray(int[] Dimensions, byte[] Values);

/// <summary>
/// Reads IDX files strictly: every header field is checked, the sizes are multiplied with overflow checks, and the data
/// must be exactly as long as the dimensions promise. A gzip-compressed file (recognised by its magic bytes 1F 8B, not its
/// name) is decompressed first. Anything wrong becomes a <see cref="DataSourceException"/> naming the file and the problem.
/// </summary>
public static class IdxReader
{
    /// <summary>The type byte of unsigned 8-bit values, the only type image and label files use.</summary>
    public const byte UnsignedByte = 0x08;

    /// <summary>The largest decompressed file accepted; it bounds the memory a damaged or hostile gzip stream can claim.</summary>
    public const long MaxBytes = 1L << 30;

    /// <summary>Reads and checks the IDX file at <paramref name="path"/>.</summary>
    public static IdxArray Read(string path)
    {
        byte[] raw;
        try { raw = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataSourceException($"The IDX file '{path}' cannot be read: {e.Message}", e);
        }
        return Parse(raw, path);
    }

    /// <summary>Checks and decodes IDX bytes (gzipped or not); <paramref name="name"/> is used in error messages.</summary>
    public static IdxArray Parse(byte[] bytes, string name)
    {
        bool gzipped = bytes.Length >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B;
        if (gzipped) bytes = Gunzip(bytes, name);
        string file = gzipped ? $"'{name}' (gzipped)" : $"'{name}'";
        if (bytes.Length < 4)
            throw new DataSourceException($"The IDX file {file} is truncated: {bytes.Length} bytes, fewer than the 4-byte magic number.");
        if (bytes[0] != 0 || bytes[1] != 0)
            throw new DataSourceException($"{file} is not an IDX file: its magic number starts with 0x{bytes[0]:X2}{bytes[1]:X2}, expected 0x0000.");
        byte type = bytes[2];
        if (type != UnsignedByte)
            throw new DataSourceException($"The IDX file {file} holds values of type 0x{type:X2}; only unsigned bytes (0x{UnsignedByte:X2}) are supported.");
        int rank = bytes[3];
        if (rank == 0) throw new DataSourceException($"The IDX file {file} declares 0 dimensions; at least 1 is required.");
        long headerLength = 4 + 4L * rank;
        if (bytes.Length < headerLength)
            throw new DataSourceException($"The IDX file {file} is truncated: its header declares {rank} dimensions ({headerLength} bytes) but the file has {bytes.Length} bytes.");

        var dims = new int[rank];
        long count = 1;
        for (int d = 0; d < rank; d++)
        {
            uint size = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(4 + 4 * d, 4));
            if (size > int.MaxValue)
                throw new DataSourceException($"The IDX file {file} declares dimension {d} of size {size}, more than {int.MaxValue}.");
            dims[d] = (int)size;
            try { count = checked(count * size); }
            catch (OverflowException)
            {
                throw new DataSourceException($"The IDX file {file} declares dimensions whose product overflows: {string.Join(" × ", dims[..(d + 1)])}.");
            }
        }
        long dataLength = bytes.Length - headerLength;
        if (dataLength != count)
            throw new DataSourceException(dataLength < count
                ? $"The IDX file {file} is truncated: its dimensions {string.Join(" × ", dims)} need {count} bytes of data, but {dataLength} follow the header."
                : $"The IDX file {file} has {dataLength - count} bytes after the {count} its dimensions {string.Join(" × ", dims)} describe.");
        return new IdxArray(dims, bytes.AsSpan((int)headerLength).ToArray());
    }

    static byte[] Gunzip(byte[] compressed, string name)
    {
        try
        {
            using var gzip = new GZipStream(new MemoryStream(compressed), CompressionMode.Decompress);
            using var output = new MemoryStream();
            var buffer = new byte[81920];
            int read;
            while ((read = gzip.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (output.Length + read > MaxBytes)
                    throw new DataSourceException($"The gzipped IDX file '{name}' decompresses to more than {MaxBytes} bytes.");
                output.Write(buffer, 0, read);
            }
            return output.ToArray();
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw new DataSourceException($"The gzipped IDX file '{name}' is damaged: {e.Message}", e);
        }
    }
}
