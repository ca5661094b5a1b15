using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace AttentionSharp.IO;

/// <summary>
/// A validated safetensors file held in memory. Layout (https://github.com/huggingface/safetensors):
/// <code>
/// [8 bytes: N, little-endian u64] [N bytes: UTF-8 JSON header] [data section]
/// header = { "__metadata__": {string: string}?, NAME: {"dtype": D, "shape": [..], "data_offsets": [begin, end]}, ... }
/// </code>
/// Offsets count from the first byte of the data section. Reading checks every promise of the format, as strictly as the
/// reference implementation: N ≤ 100 MB and within the file, the header a JSON object starting with '{', every entry an
/// object with exactly dtype, shape and data_offsets of the right JSON types, known dtypes, begin ≤ end, byte size =
/// element count × dtype size (overflow-checked), entries contiguous, non-overlapping and covering the data section
/// exactly, unique names, string metadata. Any violation is a <see cref="SafetensorsException"/>; I/O failures are
/// <see cref="IOException"/>s.
/// </summary>
/// <remarks>
/// A file (or any seekable stream) is read tensor by tensor: the header, then each tensor's bytes into an array of its
/// own, in file order, so a file may be any size (GPT-2 large's single 3.25 GB file among them) as long as each tensor
/// is under 2 GB (<see cref="Array.MaxLength"/> bytes). A buffer, or a stream that cannot seek, is held in one array
/// whose slices the entries are, so it may hold at most that many bytes.
/// </remarks>
public sealed class SafetensorsFile
{
    /// <summary>The largest header the reader accepts (the reference implementation's limit).</summary>
    public const long MaxHeaderLength = 100_000_000;

    readonly Dictionary<string, SafetensorsEntry> _byName;

    /// <summary>The path the file was read from, or null for a buffer or stream.</summary>
    public string? FilePath { get; }

    /// <summary>The "__metadata__" pairs; empty when the header has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensors in data-section order (by offset).</summary>
    public IReadOnlyList<SafetensorsEntry> Entries { get; }

    SafetensorsFile(string? filePath, IReadOnlyDictionary<string, string> metadata, SafetensorsEntry[] entries)
    {
        FilePath = filePath;
        Metadata = metadata;
        Entries = entries;
        _byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
    }

    /// <summary>Reads and validates the file at <paramref name="path"/>.</summary>
    /// <exception cref="SafetensorsException">
    /// The file is not a valid safetensors file, or holds a tensor of 2 GB or more.
    /// </exception>
    /// <exception cref="IOException">The file cannot be opened or read (e.g. <see cref="FileNotFoundException"/>).</exception>
    public static SafetensorsFile Read(string path) => ReadFile(path, null);

    /// <summary>
    /// Reads the file at <paramref name="path"/>, validated as a whole from its header, but holds only the tensors whose
    /// names <paramref name="include"/> accepts: the others' bytes are skipped, not read (a checkpoint's weight average
    /// without the optimizer's two moments beside it). <see cref="Entries"/> lists the tensors held.
    /// </summary>
    public static SafetensorsFile Read(string path, Func<string, bool> include)
    {
        ArgumentNullException.ThrowIfNull(include);
        return ReadFile(path, include);
    }

