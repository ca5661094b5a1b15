using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace AttentionSharp.IO;

/// <summary>
/// Collects tensors and metadata, then writes a safetensors file (layout in <see cref="SafetensorsFile"/>) the way the
/// reference implementation does: compact JSON header padded with spaces so the data section starts at a multiple of
/// 8 bytes, metadata first when there is any. Tensors are laid out in the order they were added, so output is
/// deterministic. Data is copied when added, so the caller's buffers may change afterwards.
/// </summary>
public sealed class SafetensorsWriter
{
    sealed record Tensor(string Name, SafetensorsDType DType, int[] Shape, byte[] Data);

    readonly List<Tensor> _tensors = [];
    readonly HashSet<string> _names = new(StringComparer.Ordinal);
    readonly List<KeyValuePair<string, string>> _metadata = [];

    /// <summary>How many tensors have been added.</summary>
    public int Count => _tensors.Count;

    /// <summary>Adds a tensor from raw little-endian, row-major bytes: <c>data.Length</c> must equal element count × dtype size.</summary>
    public void Add(string name, SafetensorsDType dtype, ReadOnlySpan<int> shape, ReadOnlySpan<byte> data)
    {
        var bytes = Allocate(name, dtype, shape, out long count);
        if (data.Length != bytes.LongLength)
            throw new ArgumentException($"Tensor '{name}' has shape {SafetensorsEntry.FormatShape(shape)} ({count} elements) of {dtype.ToHeaderName()}, " +
                $"which needs {bytes.LongLength} bytes, but {data.Length} bytes arrived.", nameof(data));
        data.CopyTo(bytes);
        Commit(name, dtype, shape, bytes);
    }

    /// <summary>Adds float data stored as <paramref name="dtype"/>: F32 (default), F64, or F16/BF16 rounded to nearest even.</summary>
    public void Add(string name, ReadOnlySpan<int> shape, ReadOnlySpan<float> data, SafetensorsDType dtype = SafetensorsDType.F32)
    {
        if (dtype is not (SafetensorsDType.F32 or SafetensorsDType.F64 or SafetensorsDType.F16 or SafetensorsDType.BF16))
            throw new ArgumentException($"Float data for tensor '{name}' is stored as F32, F64, F16 or BF16, not {dtype.ToHeaderName()}.", nameof(dtype));
        var bytes = Allocate(name, dtype, shape, out long count);
        CheckLength(name, shape, count, data.Length);
        SafetensorsConvert.EncodeFloat(data, dtype, bytes);
        Commit(name, dtype, shape, bytes);
    }

    /// <summary>Adds int data stored as <paramref name="dtype"/> (I32 by default, or any integer type or BOOL the values fit).</summary>
    public void Add(string name, ReadOnlySpan<int> shape, ReadOnlySpan<int> data, SafetensorsDType dtype = SafetensorsDType.I32)
    {
        var bytes = AllocateInteger(name, dtype, shape, data.Length);
        for (int i = 0; i < data.Length; i++) EncodeInteger(name, data[i], dtype, bytes, i);
        Commit(name, dtype, shape, bytes);
    }

    /// <summary>Adds long data stored as <paramref name="dtype"/> (I64 by default, or any integer type or BOOL the values fit).</summary>
    public void Add(string name, ReadOnlySpan<int> shape, ReadOnlySpan<long> data, SafetensorsDType dtype = SafetensorsDType.I64)
    {
        var bytes = AllocateInteger(name, dtype, shape, data.Length);
        for (int i = 0; i < data.Length; i++) EncodeInteger(name, data[i], dtype, bytes, i);
        Commit(name, dtype, shape, bytes);
    }

    /// <summary>Sets a "__metadata__" pair; setting a key again replaces its value and keeps its place.</summary>
    public void SetMetadata(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        CheckUtf16(key, "Metadata key", nameof(key));
        CheckUtf16(value, $"Metadata value of '{key}'", nameof(value));
        int at = _metadata.FindIndex(p => p.Key == key);
        if (at >= 0) _metadata[at] = new(key, value);
        else _metadata.Add(new(key, value));
    }

