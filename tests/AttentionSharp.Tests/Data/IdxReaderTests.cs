using System.Buffers.Binary;
using System.IO.Compression;
using AttentionSharp.Data;

namespace AttentionSharp.Tests.Data;

/// <summary>The strict IDX reader: good files plain and gzipped, and every kind of damage as a DataSourceException.</summary>
public class IdxReaderTests
{
    /// <summary>An IDX file of unsigned bytes with the given header sizes and data (which may disagree, to make bad files).</summary>
    internal static byte[] Idx(uint[] dims, byte[] data, byte type = IdxReader.UnsignedByte)
    {
        var bytes = new byte[4 + 4 * dims.Length + data.Length];
        bytes[2] = type;
        bytes[3] = (byte)dims.Length;
        for (int d = 0; d < dims.Length; d++) BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4 + 4 * d), dims[d]);
        data.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    internal static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest)) gzip.Write(bytes);
        return output.ToArray();
    }

    static readonly byte[] Six = [1, 2, 3, 4, 5, 6];

    [Fact]
    public void AGoodFileGivesItsDimensionsAndValues()
    {
        var idx = IdxReader.Parse(Idx([2, 3], Six), "good");
        Assert.Equal([2, 3], idx.Dimensions);
        Assert.Equal(Six, idx.Values);
    }

    [Fact]
    public void AGzippedFileIsRecognisedByItsMagicBytesNotItsName()
    {
        using var dir = new Support.TempDirectory();
        var path = dir.File("labels-without-gz-suffix");
        File.WriteAllBytes(path, Gzip(Idx([6], Six)));
        var idx = IdxReader.Read(path);
        Assert.Equal([6], idx.Dimensions);
        Assert.Equal(Six, idx.Values);
    }

    [Theory]
    [InlineData(new byte[] { 0, 0 }, "truncated")]
    [InlineData(new byte[] { 0, 0, 8, 2, 0, 0, 0, 2 }, "truncated")]
    [InlineData(new byte[] { 0x12, 0x34, 8, 1, 0, 0, 0, 1, 9 }, "magic number")]
    [InlineData(new byte[] { 0, 0, 0x0D, 1, 0, 0, 0, 1, 9 }, "type 0x0D")]
    [InlineData(new byte[] { 0, 0, 8, 0 }, "0 dimensions")]
    [InlineData(new byte[] { 0x1F, 0x8B, 8, 0, 1, 2, 3 }, "gzipped")]
    public void ABrokenHeaderIsNamed(byte[] bytes, string problem)
    {
        var e = Assert.Throws<DataSourceException>(() => IdxReader.Parse(bytes, "broken.idx"));
        Assert.Contains("broken.idx", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void DimensionsThatPromiseMoreOrLessDataThanFollowsAreRejected()
    {
        var more = Assert.Throws<DataSourceException>(() => IdxReader.Parse(Idx([3, 3], Six), "f"));
        Assert.Contains("need 9 bytes of data, but 6 follow", more.Message);
        var less = Assert.Throws<DataSourceException>(() => IdxReader.Parse(Idx([2, 2], Six), "f"));
        Assert.Contains("2 bytes after", less.Message);
        var huge = Assert.Throws<DataSourceException>(() => IdxReader.Parse(Idx([0xFFFFFFFF, 1], Six), "f"));
        Assert.Contains("more than", huge.Message);
        var overflow = Assert.Throws<DataSourceException>(() => IdxReader.Parse(Idx([int.MaxValue, int.MaxValue, int.MaxValue], Six), "f"));
        Assert.Contains("overflows", overflow.Message);
    }

    [Fact]
    public void AMissingFileIsADataSourceException()
    {
        using var dir = new Support.TempDirectory();
        var e = Assert.Throws<DataSourceException>(() => IdxReader.Read(dir.File("absent")));
        Assert.Contains("absent", e.Message);
    }

    [Fact]
    public void RandomMutationsEitherParseOrFailClearly()
    {
        // Seeded mutations of a plain and a gzipped file: byte changes, truncations and extensions. The only outcomes
        // allowed are a consistent array or a DataSourceException; anything else would escape as a crash.
        var plain = Idx([4, 5, 3], [.. Enumerable.Range(0, 60).Select(i => (byte)i)]);
        var rng = new Generator(7);
        int parsed = 0, rejected = 0;
        foreach (var original in new[] { plain, Gzip(plain) })
            for (int trial = 0; trial < 2000; trial++)
            {
                var bytes = original.ToArray();
                switch (rng.NextInt(3))
                {
                    case 0:
                        for (int k = 0, n = 1 + rng.NextInt(4); k < n; k++) bytes[rng.NextInt(bytes.Length)] = (byte)rng.NextInt(256);
                        break;
                    case 1: bytes = bytes[..rng.NextInt(bytes.Length)]; break;
                    default: bytes = [.. bytes, .. Enumerable.Range(0, 1 + rng.NextInt(8)).Select(_ => (byte)rng.NextInt(256))]; break;
                }
                try
                {
                    var idx = IdxReader.Parse(bytes, "mutant");
                    Assert.Equal(idx.Dimensions.Aggregate(1L, (a, d) => a * d), idx.Values.LongLength);
                    parsed++;
                }
                catch (DataSourceException e) { Assert.Contains("mutant", e.Message); rejected++; }
            }
        Assert.True(parsed > 0 && rejected > 0, $"expected both outcomes; parsed {parsed}, rejected {rejected}");
    }
}
