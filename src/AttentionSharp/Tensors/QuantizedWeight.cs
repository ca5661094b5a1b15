using AttentionSharp.Kernels;

namespace AttentionSharp;

/// <summary>
/// The int8 form of a weight matrix (out, in) for inference: symmetric, one scale per output channel (row),
/// w ≈ q·scale with q in [−127, 127] and scale = max|w_row| / 127. A weight tensor carries it as
/// <see cref="Tensor.Quantized"/>; every product that reads the weight (<see cref="Tensor.Linear"/>, its LayerNorm and
/// GELU forms, a tied language-model head) then multiplies int8 weights with its input quantized per row to int8
/// (scale max|x_row| / 127, formed anew on each call), accumulating in exact int32, whenever no gradient is recorded.
/// The tensor's own fp32 elements hold q·scale, so what reads them directly (an embedding lookup) sees the same model.
/// </summary>
public sealed class QuantizedWeight
{
    readonly sbyte[] _packed;   // (Rows, Stride) in the kernels' panels (Int8Gemm.PackWeights), zero after Columns
    readonly float[] _scales;   // (Rows)

    /// <summary>Takes row-major values (rows, Stride), zero-padded, and lays them out in the kernels' panels.</summary>
    QuantizedWeight(int rows, int columns, ReadOnlySpan<sbyte> values, float[] scales)
    {
        Rows = rows; Columns = columns; Stride = Int8Gemm.PaddedLength(columns);
        _packed = new sbyte[Int8Gemm.PackedLength(rows, Stride)];
        Int8Gemm.PackWeights(values, rows, Stride, _packed);
        _scales = scales;
    }

    /// <summary>Output channels (the weight's first dimension).</summary>
    public int Rows { get; }

    /// <summary>Input features (the weight's second dimension).</summary>
    public int Columns { get; }

    /// <summary>The row length in <see cref="Packed"/>: <see cref="Columns"/> rounded up for the kernels, zero-padded.</summary>
    public int Stride { get; }

    /// <summary>
    /// The int8 values, (Rows, Stride), in the panel layout <see cref="Int8Gemm.Multiply"/> reads
    /// (<see cref="Int8Gemm.PackWeights"/>); <see cref="ToStored"/> gives them row by row.
    /// </summary>
    public ReadOnlySpan<sbyte> Packed => _packed;

    /// <summary>One scale per row.</summary>
    public ReadOnlySpan<float> Scales => _scales;

    /// <summary>Bytes the kernels read per use: the int8 values and the scales.</summary>
    public long Bytes => (long)Rows * Columns + Rows * sizeof(float);

    /// <summary>Quantizes an fp32 weight (out, in).</summary>
    public static QuantizedWeight Quantize(Tensor weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Rank != 2)
            throw new ArgumentException($"Only a matrix (out, in) can be quantized; got {ShapeMath.Format(weight.Shape)}.",
                                        nameof(weight));
        int rows = weight.Size(0), columns = weight.Size(1);
        var values = new sbyte[(long)rows * Int8Gemm.PaddedLength(columns)];
        var scales = new float[rows];
        var w = weight.Contiguous();
        Int8Gemm.QuantizeWeights(w.Data, rows, columns, values, scales);
        if (!ReferenceEquals(w, weight)) w.Dispose();
        return new QuantizedWeight(rows, columns, values, scales);
    }

    /// <summary>
    /// From stored values (rows × columns, unpadded, as a checkpoint holds them) and scales; values of −128 or scales
    /// that are negative or not finite are refused, naming <paramref name="name"/>.
    /// </summary>
    public static QuantizedWeight FromStored(ReadOnlySpan<sbyte> values, ReadOnlySpan<float> scales, int rows, int columns,
                                             string name)
    {
        if (rows <= 0 || columns <= 0 || values.Length != (long)rows * columns || scales.Length != rows)
            throw new ArgumentException($"{name}: expected {rows}×{columns} int8 values and {rows} scales; " +
                                        $"got {values.Length} values and {scales.Length} scales.");
        int stride = Int8Gemm.PaddedLength(columns);
        var padded = new sbyte[(long)rows * stride];
        for (int r = 0; r < rows; r++)
        {
            var row = values.Slice(r * columns, columns);
            if (row.Contains(sbyte.MinValue))
                throw new ArgumentException($"{name}: row {r} holds −128; symmetric int8 weights lie in [−127, 127].");
            if (!(scales[r] >= 0) || float.IsInfinity(scales[r]))
                throw new ArgumentException($"{name}: the scale of row {r} is {scales[r]}; scales must be finite and ≥ 0.");
            row.CopyTo(padded.AsSpan(r * stride, columns));
        }
        return new QuantizedWeight(rows, columns, padded, scales.ToArray());
    }

    /// <summary>The values without padding, rows × columns, as a checkpoint stores them.</summary>
    public sbyte[] ToStored()
    {
        var stored = new sbyte[(long)Rows * Columns];
        for (int r = 0; r < Rows; r++) Int8Gemm.UnpackRow(_packed, Stride, r, stored.AsSpan(r * Columns, Columns));
        return stored;
    }

    /// <summary>
    /// Writes row <paramref name="row"/>'s q·scale into <paramref name="destination"/> (Columns floats), as <see
    /// cref="Dequantize"/> does.
    /// </summary>
    public void DequantizeRow(int row, Span<float> destination)
    {
        if ((uint)row >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(row), row, $"Row must be in [0, {Rows}).");
        DequantizeRowInto(row, destination[..Columns]);
    }

    /// <summary>q·scale of one row, a panel piece at a time; the same values as dequantizing the whole row at once.</summary>
    void DequantizeRowInto(int row, Span<float> destination)
    {
        Span<sbyte> piece = stackalloc sbyte[Int8Gemm.PanelPiece];
        for (int s = 0; s < Columns; s += Int8Gemm.PanelPiece)
        {
            var values = piece[..Math.Min(Int8Gemm.PanelPiece, Columns - s)];
            Int8Gemm.UnpackRow(_packed, Stride, row, values, s);
            Int8Gemm.DequantizeRow(values, _scales[row], destination.Slice(s, values.Length));
        }
    }

    /// <summary>Writes q·scale into <paramref name="weight"/> (out, in), the fp32 model this int8 one stands for.</summary>
    public void Dequantize(Span<float> weight)
    {
        if (weight.Length != (long)Rows * Columns)
            throw new ArgumentException($"Expected {Rows}×{Columns} elements; got {weight.Length}.", nameof(weight));
        for (int r = 0; r < Rows; r++) DequantizeRowInto(r, weight.Slice(r * Columns, Columns));
    }
}