    /// <summary>
    /// Writes the file atomically: the bytes go to a temporary file in the same directory, are flushed to disk, and the
    /// temporary file is then renamed over <paramref name="path"/>. A crash leaves either the old file or the new one.
    /// </summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' names a root, not a file.", nameof(path));
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Cannot save '{path}': the directory '{directory}' does not exist.");
        string temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                Save(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            // Best effort: the original error matters more than a leftover temporary file.
            try { File.Delete(temporary); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Writes the file to <paramref name="stream"/> at its current position.</summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var header = BuildHeader();
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (var t in _tensors) stream.Write(t.Data);
    }

    /// <summary>The file as one array (for files under 2 GB).</summary>
    public byte[] ToArray()
    {
        var memory = new MemoryStream();
        Save(memory);
        return memory.ToArray();
    }

    /// <summary>
    /// header = {"__metadata__": {...}?, NAME: {"dtype", "shape", "data_offsets"}, ...} in insertion order, then spaces
    /// up to a multiple of 8 bytes so the data section starts 8-byte aligned (8 + N ≡ 0 mod 8).
    /// </summary>
    byte[] BuildHeader()
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping writes non-ASCII names as UTF-8, as the reference implementation does.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (_metadata.Count > 0)
            {
                json.WriteStartObject(SafetensorsHeader.MetadataKey);
                foreach (var (key, value) in _metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in _tensors)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.ToHeaderName());
                json.WriteStartArray("shape");
                foreach (int dim in t.Shape) json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset += t.Data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        if (padded > SafetensorsFile.MaxHeaderLength)
            throw new InvalidOperationException($"The header would be {padded} bytes, above the {SafetensorsFile.MaxHeaderLength}-byte limit readers accept.");
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    /// <summary>Checks the name and shape and returns a zeroed buffer of the tensor's byte size.</summary>
    byte[] Allocate(string name, SafetensorsDType dtype, ReadOnlySpan<int> shape, out long count)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0) throw new ArgumentException("A tensor name must be non-empty.", nameof(name));
        if (name == SafetensorsHeader.MetadataKey)
            throw new ArgumentException($"'{SafetensorsHeader.MetadataKey}' is reserved for metadata and cannot name a tensor.", nameof(name));
        CheckUtf16(name, "Tensor name", nameof(name));
        if (_names.Contains(name)) throw new ArgumentException($"A tensor named '{name}' was already added.", nameof(name));
        int size = dtype.SizeOf();
        count = 1;
        foreach (int dim in shape)
        {
            if (dim < 0) throw new ArgumentException($"Tensor '{name}' has shape {SafetensorsEntry.FormatShape(shape)}; dimensions must be non-negative.", nameof(shape));
            count = dim == 0 || count == 0 ? 0 : count <= Array.MaxLength / dim ? count * dim : long.MaxValue;
        }
        if (count > Array.MaxLength / size)
            throw new ArgumentException($"Tensor '{name}' has shape {SafetensorsEntry.FormatShape(shape)} of {dtype.ToHeaderName()}, more than the " +
                $"{Array.MaxLength} bytes one tensor may hold.", nameof(shape));
        return new byte[count * size];
    }

    byte[] AllocateInteger(string name, SafetensorsDType dtype, ReadOnlySpan<int> shape, int length)
    {
        if (!dtype.IsInteger())
            throw new ArgumentException($"Integer data for tensor '{name}' is stored as an integer type or BOOL, not {dtype.ToHeaderName()}.", nameof(dtype));
        var bytes = Allocate(name, dtype, shape, out long count);
        CheckLength(name, shape, count, length);
        return bytes;
    }

    static void EncodeInteger(string name, long value, SafetensorsDType dtype, byte[] bytes, int i)
    {
        if (!SafetensorsConvert.TryEncodeInteger(value, dtype, bytes, i))
            throw new ArgumentException($"Tensor '{name}': element {i} is {value}, which {dtype.ToHeaderName()} cannot hold.", "data");
    }

    static void CheckLength(string name, ReadOnlySpan<int> shape, long count, int length)
    {
        if (length != count)
            throw new ArgumentException($"Tensor '{name}' has shape {SafetensorsEntry.FormatShape(shape)} ({count} elements) but {length} values arrived.", "data");
    }

    void Commit(string name, SafetensorsDType dtype, ReadOnlySpan<int> shape, byte[] bytes)
    {
        _names.Add(name);
        _tensors.Add(new Tensor(name, dtype, shape.ToArray(), bytes));
    }

    /// <summary>JSON cannot carry a lone surrogate, so such a string is refused when added rather than when saved.</summary>
    static void CheckUtf16(string text, string what, string parameter)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(text[i]))
                throw new ArgumentException($"{what} has an unpaired surrogate at index {i}; it must be valid Unicode.", parameter);
        }
    }
}
