using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace AttentionSharp.IO;

/// <summary>
/// Element conversions between little-endian safetensors bytes and .NET numbers, one element type at a time.
/// Callers have checked lengths: <c>bytes.Length == values.Length × dtype.SizeOf()</c>.
/// </summary>
internal static class SafetensorsConvert
{
    /// <summary>Decodes floating-point elements (F8*, F16, BF16, F32, F64) to float; F64 rounds to nearest.</summary>
    public static void DecodeFloat(ReadOnlySpan<byte> bytes, SafetensorsDType dtype, Span<float> values)
    {
        switch (dtype)
        {
            case SafetensorsDType.F32 when BitConverter.IsLittleEndian:
                bytes.CopyTo(MemoryMarshal.AsBytes(values));
                break;
            case SafetensorsDType.F32:
                for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(4 * i)..]);
                break;
            case SafetensorsDType.F64:
                for (int i = 0; i < values.Length; i++) values[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes[(8 * i)..]);
                break;
            case SafetensorsDType.F16:
                for (int i = 0; i < values.Length; i++) values[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(2 * i)..]);
                break;
            case SafetensorsDType.BF16:
                // bfloat16 is the upper half of an IEEE single: widening is exact.
                for (int i = 0; i < values.Length; i++)
                    values[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]) << 16);
                break;
            case SafetensorsDType.F8E5M2:
                // E5M2 is the upper byte of an IEEE half: widening is exact.
                for (int i = 0; i < values.Length; i++) values[i] = (float)BitConverter.UInt16BitsToHalf((ushort)(bytes[i] << 8));
                break;
            case SafetensorsDType.F8E4M3:
                for (int i = 0; i < values.Length; i++) values[i] = DecodeE4M3(bytes[i]);
                break;
            case SafetensorsDType.F8E8M0:
                for (int i = 0; i < values.Length; i++) values[i] = bytes[i] == 0xFF ? float.NaN : (float)Math.ScaleB(1.0, bytes[i] - 127);
                break;
            default:
                throw new ArgumentException($"Expected a floating-point dtype, got {dtype.ToHeaderName()}.", nameof(dtype));
        }
    }

    /// <summary>
    /// E4M3 "fn" (OCP FP8): value = (−1)^s · 2^(e−7) · (1 + m/8) for e &gt; 0, (−1)^s · 2^−6 · m/8 for e = 0;
    /// S.1111.111 is NaN and there are no infinities.
    /// </summary>
    static float DecodeE4M3(byte b)
    {
        int e = (b >> 3) & 0xF, m = b & 0x7;
        if (e == 0xF && m == 0x7) return float.NaN;
        float magnitude = e == 0 ? MathF.ScaleB(m, -9) : MathF.ScaleB(8 + m, e - 10);
        return (b & 0x80) != 0 ? -magnitude : magnitude;
    }

    /// <summary>Encodes floats as F16, BF16, F32 or F64, rounding to nearest even where the type is narrower.</summary>
    public static void EncodeFloat(ReadOnlySpan<float> values, SafetensorsDType dtype, Span<byte> bytes)
    {
        switch (dtype)
        {
            case SafetensorsDType.F32 when BitConverter.IsLittleEndian:
                MemoryMarshal.AsBytes(values).CopyTo(bytes);
                break;
            case SafetensorsDType.F32:
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes[(4 * i)..], values[i]);
                break;
            case SafetensorsDType.F64:
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(bytes[(8 * i)..], values[i]);
                break;
            case SafetensorsDType.F16:
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(bytes[(2 * i)..], (Half)values[i]);
                break;
            case SafetensorsDType.BF16:
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes[(2 * i)..], ToBFloat16Bits(values[i]));
                break;
            default:
                throw new ArgumentException($"Expected F16, BF16, F32 or F64 for float data, got {dtype.ToHeaderName()}.", nameof(dtype));
        }
    }

    /// <summary>Round to nearest even on the upper 16 bits, as PyTorch does; NaN stays a (quiet) NaN.</summary>
    internal static ushort ToBFloat16Bits(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        if (float.IsNaN(x)) return (ushort)((bits >> 16) | 0x0040);
        bits += 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }

    /// <summary>
    /// Reads integer element <paramref name="i"/> (BOOL, U8…U64, I8…I64) as a long. Returns false only for a U64
    /// value above <see cref="long.MaxValue"/>, with the value in <paramref name="unsignedValue"/>.
    /// </summary>
    public static bool TryDecodeInteger(ReadOnlySpan<byte> bytes, SafetensorsDType dtype, int i, out long value, out ulong unsignedValue)
    {
        unsignedValue = 0;
        value = dtype switch
        {
            SafetensorsDType.Bool => bytes[i] != 0 ? 1 : 0,
            SafetensorsDType.U8 => bytes[i],
            SafetensorsDType.I8 => (sbyte)bytes[i],
            SafetensorsDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(bytes[(2 * i)..]),
            SafetensorsDType.U16 => BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]),
            SafetensorsDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(bytes[(4 * i)..]),
            SafetensorsDType.U32 => BinaryPrimitives.ReadUInt32LittleEndian(bytes[(4 * i)..]),
            SafetensorsDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(bytes[(8 * i)..]),
            SafetensorsDType.U64 => 0,
            _ => throw new ArgumentException($"Expected an integer dtype, got {dtype.ToHeaderName()}.", nameof(dtype)),
        };
        if (dtype != SafetensorsDType.U64) return true;
        unsignedValue = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(8 * i)..]);
        value = (long)unsignedValue;
        return unsignedValue <= long.MaxValue;
    }

    /// <summary>
    /// Writes <paramref name="value"/> as integer element <paramref name="i"/>; returns false when it does not fit
    /// the type (BOOL takes only 0 and 1).
    /// </summary>
    public static bool TryEncodeInteger(long value, SafetensorsDType dtype, Span<byte> bytes, int i)
    {
        switch (dtype)
        {
            case SafetensorsDType.Bool when value is 0 or 1: bytes[i] = (byte)value; return true;
            case SafetensorsDType.U8 when value is >= byte.MinValue and <= byte.MaxValue: bytes[i] = (byte)value; return true;
            case SafetensorsDType.I8 when value is >= sbyte.MinValue and <= sbyte.MaxValue: bytes[i] = (byte)(sbyte)value; return true;
            case SafetensorsDType.I16 when value is >= short.MinValue and <= short.MaxValue:
                BinaryPrimitives.WriteInt16LittleEndian(bytes[(2 * i)..], (short)value); return true;
            case SafetensorsDType.U16 when value is >= ushort.MinValue and <= ushort.MaxValue:
                BinaryPrimitives.WriteUInt16LittleEndian(bytes[(2 * i)..], (ushort)value); return true;
            case SafetensorsDType.I32 when value is >= int.MinValue and <= int.MaxValue:
                BinaryPrimitives.WriteInt32LittleEndian(bytes[(4 * i)..], (int)value); return true;
            case SafetensorsDType.U32 when value is >= uint.MinValue and <= uint.MaxValue:
                BinaryPrimitives.WriteUInt32LittleEndian(bytes[(4 * i)..], (uint)value); return true;
            case SafetensorsDType.I64:
                BinaryPrimitives.WriteInt64LittleEndian(bytes[(8 * i)..], value); return true;
            case SafetensorsDType.U64 when value >= 0:
                BinaryPrimitives.WriteUInt64LittleEndian(bytes[(8 * i)..], (ulong)value); return true;
            default:
                return false;
        }
    }
}
