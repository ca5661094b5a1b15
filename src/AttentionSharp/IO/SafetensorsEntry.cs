using System.Collections.ObjectModel;
using System.Runtime.InteropServices;

namespace AttentionSharp.IO;

/// <summary>
/// One validated tensor of a <see cref="SafetensorsFile"/>: name, element type, shape and its little-endian,
/// row-major bytes. <c>Data.Length == ElementCount × DType.SizeOf()</c> always holds.
/// </summary>
public sealed class SafetensorsEntry
{
    /// <summary>The tensor's name as written in the header.</summary>
    public string Name { get; }

    /// <summary>The element type.</summary>
    public SafetensorsDType DType { get; }

    /// <summary>The dimensions, outermost first; empty for a scalar.</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>The product of <see cref="Shape"/> (1 for a scalar, 0 when a dimension is 0).</summary>
    public long ElementCount { get; }

    /// <summary>Where the bytes begin, counted from the first byte after the header (the header's data_offsets[0]).</summary>
    public long Offset { get; }

    /// <summary>The raw bytes, little-endian and row-major.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The file the entry came from, or null; used in error messages.</summary>
    internal string? FilePath { get; }

    internal SafetensorsEntry(string name, SafetensorsDType dtype, int[] shape, long elementCount, long offset,
        ReadOnlyMemory<byte> data, string? filePath)
    {
        Name = name;
        DType = dtype;
        Shape = new ReadOnlyCollection<int>(shape);
        ElementCount = elementCount;
        Offset = offset;
        Data = data;
        FilePath = filePath;
    }

    /// <summary>The shape as a fresh array, e.g. for constructing a tensor.</summary>
    public int[] ShapeToArray() => [.. Shape];

    /// <summary>The shape as "[2, 3]", for messages.</summary>
    public string ShapeText => FormatShape(Shape.ToArray());

    /// <summary>"[2, 3]" for messages; "[]" for a scalar.</summary>
    internal static string FormatShape(ReadOnlySpan<int> shape) => $"[{string.Join(", ", shape.ToArray())}]";

    /// <summary>
    /// The elements as float. Converts F16, BF16 and the F8 types exactly and F64 by rounding to nearest;
    /// integer, BOOL and complex types are refused (read them with <see cref="ToInt64"/>).
    /// </summary>
    public float[] ToFloat32()
    {
        var values = new float[CheckedArrayLength("ToFloat32")];
        CopyFloat32To(values);
        return values;
    }

    /// <summary>Converts the elements as <see cref="ToFloat32"/> does, into <paramref name="destination"/> of exactly <see cref="ElementCount"/> floats.</summary>
    public void CopyFloat32To(Span<float> destination)
    {
        if (!DType.IsFloatingPoint())
            throw Error($"holds {DType.ToHeaderName()}, not a floating-point type; ToFloat32 reads F32, F16, BF16, F64 and " +
                "F8_E5M2/F8_E4M3/F8_E8M0 (read integers and BOOL with ToInt32 or ToInt64)");
        if (destination.Length != ElementCount)
            throw new ArgumentException($"Tensor '{SafetensorsException.Shorten(Name)}' has {ElementCount} elements (shape {ShapeText}); " +
                $"the destination holds {destination.Length}.", nameof(destination));
        SafetensorsConvert.DecodeFloat(Data.Span, DType, destination);
    }

    /// <summary>
    /// The elements as int. Reads BOOL (as 0/1) and every integer type; values outside the Int32 range
    /// (possible for I64, U32, U64) are refused with their index.
    /// </summary>
    public int[] ToInt32()
    {
        var values = new int[CheckedArrayLength("ToInt32")];
        if (DType == SafetensorsDType.I32 && BitConverter.IsLittleEndian)
            Data.Span.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
        else
            FillIntegers(values.Length, "Int32", int.MinValue, int.MaxValue, (i, v) => values[i] = (int)v);
        return values;
    }

    /// <summary>The elements as long. Reads BOOL (as 0/1) and every integer type; U64 values above Int64.MaxValue are refused.</summary>
    public long[] ToInt64()
    {
        var values = new long[CheckedArrayLength("ToInt64")];
        if (DType == SafetensorsDType.I64 && BitConverter.IsLittleEndian)
            Data.Span.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
        else
            FillIntegers(values.Length, "Int64", long.MinValue, long.MaxValue, (i, v) => values[i] = v);
        return values;
    }

    void FillIntegers(int count, string target, long min, long max, Action<int, long> store)
    {
        if (!DType.IsInteger())
            throw Error($"holds {DType.ToHeaderName()}, not an integer type; To{target} reads BOOL, U8, I8, I16, U16, I32, U32, " +
                "I64 and U64 (read floating-point types with ToFloat32)");
        var bytes = Data.Span;
        for (int i = 0; i < count; i++)
        {
            if (!SafetensorsConvert.TryDecodeInteger(bytes, DType, i, out long v, out ulong unsignedValue))
                throw Error($"element {i} is {unsignedValue}, outside the {target} range");
            if (v < min || v > max)
                throw Error($"element {i} is {v}, outside the {target} range [{min}, {max}]; read it with ToInt64");
            store(i, v);
        }
    }

    int CheckedArrayLength(string method) => ElementCount <= Array.MaxLength
        ? (int)ElementCount
        : throw Error($"has {ElementCount} elements, more than one .NET array holds ({Array.MaxLength}); {method} cannot return it");

    SafetensorsException Error(string problem) => new(FilePath, Name, null, problem);
}
