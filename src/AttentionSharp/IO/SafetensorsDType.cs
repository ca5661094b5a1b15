namespace AttentionSharp.IO;

/// <summary>
/// The element types a safetensors header may name, spelled as in the format ("F32", "BF16", ...).
/// Sub-byte types (F4, F6_*) are not supported: a header naming them is rejected as an unknown dtype.
/// </summary>
public enum SafetensorsDType
{
    /// <summary>One byte per element, 0 or 1.</summary>
    Bool,
    /// <summary>8-bit unsigned integer.</summary>
    U8,
    /// <summary>8-bit signed integer.</summary>
    I8,
    /// <summary>8-bit float, 5 exponent bits and 2 mantissa bits (the top byte of an F16).</summary>
    F8E5M2,
    /// <summary>8-bit float, 4 exponent bits and 3 mantissa bits, no infinities (the "fn" variant).</summary>
    F8E4M3,
    /// <summary>8-bit power of two, 2^(e − 127); 0xFF is NaN.</summary>
    F8E8M0,
    /// <summary>16-bit signed integer.</summary>
    I16,
    /// <summary>16-bit unsigned integer.</summary>
    U16,
    /// <summary>IEEE 754 half precision.</summary>
    F16,
    /// <summary>bfloat16: the top 16 bits of an F32.</summary>
    BF16,
    /// <summary>32-bit signed integer.</summary>
    I32,
    /// <summary>32-bit unsigned integer.</summary>
    U32,
    /// <summary>IEEE 754 single precision.</summary>
    F32,
    /// <summary>Complex number of two F32 (real, imaginary).</summary>
    C64,
    /// <summary>IEEE 754 double precision.</summary>
    F64,
    /// <summary>64-bit signed integer.</summary>
    I64,
    /// <summary>64-bit unsigned integer.</summary>
    U64,
}

/// <summary>Sizes and header spellings of <see cref="SafetensorsDType"/>.</summary>
public static class SafetensorsDTypes
{
    static readonly string[] Names =
        ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"];

    static readonly int[] Sizes = [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8, 8];

    /// <summary>Every supported spelling, in the order of the enum, for error messages.</summary>
    public static string KnownNames => string.Join(", ", Names);

    /// <summary>Bytes per element.</summary>
    public static int SizeOf(this SafetensorsDType dtype) => Sizes[Index(dtype)];

    /// <summary>The spelling used in the header, e.g. "F32".</summary>
    public static string ToHeaderName(this SafetensorsDType dtype) => Names[Index(dtype)];

    /// <summary>True for F8*, F16, BF16, F32 and F64: the types <see cref="SafetensorsEntry.ToFloat32"/> converts.</summary>
    public static bool IsFloatingPoint(this SafetensorsDType dtype) => dtype is SafetensorsDType.F8E5M2
        or SafetensorsDType.F8E4M3 or SafetensorsDType.F8E8M0 or SafetensorsDType.F16 or SafetensorsDType.BF16
        or SafetensorsDType.F32 or SafetensorsDType.F64;

    /// <summary>True for BOOL and the signed and unsigned integers: the types the integer readers convert.</summary>
    public static bool IsInteger(this SafetensorsDType dtype) => dtype is SafetensorsDType.Bool or SafetensorsDType.U8
        or SafetensorsDType.I8 or SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.I32
        or SafetensorsDType.U32 or SafetensorsDType.I64 or SafetensorsDType.U64;

    /// <summary>Parses a header spelling (case-sensitive, as the format is).</summary>
    public static bool TryParse(ReadOnlySpan<char> name, out SafetensorsDType dtype)
    {
        for (int i = 0; i < Names.Length; i++)
        {
            if (name.SequenceEqual(Names[i])) { dtype = (SafetensorsDType)i; return true; }
        }
        dtype = default;
        return false;
    }

    static int Index(SafetensorsDType dtype)
    {
        int i = (int)dtype;
        if ((uint)i >= (uint)Names.Length)
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, $"Expected a defined SafetensorsDType, got {i}.");
        return i;
    }
}
