using System.Buffers.Binary;
using System.Text;
using AttentionSharp.IO;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.IO;

public class SafetensorsTests(ITestOutputHelper output)
{
    /// <summary>An 8-byte little-endian length, the header bytes as given (no padding), then the data.</summary>
    static byte[] Raw(string header, byte[]? data = null, ulong? headerLength = null) =>
        RawBytes(Encoding.UTF8.GetBytes(header), data, headerLength);

    static byte[] RawBytes(byte[] header, byte[]? data = null, ulong? headerLength = null)
    {
        data ??= [];
        var file = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, headerLength ?? (ulong)header.Length);
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    static string Entry(string name, string dtype, string shape, ulong begin, ulong end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    /// <summary>
    /// Reading must fail with a SafetensorsException whose message holds every fragment, both held in memory (one array)
    /// and from a seekable stream (read tensor by tensor, as files are), with the same message.
    /// </summary>
    static SafetensorsException Rejects(byte[] file, params string[] fragments)
    {
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Read(file));
        foreach (var fragment in fragments)
            Assert.True(e.Message.Contains(fragment, StringComparison.Ordinal), $"expected '{fragment}' in: {e.Message}");
        var streamed = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Read(new MemoryStream(file)));
        Assert.Equal(e.Message, streamed.Message);
        return e;
    }

    static SafetensorsFile RoundTrip(SafetensorsWriter writer) => SafetensorsFile.Read(writer.ToArray());

    // ---- round trips ----

    public static TheoryData<SafetensorsDType> AllDTypes() => [.. Enum.GetValues<SafetensorsDType>()];

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void RawBytesRoundTripForEveryDType(SafetensorsDType dtype)
    {
        var random = new Random((int)dtype);
        var writer = new SafetensorsWriter();
        var matrix = new byte[2 * 3 * dtype.SizeOf()];
        random.NextBytes(matrix);
        var scalar = new byte[dtype.SizeOf()];
        random.NextBytes(scalar);
        writer.Add("matrix", dtype, [2, 3], matrix);
        writer.Add("scalar", dtype, [], scalar);
        writer.Add("empty", dtype, [4, 0, 2], []);
        var file = RoundTrip(writer);

        Assert.Equal(["matrix", "scalar", "empty"], file.Entries.Select(e => e.Name));
        var m = file.GetEntry("matrix");
        Assert.Equal(dtype, m.DType);
        Assert.Equal([2, 3], m.Shape);
        Assert.Equal(6, m.ElementCount);
        Assert.Equal(matrix, m.Data.ToArray());
        var s = file.GetEntry("scalar");
        Assert.Empty(s.Shape);
        Assert.Equal(1, s.ElementCount);
        Assert.Equal(scalar, s.Data.ToArray());
        var z = file.GetEntry("empty");
        Assert.Equal([4, 0, 2], z.Shape);
        Assert.Equal(0, z.ElementCount);
        Assert.Equal(0, z.Data.Length);
    }

    [Theory]
    [InlineData(SafetensorsDType.F32)]
    [InlineData(SafetensorsDType.F64)]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    public void FloatsRoundTripThroughEachFloatType(SafetensorsDType dtype)
    {
        // Values every one of these types holds exactly.
        float[] values = [0f, -0f, 1f, -2.5f, 0.15625f, 96f, float.PositiveInfinity, float.NegativeInfinity];
        var writer = new SafetensorsWriter();
        writer.Add("w", [2, 4], values, dtype);
        writer.Add("scalar", [], [3f], dtype);
        writer.Add("none", [0], ReadOnlySpan<float>.Empty, dtype);
        var file = RoundTrip(writer);
        Assert.Equal(dtype, file.GetEntry("w").DType);
        Assert.Equal(values, file.ReadFloat32("w"));
        Assert.Equal([3f], file.ReadFloat32("scalar"));
        Assert.Empty(file.ReadFloat32("none"));
        Assert.True(float.IsNaN(RoundTripOne(float.NaN, dtype)));
    }

    static float RoundTripOne(float value, SafetensorsDType dtype)
    {
        var writer = new SafetensorsWriter();
        writer.Add("x", [1], [value], dtype);
        return RoundTrip(writer).ReadFloat32("x")[0];
    }

    [Fact]
    public void NarrowFloatsRoundToNearestEven()
    {
        // 1 + 2^-8 lies halfway between two BF16 values (1 and 1 + 2^-7): ties go to the even one, 1.
        Assert.Equal(1f, RoundTripOne(1f + MathF.Pow(2, -8), SafetensorsDType.BF16));
        Assert.Equal(1f + MathF.Pow(2, -7), RoundTripOne(1f + 3 * MathF.Pow(2, -9), SafetensorsDType.BF16));
        Assert.Equal((float)(Half)0.1f, RoundTripOne(0.1f, SafetensorsDType.F16));
        Assert.Equal(float.PositiveInfinity, RoundTripOne(1e6f, SafetensorsDType.F16));
    }

    [Theory]
    [InlineData(SafetensorsDType.I64)]
    [InlineData(SafetensorsDType.I32)]
    [InlineData(SafetensorsDType.I16)]
    [InlineData(SafetensorsDType.I8)]
    [InlineData(SafetensorsDType.U8)]
    [InlineData(SafetensorsDType.U16)]
    [InlineData(SafetensorsDType.U32)]
    [InlineData(SafetensorsDType.U64)]
    [InlineData(SafetensorsDType.Bool)]
    public void IntegersRoundTripThroughEachIntegerType(SafetensorsDType dtype)
    {
        bool signed = dtype is SafetensorsDType.I8 or SafetensorsDType.I16 or SafetensorsDType.I32 or SafetensorsDType.I64;
        int[] ints = dtype == SafetensorsDType.Bool ? [0, 1, 1, 0] : signed ? [0, -1, 127, -128] : [0, 1, 127, 255];
        long[] longs = [.. ints.Select(v => (long)v)];
        var writer = new SafetensorsWriter();
        writer.Add("ints", [2, 2], ints, dtype);
        writer.Add("longs", [4], longs, dtype);
        writer.Add("scalar", [], [1], dtype);
        var file = RoundTrip(writer);
        Assert.Equal(ints, file.ReadInt32("ints"));
        Assert.Equal(longs, file.ReadInt64("longs"));
        Assert.Equal(ints, file.ReadInt32("longs"));
        Assert.Equal([1], file.ReadInt32("scalar"));
    }

    [Fact]
    public void WideIntegersKeepTheirFullRange()
    {
        var writer = new SafetensorsWriter();
        writer.Add("i64", [3], [long.MinValue, long.MaxValue, 5]);
        writer.Add("i32", [2], [int.MinValue, int.MaxValue]);
        var file = RoundTrip(writer);
        Assert.Equal([long.MinValue, long.MaxValue, 5], file.ReadInt64("i64"));
        Assert.Equal([int.MinValue, int.MaxValue], file.ReadInt32("i32"));
        var e = Assert.Throws<SafetensorsException>(() => file.ReadInt32("i64"));
        Assert.Contains("element 0", e.Message);
        Assert.Contains("Int32 range", e.Message);
        Assert.Equal("i64", e.TensorName);
    }

    [Fact]
    public void U64AboveInt64MaxIsRefusedByTheIntegerReaders()
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue);
        var writer = new SafetensorsWriter();
        writer.Add("u", SafetensorsDType.U64, [1], bytes);
        var e = Assert.Throws<SafetensorsException>(() => RoundTrip(writer).ReadInt64("u"));
        Assert.Contains("18446744073709551615", e.Message);
    }

    [Fact]
    public void Float8TypesDecodeToTheirValues()
    {
        var writer = new SafetensorsWriter();
        // E4M3fn: 0x38 = 1, 0xC4 = -1.5·2 = -3, 0x7E = 448 (largest), 0x01 = 2^-9 (smallest subnormal), 0x7F = NaN.
        writer.Add("e4m3", SafetensorsDType.F8E4M3, [5], [0x38, 0xC4, 0x7E, 0x01, 0x7F]);
        // E5M2: 0x3C = 1, 0xC0 = -2, 0x7C = +inf.
        writer.Add("e5m2", SafetensorsDType.F8E5M2, [3], [0x3C, 0xC0, 0x7C]);
        // E8M0: 127 = 1, 130 = 8, 0 = 2^-127, 0xFF = NaN.
        writer.Add("e8m0", SafetensorsDType.F8E8M0, [4], [127, 130, 0, 0xFF]);
        var file = RoundTrip(writer);
        var e4m3 = file.ReadFloat32("e4m3");
        Assert.Equal([1f, -3f, 448f, MathF.Pow(2, -9)], e4m3[..4]);
        Assert.True(float.IsNaN(e4m3[4]));
        Assert.Equal([1f, -2f, float.PositiveInfinity], file.ReadFloat32("e5m2"));
        var e8m0 = file.ReadFloat32("e8m0");
        Assert.Equal([1f, 8f, (float)Math.ScaleB(1.0, -127)], e8m0[..3]);
        Assert.True(float.IsNaN(e8m0[3]));
    }

    [Fact]
    public void TypedReadersRefuseTheWrongKindOfDType()
    {
        var writer = new SafetensorsWriter();
        writer.Add("ids", [2], [1L, 2L]);
        writer.Add("w", [2], [1f, 2f]);
        writer.Add("c", SafetensorsDType.C64, [1], new byte[8]);
        var file = RoundTrip(writer);
        var e = Assert.Throws<SafetensorsException>(() => file.ReadFloat32("ids"));
        Assert.Contains("holds I64", e.Message);
        Assert.Contains("ToInt64", e.Message);
        Assert.Contains("not an integer type", Assert.Throws<SafetensorsException>(() => file.ReadInt32("w")).Message);
        Assert.Contains("holds C64", Assert.Throws<SafetensorsException>(() => file.ReadFloat32("c")).Message);
        Assert.Throws<ArgumentException>(() => file.GetEntry("w").CopyFloat32To(new float[3]));
    }

    [Fact]
    public void MetadataRoundTrips()
    {
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        writer.SetMetadata("note", "quote \" backslash \\ newline \n tab \t üñí 漢字 🙂 <html>");
        writer.SetMetadata("empty", "");
        writer.SetMetadata("format", "np");
        writer.Add("t", [1], [1f]);
        var file = RoundTrip(writer);
        Assert.Equal(3, file.Metadata.Count);
        Assert.Equal("np", file.Metadata["format"]);
        Assert.Equal("quote \" backslash \\ newline \n tab \t üñí 漢字 🙂 <html>", file.Metadata["note"]);
        Assert.Equal("", file.Metadata["empty"]);
        Assert.Empty(RoundTrip(new SafetensorsWriter()).Metadata);
    }

    [Fact]
    public void HeaderIsCompactJsonPaddedWithSpacesToAMultipleOf8()
    {
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        writer.Add("a", [2], [1f, 2f]);
        writer.Add("b", [], [7L]);
        var bytes = writer.ToArray();
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0ul, n % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        const string Json = "{\"__metadata__\":{\"format\":\"pt\"}," +
            "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," +
            "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}";
        Assert.Equal(Json, header.TrimEnd(' '));
        Assert.Equal(new string(' ', header.Length - Json.Length), header[Json.Length..]);
        Assert.True(header.Length - Json.Length < 8);
        Assert.Equal(8 + (int)n + 16, bytes.Length);
        Assert.Equal(1f, BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(8 + (int)n)));
        Assert.Equal("{}      ", Encoding.UTF8.GetString(new SafetensorsWriter().ToArray(), 8, 8));
    }

    [Fact]
    public void ReadsAFileLaidOutAsPyTorchWritesIt()
    {
        // Names sorted, data ordered by dtype size, not by name, as the reference writer does; keys out of offset order.
        var data = new byte[8 + 8 + 2];
        BinaryPrimitives.WriteInt64LittleEndian(data, 42);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(8), 1.5f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(12), -2f);
        BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(16), (Half)0.5f);
        string json = "{\"__metadata__\":{\"format\":\"pt\"}," + Entry("a.bias", "F16", "[1]", 16, 18) + "," +
            Entry("a.weight", "F32", "[1,2]", 8, 16) + "," + Entry("step", "I64", "[]", 0, 8) + "}";
        var file = SafetensorsFile.Read(Raw(json.PadRight((json.Length + 7) / 8 * 8), data));
        Assert.Equal(["step", "a.weight", "a.bias"], file.Entries.Select(e => e.Name));
        Assert.Equal([1.5f, -2f], file.ReadFloat32("a.weight"));
        Assert.Equal([0.5f], file.ReadFloat32("a.bias"));
        Assert.Equal([42L], file.ReadInt64("step"));
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(8, file.GetEntry("a.weight").Offset);
    }

    [Fact]
    public void ZeroSizeTensorsMayShareAnOffsetWithTheirNeighbours()
    {
        string json = "{" + Entry("z2", "F32", "[0]", 4, 4) + "," + Entry("a", "F32", "[1]", 0, 4) + "," +
            Entry("z1", "F32", "[0,3]", 0, 0) + "," + Entry("z3", "I8", "[0]", 4, 4) + "}";
        var file = SafetensorsFile.Read(Raw(json, new byte[4]));
        Assert.Equal(["z1", "a", "z2", "z3"], file.Entries.Select(e => e.Name));
        Assert.Equal(4, file.Entries.Count);
        Assert.Empty(SafetensorsFile.Read(Raw("{\"__metadata__\":null}")).Metadata);
    }

    [Fact]
    public void GetEntryNamesTheClosestTensors()
    {
        var writer = new SafetensorsWriter();
        foreach (var name in new[] { "h.0.attn.weight", "h.0.mlp.weight", "h.1.attn.weight", "wte.weight" })
            writer.Add(name, [1], [0f]);
        var file = RoundTrip(writer);
        Assert.True(file.Contains("wte.weight"));
        Assert.False(file.Contains("wpe.weight"));
        Assert.False(file.TryGetEntry("wpe.weight", out _));
        var e = Assert.Throws<SafetensorsException>(() => file.GetEntry("h.0.atn.weight"));
        Assert.Equal("h.0.atn.weight", e.TensorName);
        Assert.Contains("not found among the file's 4 tensors; closest names: 'h.0.attn.weight', 'h.1.attn.weight'", e.Message);
        Assert.Contains("holds no tensors",
            Assert.Throws<SafetensorsException>(() => RoundTrip(new SafetensorsWriter()).GetEntry("x")).Message);
    }

    // ---- files, streams, atomic save ----

    [Fact]
    public void SaveWritesAtomicallyAndReplacesTheTarget()
    {
        string directory = Directory.CreateTempSubdirectory("safetensors-tests-").FullName;
        try
        {
            string path = Path.Combine(directory, "model.safetensors");
            File.WriteAllText(path, "old contents");
            var writer = new SafetensorsWriter();
            writer.Add("w", [2, 2], [1f, 2f, 3f, 4f]);
            writer.Save(path);
            Assert.Equal([path], Directory.GetFiles(directory));
            var file = SafetensorsFile.Read(path);
            Assert.Equal(path, file.FilePath);
            Assert.Equal([1f, 2f, 3f, 4f], file.ReadFloat32("w"));
            Assert.Equal(writer.ToArray(), File.ReadAllBytes(path));

            File.WriteAllBytes(path, [1, 2, 3]);
            var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Read(path));
            Assert.Contains(path, e.Message);
            Assert.Equal(path, e.FilePath);

            Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Read(Path.Combine(directory, "missing.safetensors")));
            var missingDirectory = Assert.Throws<DirectoryNotFoundException>(
                () => writer.Save(Path.Combine(directory, "no", "x.safetensors")));
            Assert.Contains("does not exist", missingDirectory.Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>A stream that cannot seek, like a pipe or a network stream.</summary>
    sealed class ForwardOnlyStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
    }

    [Fact]
    public void ReadsFromSeekableAndForwardOnlyStreams()
    {
        var writer = new SafetensorsWriter();
        writer.Add("x", [3], [1, 2, 3]);
        var bytes = writer.ToArray();
        Assert.Equal([1, 2, 3], SafetensorsFile.Read(new MemoryStream(bytes)).ReadInt32("x"));
        Assert.Equal([1, 2, 3], SafetensorsFile.Read(new ForwardOnlyStream(bytes)).ReadInt32("x"));
        var stream = new MemoryStream();
        stream.Write([9, 9, 9]);
        writer.Save(stream);
        stream.Position = 3;
        Assert.Equal([1, 2, 3], SafetensorsFile.Read(stream).ReadInt32("x"));
    }

    /// <summary>
    /// A seekable stream of <paramref name="head"/> then <paramref name="dataLength"/> bytes made up as they are read:
    /// byte p of the data section is (p / 2^20) mod 251. <paramref name="deliver"/> bytes in all are served (fewer than
    /// the length when the file "shrinks" while being read).
    /// </summary>
    sealed class MadeUpStream(byte[] head, long dataLength, long? deliver = null) : Stream
    {
        long _position;
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => head.Length + dataLength;
        public override long Position { get => _position; set => _position = value; }
        public static byte At(long p) => (byte)(p / (1 << 20) % 251);

        public override int Read(Span<byte> buffer)
        {
            long end = Math.Min(deliver ?? Length, _position + buffer.Length);
            int n = (int)Math.Max(0, end - _position);
            for (int i = 0; i < n;)
            {
                long p = _position + i;
                if (p < head.Length) { buffer[i++] = head[p]; continue; }
                long d = p - head.Length;
                int run = (int)Math.Min(n - i, (1 << 20) - d % (1 << 20));   // to the end of this mebibyte
                buffer.Slice(i, run).Fill(At(d));
                i += run;
            }
            _position += n;
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Flush() { }
    }

    static byte[] TwoByteTensors(long size)
    {
        string json = "{" + Entry("a", "U8", $"[{size}]", 0, (ulong)size) + "," +
                      Entry("b", "U8", $"[{size}]", (ulong)size, 2 * (ulong)size) + "}";
        var header = Encoding.UTF8.GetBytes(json);
        var head = new byte[8 + header.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(head, (ulong)header.Length);
        header.CopyTo(head, 8);
        return head;
    }

    [Fact]
    public void ReadsAFileLargerThanOneArrayCanHold()
    {
        // 2.4 GB (GPT-2 large's single file is 3.25 GB): more than one array holds, read tensor by tensor.
        const long Size = 1_200_000_000;
        var head = TwoByteTensors(Size);
        var file = SafetensorsFile.Read(new MadeUpStream(head, 2 * Size));
        Assert.Equal(["a", "b"], file.Entries.Select(e => e.Name));
        var b = file.GetEntry("b");
        Assert.Equal(Size, b.Data.Length);
        foreach (long p in (long[])[0, 1 << 20, Size - 1])
        {
            Assert.Equal(MadeUpStream.At(p), file.GetEntry("a").Data.Span[(int)p]);
            Assert.Equal(MadeUpStream.At(Size + p), b.Data.Span[(int)p]);
        }
    }

    [Fact]
    public void AFileThatShrinksWhileBeingReadFailsAsTruncated()
    {
        var head = TwoByteTensors(1000);
        foreach (long deliver in (long[])[5, head.Length - 1, head.Length + 999, head.Length + 1500])
        {
            var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Read(new MadeUpStream(head, 2000, deliver)));
            Assert.Contains("truncated while being read", e.Message);
        }
    }

    [Fact]
    public void AFileCanBeReadForSomeOfItsTensors()
    {
        var writer = new SafetensorsWriter();
        writer.Add("exp_avg.w", [3], [1f, 2f, 3f]);
        writer.Add("ema.w", [3], [4f, 5f, 6f]);
        writer.Add("exp_avg_sq.w", [2], [7f, 8f]);
        writer.Add("ema.b", [1], [9f]);
        string path = Path.Combine(Path.GetTempPath(), $"some-{Guid.NewGuid():N}.safetensors");
        try
        {
            writer.Save(path);
            var some = SafetensorsFile.Read(path, name => name.StartsWith("ema.", StringComparison.Ordinal));
            Assert.Equal(["ema.w", "ema.b"], some.Entries.Select(e => e.Name));
            Assert.Equal([4f, 5f, 6f], some.ReadFloat32("ema.w"));
            Assert.Equal([9f], some.ReadFloat32("ema.b"));
            Assert.False(some.Contains("exp_avg.w"));
            // The file is still validated whole: a data section shorter than the header says is refused.
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..^4]);
            Assert.Contains("reaches past the end of the data section",
                Assert.Throws<SafetensorsException>(() => SafetensorsFile.Read(path, _ => false)).Message);
        }
        finally { File.Delete(path); }
    }

    // ---- writer argument checks ----

    [Fact]
    public void WriterRefusesBadNamesShapesAndValues()
    {
        var writer = new SafetensorsWriter();
        writer.Add("w", [2], [1f, 2f]);
        Assert.Contains("non-empty", Assert.Throws<ArgumentException>(() => writer.Add("", [1], [1f])).Message);
        Assert.Contains("already added", Assert.Throws<ArgumentException>(() => writer.Add("w", [1], [1f])).Message);
        Assert.Contains("reserved", Assert.Throws<ArgumentException>(() => writer.Add("__metadata__", [1], [1f])).Message);
        Assert.Contains("unpaired surrogate", Assert.Throws<ArgumentException>(() => writer.Add("a\ud800", [1], [1f])).Message);
        Assert.Contains("shape [2, 3] (6 elements) but 5 values arrived",
            Assert.Throws<ArgumentException>(() => writer.Add("x", [2, 3], new float[5])).Message);
        Assert.Contains("non-negative",
            Assert.Throws<ArgumentException>(() => writer.Add("x", [-1], ReadOnlySpan<float>.Empty)).Message);
        Assert.Contains("needs 24 bytes, but 20 bytes arrived",
            Assert.Throws<ArgumentException>(() => writer.Add("x", SafetensorsDType.F32, [2, 3], new byte[20])).Message);
        Assert.Contains("element 1 is 300, which I8 cannot hold",
            Assert.Throws<ArgumentException>(() => writer.Add("x", [2], [1, 300], SafetensorsDType.I8)).Message);
        Assert.Contains("not I32",
            Assert.Throws<ArgumentException>(() => writer.Add("x", [1], [1f], SafetensorsDType.I32)).Message);
        Assert.Contains("not F32",
            Assert.Throws<ArgumentException>(() => writer.Add("x", [1], [1], SafetensorsDType.F32)).Message);
        Assert.Contains("more than the", Assert.Throws<ArgumentException>(() =>
            writer.Add("x", [int.MaxValue, int.MaxValue, int.MaxValue], ReadOnlySpan<float>.Empty)).Message);
        Assert.Equal(1, writer.Count);
    }

    // ---- malformed files: each names its problem ----

    [Fact]
    public void RejectsEmptyAndTooShortFiles()
    {
        Rejects([], "empty");
        Rejects([1, 2, 3, 4, 5], "holds 5 bytes, fewer than the 8-byte header length");
        Rejects(new byte[7], "holds 7 bytes");
    }

    [Fact]
    public void RejectsLyingHeaderLengths()
    {
        string json = "{" + Entry("a", "F32", "[1]", 0, 4) + "}";
        Rejects(Raw(json, new byte[4], headerLength: (ulong)json.Length + 5),
            $"says {json.Length + 5} bytes but only {json.Length + 4} bytes follow");
        Rejects(Raw(json, new byte[4], headerLength: 1ul << 63),
            "says 9223372036854775808 bytes, above the 100000000-byte limit");
        Rejects(Raw(json, new byte[4], headerLength: ulong.MaxValue), "above the 100000000-byte limit");
        Rejects(Raw(json, new byte[4], headerLength: 0), "found an empty header");
        // Shorter than the header: the JSON is cut mid-object.
        Rejects(Raw(json, new byte[4], headerLength: (ulong)json.Length - 3), "not valid JSON");
    }

    [Fact]
    public void RejectsTruncatedData()
    {
        var writer = new SafetensorsWriter();
        writer.Add("a", [4], [1f, 2f, 3f, 4f]);
        writer.Add("b", [2], [1f, 2f]);
        var bytes = writer.ToArray();
        var e = Rejects(bytes[..^4], "tensor 'b'", "data_offsets", "reaches past the end of the data section (20 bytes)",
            "truncated");
        Assert.Equal("b", e.TensorName);
        Assert.Equal("data_offsets", e.Field);
    }

    [Fact]
    public void RejectsHeadersThatAreNotAJsonObject()
    {
        Rejects(Raw("{\"a\": nope}"), "not valid JSON");
        Rejects(Raw("[1, 2]"), "must be a JSON object", "'['");
        Rejects(Raw("\"text\""), "must be a JSON object");
        Rejects(Raw("  {}"), "must be a JSON object beginning with '{'");
        Rejects(Raw("{}x"), "not valid JSON");
        Rejects(Raw("{} {}"), "not valid JSON");
        Rejects(Raw("{\"a\":"), "not valid JSON");
        Rejects(Raw("{/*c*/}"), "not valid JSON");
        Rejects(Raw("{" + Entry("a", "F32", "[0]", 0, 0) + ",}"), "not valid JSON");
    }

    [Fact]
    public void RejectsInvalidUtf8AndLoneSurrogateEscapes()
    {
        var header = Encoding.UTF8.GetBytes("{\"ab\":{}}");
        header[3] = 0xFF;
        Rejects(RawBytes(header), "not valid UTF-8", "header offset 3");
        Rejects(RawBytes([(byte)'{', (byte)'"', 0xC3, (byte)'"', (byte)':', (byte)'1', (byte)'}']), "not valid UTF-8");
        Rejects(Raw("{\"\\ud800\":{}}"), "not valid Unicode");
    }

    [Theory]
    [InlineData("dtype", "{\"shape\":[1],\"data_offsets\":[0,4]}")]
    [InlineData("shape", "{\"dtype\":\"F32\",\"data_offsets\":[0,4]}")]
    [InlineData("data_offsets", "{\"dtype\":\"F32\",\"shape\":[1]}")]
    public void RejectsEntriesMissingAField(string field, string entry)
    {
        var e = Rejects(Raw("{\"t\":" + entry + "}", new byte[4]), "tensor 't'", $"field '{field}'", "missing");
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void RejectsEntriesOfTheWrongShapeOrJsonType()
    {
        Rejects(Raw("{\"t\":[1]}"), "tensor 't'", "expected an object with dtype, shape and data_offsets, found an array");
        Rejects(Raw("{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0],\"extra\":1}}"), "field 'extra'",
            "unknown field");
        Rejects(Raw("{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"), "field 'dtype'",
            "appears twice");
        Rejects(Raw("{\"t\":{\"dtype\":32,\"shape\":[0],\"data_offsets\":[0,0]}}"), "field 'dtype'", "found the number 32");
        Rejects(Raw("{\"t\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,0]}}"), "field 'shape'", "found the number 3");
        Rejects(Raw("{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":{}}}"), "field 'data_offsets'", "found an object");
    }

    [Theory]
    [InlineData("F33")]
    [InlineData("f32")]
    [InlineData("F4")]
    [InlineData("")]
    public void RejectsUnknownDTypes(string dtype) =>
        Rejects(Raw("{" + Entry("t", dtype, "[0]", 0, 0) + "}"), "field 'dtype'", $"unknown dtype \"{dtype}\"",
            "expected one of BOOL, U8");

    [Theory]
    [InlineData("[-1]", "dimension 0", "the number -1")]
    [InlineData("[2,1.5]", "dimension 1", "the number 1.5")]
    [InlineData("[1e3]", "dimension 0", "the number 1e3")]
    [InlineData("[\"2\"]", "dimension 0", "the string \"2\"")]
    [InlineData("[null]", "dimension 0", "null")]
    [InlineData("[[2]]", "dimension 0", "an array")]
    [InlineData("[2147483648]", "dimension 0", "2147483648")]
    [InlineData("[99999999999999999999999]", "dimension 0", "99999999999999999999999")]
    public void RejectsBadShapeDimensions(string shape, string which, string found) =>
        Rejects(Raw("{" + Entry("t", "F32", shape, 0, 0) + "}"), "field 'shape'", which,
            "must be an integer in [0, 2147483647]", found);

    [Theory]
    [InlineData("[0]", "found an array of 1")]
    [InlineData("[0,4,8]", "more than two")]
    [InlineData("[-1,3]", "value 0 is the number -1")]
    [InlineData("[0,4.0]", "value 1 is the number 4.0")]
    [InlineData("[0,18446744073709551616]", "value 1 is the number 18446744073709551616")]
    public void RejectsMalformedDataOffsets(string offsets, string problem) =>
        Rejects(Raw("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" + offsets + "}}", new byte[4]),
            "field 'data_offsets'", "expected [begin, end]", problem);

    [Fact]
    public void RejectsOffsetsThatBreakTheLayout()
    {
        // Out of the file (sizes agree with the shape, so only the bounds are wrong).
        Rejects(Raw("{" + Entry("t", "F32", "[250]", 0, 1000) + "}", new byte[8]), "tensor 't'",
            "[0, 1000] reaches past the end of the data section (8 bytes)");
        Rejects(Raw("{" + Entry("t", "U8", "[1]", 18446744073709551614, 18446744073709551615) + "}", new byte[8]),
            "reaches past the end");
        // Begin after end.
        Rejects(Raw("{" + Entry("t", "F32", "[1]", 8, 4) + "}", new byte[8]), "[8, 4] has begin after end");
        // Overlap.
        Rejects(Raw("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 4, 12) + "}", new byte[12]),
            "tensor 'b'", "[4, 12] overlaps tensor 'a', which ends at 8");
        Rejects(Raw("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 0, 8) + "}", new byte[8]),
            "overlaps tensor 'a'");
        Rejects(Raw("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("z", "F32", "[0]", 4, 4) + "}", new byte[8]),
            "tensor 'z'", "overlaps");
        // Gaps: at the start, between entries, and after the last one.
        Rejects(Raw("{" + Entry("a", "F32", "[1]", 4, 8) + "}", new byte[8]),
            "bytes [0, 4) after the start of the data section belong to no tensor");
        Rejects(Raw("{" + Entry("a", "F32", "[1]", 0, 4) + "," + Entry("b", "F32", "[1]", 8, 12) + "}", new byte[12]),
            "tensor 'b'", "gap: bytes [4, 8) after tensor 'a'");
        Rejects(Raw("{" + Entry("a", "F32", "[1]", 0, 4) + "}", new byte[9]), "holds 9 bytes but the tensors cover only 4");
        Rejects(Raw("{}", new byte[1]), "holds 1 bytes but the tensors cover only 0");
    }

    [Fact]
    public void RejectsByteSizesThatDisagreeWithTheShape()
    {
        Rejects(Raw("{" + Entry("t", "F32", "[2,3]", 0, 20) + "}", new byte[20]), "tensor 't'",
            "shape [2, 3] of F32 needs 24 bytes (6 × 4) but [0, 20] spans 20");
        Rejects(Raw("{" + Entry("t", "BF16", "[]", 0, 4) + "}", new byte[4]), "shape [] of BF16 needs 2 bytes");
        Rejects(Raw("{" + Entry("t", "F32", "[2147483647,2147483647,2147483647]", 0, 4) + "}", new byte[4]),
            "field 'shape'", "element count of [2147483647, 2147483647, 2147483647] overflows a 64-bit integer");
        Rejects(Raw("{" + Entry("t", "F32", "[2147483647,2147483647,2]", 0, 4) + "}", new byte[4]),
            "needs more than 9223372036854775807 bytes");
        // A zero dimension makes the count 0 even when the others would overflow.
        var zero = Raw("{" + Entry("t", "F32", "[2147483647,2147483647,2147483647,0]", 0, 0) + "}");
        Assert.Equal(0, SafetensorsFile.Read(zero).Entries[0].ElementCount);
    }

    [Fact]
    public void RejectsDuplicateNames()
    {
        Rejects(Raw("{" + Entry("a", "F32", "[1]", 0, 4) + "," + Entry("a", "F32", "[1]", 4, 8) + "}", new byte[8]),
            "tensor 'a'", "appears twice");
        Rejects(Raw("{\"__metadata__\":{},\"__metadata__\":{}}"), "tensor '__metadata__'", "appears twice");
        Rejects(Raw("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"), "field '__metadata__'", "key 'k' appears twice");
    }

    [Fact]
    public void RejectsNonStringMetadata()
    {
        var e = Rejects(Raw("{\"__metadata__\":{\"epoch\":3}}"), "field '__metadata__'",
            "value of key 'epoch' must be a string, found the number 3");
        Assert.Equal("__metadata__", e.Field);
        Rejects(Raw("{\"__metadata__\":{\"k\":null}}"), "must be a string, found null");
        Rejects(Raw("{\"__metadata__\":{\"k\":{}}}"), "must be a string, found an object");
        Rejects(Raw("{\"__metadata__\":[\"pt\"]}"), "expected an object of string keys and string values, found an array");
        Rejects(Raw("{\"__metadata__\":\"pt\"}"), "found the string \"pt\"");
    }

    [Fact]
    public void MessagesForBuffersSayWhereTheyCameFrom()
    {
        var e = Rejects([], "safetensors data: the file is empty");
        Assert.Null(e.FilePath);
        Assert.Null(e.TensorName);
        Assert.IsAssignableFrom<FormatException>(e);
    }

    // ---- mutation harness ----

    /// <summary>
    /// Seeded random damage to a valid file — bit flips, byte changes, truncations, insertions, deletions, header-length
    /// edits and edits of numbers inside the header — must give either a valid file or a SafetensorsException, never
    /// another exception. Valid results are also read through the typed readers.
    /// </summary>
    const int Mutations = 20_000;

    [Fact]
    public void RandomMutationsNeverThrowAnythingButSafetensorsException()
    {
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        writer.Add("wte.weight", [3, 4], Enumerable.Range(0, 12).Select(i => i * 0.5f).ToArray());
        writer.Add("ln.bias", [4], [1f, 2f, 3f, 4f], SafetensorsDType.BF16);
        writer.Add("half", [2, 1], [0.25f, -8f], SafetensorsDType.F16);
        writer.Add("ids", [2, 2], [1L, -2L, 3L, long.MaxValue]);
        writer.Add("mask", [3], [1, 0, 1], SafetensorsDType.Bool);
        writer.Add("step", [], [7]);
        writer.Add("empty", [0, 5], ReadOnlySpan<float>.Empty, SafetensorsDType.F64);
        writer.Add("f8", SafetensorsDType.F8E4M3, [2], [0x38, 0x7F]);
        writer.Add("c", SafetensorsDType.C64, [1], new byte[8]);
        var original = writer.ToArray();
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        string[] numbers = ["0", "-1", "1", "4", "8", "1.5", "1e3", "2147483648", "9223372036854775807", "18446744073709551615",
            "99999999999999999999", "\"1\"", "null", "[]", "{}"];

        var random = new Random(20240611);
        int valid = 0, rejected = 0;
        var failures = new List<string>();
        for (int iteration = 0; iteration < Mutations; iteration++)
        {
            var bytes = new List<byte>(original);
            var applied = new List<string>();
            for (int m = random.Next(1, 4); m > 0; m--) applied.Add(Mutate(bytes, random, headerEnd, numbers));
            var mutated = bytes.ToArray();
            try
            {
                var file = SafetensorsFile.Read(mutated);
                valid++;
                foreach (var entry in file.Entries)
                {
                    Assert.Equal(entry.ElementCount * entry.DType.SizeOf(), entry.Data.Length);
                    try
                    {
                        if (entry.DType.IsFloatingPoint()) Assert.Equal(entry.ElementCount, file.ReadFloat32(entry.Name).Length);
                        if (entry.DType.IsInteger()) { file.ReadInt64(entry.Name); file.ReadInt32(entry.Name); }
                    }
                    catch (SafetensorsException) { }
                }
            }
            catch (SafetensorsException) { rejected++; }
            catch (Exception e)
            {
                if (failures.Count < 5)
                    failures.Add($"iteration {iteration} [{string.Join("; ", applied)}]: {e.GetType().Name}: {e.Message}");
                else failures.Add("");
            }
            // Read as a file is, tensor by tensor from a seekable stream: the same tensors, or the same refusal.
            string held = Outcome(() => SafetensorsFile.Read(mutated));
            string streamed = Outcome(() => SafetensorsFile.Read(new MemoryStream(mutated)));
            if (held != streamed)
                failures.Add(failures.Count < 5 ? $"iteration {iteration}: in memory {held}; from a stream {streamed}" : "");
        }
        output.WriteLine($"{Mutations} mutated files: {valid} valid, {rejected} rejected with SafetensorsException");

        static string Outcome(Func<SafetensorsFile> read)
        {
            try
            {
                var file = read();
                return "read: " + string.Join(", ", file.Entries.Select(e =>
                    $"{e.Name} {e.DType} {e.ShapeText} {Convert.ToHexString(e.Data.Span)}"));
            }
            catch (SafetensorsException e) { return "refused: " + e.Message; }
            catch (Exception e) { return $"threw {e.GetType().Name}: {e.Message}"; }
        }
        Assert.True(failures.Count == 0,
            $"{failures.Count} mutations threw something else:\n{string.Join("\n", failures.Where(f => f != ""))}");
        Assert.True(valid > 100 && rejected > 10_000,
            $"valid {valid}, rejected {rejected}: the mutations should reach both outcomes");
    }

    /// <summary>Applies one random mutation in place and describes it.</summary>
    static string Mutate(List<byte> bytes, Random random, int headerEnd, string[] numbers)
    {
        int Position(bool inHeader) => bytes.Count == 0 ? 0 : inHeader && headerEnd <= bytes.Count && random.Next(4) > 0
            ? random.Next(Math.Min(headerEnd, bytes.Count))
            : random.Next(bytes.Count);
        switch (random.Next(8))
        {
            case 0 when bytes.Count > 0:
            {
                int at = Position(true), bit = random.Next(8);
                bytes[at] ^= (byte)(1 << bit);
                return $"flip bit {bit} at {at}";
            }
            case 1 when bytes.Count > 0:
            {
                int at = Position(true);
                // Half the time a byte that means something in JSON, so the header often stays parseable.
                byte value = random.Next(2) == 0 ? (byte)"{}[]\",:-0123456789. e\\"[random.Next(22)] : (byte)random.Next(256);
                bytes[at] = value;
                return $"set {at} to 0x{value:X2}";
            }
            case 2:
            {
                int length = random.Next(bytes.Count + 1);
                bytes.RemoveRange(length, bytes.Count - length);
                return $"truncate to {length}";
            }
            case 3:
            {
                int at = random.Next(bytes.Count + 1);
                var inserted = new byte[random.Next(1, 17)];
                random.NextBytes(inserted);
                bytes.InsertRange(at, inserted);
                return $"insert {inserted.Length} at {at}";
            }
            case 4 when bytes.Count > 0:
            {
                int at = Position(false), count = Math.Min(random.Next(1, 17), bytes.Count - at);
                bytes.RemoveRange(at, count);
                return $"delete {count} at {at}";
            }
            case 5 when bytes.Count >= 8:
            {
                ulong current = BinaryPrimitives.ReadUInt64LittleEndian(bytes.ToArray());
                ulong value = random.Next(6) switch
                {
                    0 => current + (ulong)random.Next(1, 9),
                    1 => current - (ulong)random.Next(1, 9),
                    2 => (ulong)random.NextInt64(),
                    3 => 1ul << random.Next(64),
                    4 => ulong.MaxValue - (ulong)random.Next(16),
                    _ => (ulong)random.Next(bytes.Count),
                };
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, value);
                for (int i = 0; i < 8; i++) bytes[i] = prefix[i];
                return $"header length {value}";
            }
            case 6 when bytes.Count > 0:
            {
                // Replace a run of digits inside the header with another JSON number or value.
                var digits = Enumerable.Range(0, Math.Min(headerEnd, bytes.Count))
                    .Where(i => char.IsAsciiDigit((char)bytes[i])).ToList();
                if (digits.Count == 0) return "no digit to edit";
                int at = digits[random.Next(digits.Count)], end = at;
                while (end < bytes.Count && char.IsAsciiDigit((char)bytes[end])) end++;
                string replacement = numbers[random.Next(numbers.Length)];
                bytes.RemoveRange(at, end - at);
                bytes.InsertRange(at, Encoding.ASCII.GetBytes(replacement));
                return $"number at {at} -> {replacement}";
            }
            default:
            {
                if (bytes.Count < 2) return "nothing";
                // Copy a slice of the file over another place: duplicates keys, entries and data.
                int from = random.Next(bytes.Count), length = random.Next(1, Math.Min(40, bytes.Count - from) + 1);
                var slice = bytes.GetRange(from, length);
                int to = random.Next(bytes.Count + 1);
                bytes.InsertRange(to, slice);
                return $"copy {length} from {from} to {to}";
            }
        }
    }
}