    /// <summary>A file, tensor by tensor: read in order when every tensor is held, seeking past those left out.</summary>
    static SafetensorsFile ReadFile(string path, Func<string, bool>? include)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1,
            include is null ? FileOptions.SequentialScan : FileOptions.RandomAccess);
        return ReadByTensor(stream, stream.Length, path, include);
    }

    /// <summary>
    /// Reads and validates a safetensors image from the current position of <paramref name="stream"/> to its end.
    /// </summary>
    public static SafetensorsFile Read(Stream stream) => Read(stream, null);

    /// <summary>
    /// Validates a safetensors image held in memory; the bytes are copied, so the span may be reused afterwards.
    /// </summary>
    public static SafetensorsFile Read(ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        return Parse(copy, copy.Length, null);
    }

    static SafetensorsFile Read(Stream stream, string? path)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.CanSeek) return ReadByTensor(stream, Math.Max(0, stream.Length - stream.Position), path, null);
        var memory = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = stream.Read(chunk)) > 0)
        {
            if (memory.Length + n > Array.MaxLength) throw TooLarge(path, $"more than {Array.MaxLength}");
            memory.Write(chunk, 0, n);
        }
        return Parse(memory.GetBuffer(), (int)memory.Length, path);
    }

    static SafetensorsException TooLarge(string? path, string size) => new(path, null, null,
        $"the stream holds {size} bytes; a stream that cannot seek is held in one array, at most {Array.MaxLength} bytes " +
        "(a file, or a seekable stream, is read tensor by tensor instead)");

    /// <summary>
    /// Reads <paramref name="length"/> bytes from <paramref name="stream"/>: the header first, validated as a whole, then
    /// each tensor's bytes into an array of its own, in file order (the layout check has proved that the tensors tile
    /// the data section). A stream that ends early (a file that shrank while being read) fails as truncated. With
    /// <paramref name="include"/>, the tensors it refuses are seeked past and left out of the entries.
    /// </summary>
    static SafetensorsFile ReadByTensor(Stream stream, long length, string? path, Func<string, bool>? include)
    {
        var prefix = new byte[(int)Math.Min(length, 8)];
        int read = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
        ulong headerLength = read < 8 ? 0 : BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        // A header length that is itself wrong fails in ParseHeader on the prefix alone, with its own message.
        var head = prefix;
        if (read == 8 && headerLength <= MaxHeaderLength && headerLength <= (ulong)(length - 8))
        {
            head = new byte[8 + (int)headerLength];
            prefix.CopyTo(head, 0);
            read += stream.ReadAtLeast(head.AsSpan(8), (int)headerLength, throwOnEndOfStream: false);
        }
        if (read < head.Length) throw Truncated(path, read, null);
        var (metadata, entries, dataStart) = ParseHeader(head, length, path);
        var built = new List<SafetensorsEntry>(entries.Count);
        long position = dataStart;
        foreach (var (e, count) in entries)
        {
            ulong size = e.End - e.Begin;
            if (include is not null && !include(e.Name))
            {
                stream.Seek((long)size, SeekOrigin.Current);
                position += (long)size;
                continue;
            }
            if (size > (ulong)Array.MaxLength)
                throw new SafetensorsException(path, e.Name, "data_offsets",
                    $"the tensor is {size} bytes; a tensor may hold at most {Array.MaxLength} bytes here (one array)");
            var data = new byte[size];
            int got = stream.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
            if (got < data.Length) throw Truncated(path, position + got, e.Name);
            position += data.Length;
            built.Add(new SafetensorsEntry(e.Name, e.DType, e.Shape, count, (long)e.Begin, data, path));
        }
        return new SafetensorsFile(path, metadata, [.. built]);
    }

    static SafetensorsException Truncated(string? path, long at, string? tensor) => new(path, tensor, null,
        $"the file ended after {at} bytes, before the length it had when reading began; it was truncated while being read");

    /// <summary>Validates <paramref name="file"/>[0, <paramref name="length"/>) and builds entries that slice it.</summary>
    static SafetensorsFile Parse(byte[] file, int length, string? path)
    {
        var (metadata, entries, dataStart) = ParseHeader(file.AsSpan(0, length), length, path);
        var built = new SafetensorsEntry[entries.Count];
        for (int i = 0; i < built.Length; i++)
        {
            var (e, count) = entries[i];
            // CheckLayout proved begin ≤ end ≤ data length < 2^31, so these casts are exact.
            var data = new ReadOnlyMemory<byte>(file, dataStart + (int)e.Begin, (int)(e.End - e.Begin));
            built[i] = new SafetensorsEntry(e.Name, e.DType, e.Shape, count, (long)e.Begin, data, path);
        }
        return new SafetensorsFile(path, metadata, built);
    }

    /// <summary>
    /// Validates the header of a file of <paramref name="length"/> bytes that <paramref name="head"/> begins (its 8-byte
    /// length and the JSON it announces, or as much of them as the file holds) and the tensors' layout against the
    /// data section; returns the metadata, the entries in data-section order with their element counts, and where the
    /// data section starts.
    /// </summary>
    static (Dictionary<string, string> Metadata, List<(HeaderEntry Entry, long Count)> Entries, int DataStart) ParseHeader(
        ReadOnlySpan<byte> head, long length, string? path)
    {
        if (length < 8)
            throw new SafetensorsException(path, null, null, length == 0
                ? "the file is empty; expected an 8-byte header length, a JSON header and the tensor data"
                : $"the file holds {length} bytes, fewer than the 8-byte header length that begins every safetensors file");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(head);
        if (headerLength > MaxHeaderLength)
            throw new SafetensorsException(path, null, null,
                $"the header length says {headerLength} bytes, above the {MaxHeaderLength}-byte limit; the file is " +
                "corrupt or not safetensors");
        if (headerLength > (ulong)(length - 8))
            throw new SafetensorsException(path, null, null,
                $"the header length says {headerLength} bytes but only {length - 8} bytes follow it; the file is " +
                "truncated or corrupt");

        int dataStart = 8 + (int)headerLength;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var header = SafetensorsHeader.Parse(head.Slice(8, (int)headerLength), path, metadata);
        return (metadata, CheckLayout(header, (ulong)(length - dataStart), path), dataStart);
    }

    /// <summary>
    /// Checks each entry's size against its offsets and the data section, then that the entries, sorted by offset, tile
    /// the data section exactly. Returns them in that order with their element counts.
    /// </summary>
    static List<(HeaderEntry Entry, long Count)> CheckLayout(List<HeaderEntry> header, ulong dataLength, string? path)
    {
        var entries = new List<(HeaderEntry Entry, long Count)>(header.Count);
        foreach (var e in header)
        {
            SafetensorsException Fail(string field, string problem) => new(path, e.Name, field, problem);
            if (e.Begin > e.End)
                throw Fail("data_offsets", $"[{e.Begin}, {e.End}] has begin after end");
            if (!TryElementCount(e.Shape, out long count))
                throw Fail("shape", $"the element count of {SafetensorsEntry.FormatShape(e.Shape)} overflows a 64-bit integer");
            int size = e.DType.SizeOf();
            if (count > long.MaxValue / size)
                throw Fail("shape", $"{SafetensorsEntry.FormatShape(e.Shape)} of {e.DType.ToHeaderName()} needs more " +
                    $"than {long.MaxValue} bytes");
            if ((ulong)(count * size) != e.End - e.Begin)
                throw Fail("data_offsets", $"shape {SafetensorsEntry.FormatShape(e.Shape)} of {e.DType.ToHeaderName()} " +
                    $"needs {count * size} bytes " +
                    $"({count} × {size}) but [{e.Begin}, {e.End}] spans {e.End - e.Begin}");
            if (e.End > dataLength)
                throw Fail("data_offsets",
                    $"[{e.Begin}, {e.End}] reaches past the end of the data section ({dataLength} bytes); " +
                    "the file is truncated or the offsets are wrong");
            entries.Add((e, count));
        }

        // Ties on begin come from zero-size tensors; ordering by end then name keeps them before their neighbour and the
        // result deterministic.
        entries.Sort((a, b) => a.Entry.Begin != b.Entry.Begin ? a.Entry.Begin.CompareTo(b.Entry.Begin)
            : a.Entry.End != b.Entry.End ? a.Entry.End.CompareTo(b.Entry.End)
            : string.CompareOrdinal(a.Entry.Name, b.Entry.Name));
        ulong covered = 0;
        string? previousName = null;
        string Previous() => previousName is null
            ? "the start of the data section"
            : $"tensor '{SafetensorsException.Shorten(previousName)}'";
        foreach (var (e, _) in entries)
        {
            if (e.Begin < covered)
                throw new SafetensorsException(path, e.Name, "data_offsets",
                    $"[{e.Begin}, {e.End}] overlaps {Previous()}, which ends at {covered}; tensors must not share bytes");
            if (e.Begin > covered)
                throw new SafetensorsException(path, e.Name, "data_offsets",
                    $"[{e.Begin}, {e.End}] leaves a gap: bytes [{covered}, {e.Begin}) after {Previous()} belong to no " +
                    "tensor; tensors must be contiguous");
            covered = e.End;
            previousName = e.Name;
        }
        if (covered != dataLength)
            throw new SafetensorsException(path, null, null,
                $"the data section holds {dataLength} bytes but the tensors cover only {covered}; bytes [{covered}, " +
                $"{dataLength}) belong to no tensor");
        return entries;
    }

    /// <summary>Product of the dimensions; a zero dimension makes it 0 however large the others are.</summary>
    static bool TryElementCount(int[] shape, out long count)
    {
        count = 1;
        if (Array.IndexOf(shape, 0) >= 0) { count = 0; return true; }
        foreach (int dim in shape)
        {
            if (count > long.MaxValue / dim) return false;
            count *= dim;
        }
        return true;
    }

    /// <summary>Whether a tensor of this name exists.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Looks a tensor up by name without throwing.</summary>
    public bool TryGetEntry(string name, [MaybeNullWhen(false)] out SafetensorsEntry entry) =>
        _byName.TryGetValue(name, out entry);

    /// <summary>
    /// The tensor of this name; a missing name throws a <see cref="SafetensorsException"/> listing the closest names.
    /// </summary>
    public SafetensorsEntry GetEntry(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_byName.TryGetValue(name, out var entry)) return entry;
        string problem = _byName.Count == 0
            ? "not found; the file holds no tensors"
            : $"not found among the file's {_byName.Count} tensors; closest names: " +
              string.Join(", ", NameSuggestions.Closest(name, _byName.Keys, 5)
                  .Select(n => $"'{SafetensorsException.Shorten(n)}'"));
        throw new SafetensorsException(FilePath, name, null, problem);
    }

    /// <summary>The named tensor as floats (see <see cref="SafetensorsEntry.ToFloat32"/>).</summary>
    public float[] ReadFloat32(string name) => GetEntry(name).ToFloat32();

    /// <summary>The named tensor as ints (see <see cref="SafetensorsEntry.ToInt32"/>).</summary>
    public int[] ReadInt32(string name) => GetEntry(name).ToInt32();

    /// <summary>The named tensor as longs (see <see cref="SafetensorsEntry.ToInt64"/>).</summary>
    public long[] ReadInt64(string name) => GetEntry(name).ToInt64();
}
