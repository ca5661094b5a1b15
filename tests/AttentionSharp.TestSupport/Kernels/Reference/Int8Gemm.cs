// Reference twin of Kernels.Int8Gemm.
namespace AttentionSharp.Kernels.Reference;

/// <summary>
/// Plain int8 quantization and product: one element at a time, in the order the definitions are written. The fast
/// kernels must match it bit for bit.
/// </summary>
public static class Int8Gemm
{
    public static int PaddedLength(int k) => Kernels.Int8Gemm.PaddedLength(k);

    public static void QuantizeWeights(ReadOnlySpan<float> w, int n, int k, Span<sbyte> q, Span<float> scales)
    {
        int kp = Kernels.Int8Gemm.ValidateQuantize(w.Length, n, k, q.Length, scales.Length, nameof(w), nameof(q), nameof(n));
        for (int r = 0; r < n; r++)
        {
            var row = w.Slice(r * k, k);
            for (int c = 0; c < k; c++)
            {
                if (!float.IsFinite(row[c]))
                    throw new ArgumentException(
                        $"w row {r} holds {row[c]} at column {c}; weights must be finite to be quantized.", nameof(w));
            }
            scales[r] = Scale(row);
            var qr = q.Slice(r * kp, kp);
            for (int c = 0; c < kp; c++) qr[c] = (sbyte)Quantize(c < k ? row[c] : 0f, scales[r]);
        }
    }

    public static void QuantizeRows(ReadOnlySpan<float> x, int m, int k, Span<short> xq, Span<float> scales)
    {
        int kp = Kernels.Int8Gemm.ValidateQuantize(x.Length, m, k, xq.Length, scales.Length, nameof(x), nameof(xq), nameof(m));
        for (int r = 0; r < m; r++)
        {
            var row = x.Slice(r * k, k);
            bool finite = true;
            for (int c = 0; c < k; c++) finite &= float.IsFinite(row[c]);
            // A row with NaN or ±∞ gets scale NaN, so every output it feeds is NaN; its q row is zero.
            scales[r] = finite ? Scale(row) : float.NaN;
            var qr = xq.Slice(r * kp, kp);
            for (int c = 0; c < kp; c++) qr[c] = (short)(finite && c < k ? Quantize(row[c], scales[r]) : 0);
        }
    }

    /// <summary>y(i, j) = acc(i, j) · (s_x(i) · s_w(j)) + bias(j) + residual(i, j), acc(i, j) = Σ_k xq(i, k) · w(j, k).</summary>
    public static void Multiply(ReadOnlySpan<short> xq, ReadOnlySpan<float> xScales, int m, int kPadded,
        ReadOnlySpan<sbyte> w, ReadOnlySpan<float> wScales, int n,
        ReadOnlySpan<float> bias, ReadOnlySpan<float> residual, Span<float> y)
    {
        Kernels.Int8Gemm.ValidateMultiply(xq.Length, xScales.Length, m, kPadded, w.Length, packed: false, wScales.Length, n,
            bias.Length, residual.Length, y.Length);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                int acc = 0;
                for (int p = 0; p < kPadded; p++) acc += xq[i * kPadded + p] * w[j * kPadded + p];
                // The epilogue, one rounding per operation in this order: no fused multiply-add.
                float s = xScales[i] * wScales[j];
                float v = (float)acc * s;
                if (!bias.IsEmpty) v += bias[j];
                if (!residual.IsEmpty) v += residual[i * n + j];
                y[i * n + j] = v;
            }
    }

    /// <summary>
    /// The panel layout, one value at a time: packed[(q·kPadded + s)·4 + 32·r + t] = w[(4q + r)·kPadded + s + t] for
    /// s a multiple of 32 and t &lt; 32; rows past n are zero.
    /// </summary>
    public static void PackWeights(ReadOnlySpan<sbyte> w, int n, int kPadded, Span<sbyte> packed)
    {
        Kernels.Int8Gemm.ValidatePack(w.Length, n, kPadded, packed.Length);
        int panels = (n + 3) / 4;
        for (int q = 0; q < panels; q++)
            for (int s = 0; s < kPadded; s += 32)
                for (int r = 0; r < 4; r++)
                    for (int t = 0; t < 32; t++)
                    {
                        int j = 4 * q + r;
                        packed[(q * kPadded + s) * 4 + 32 * r + t] = j < n ? w[j * kPadded + s + t] : (sbyte)0;
                    }
    }

    public static void DequantizeRow(ReadOnlySpan<sbyte> q, float scale, Span<float> @out)
    {
        Kernels.Int8Gemm.ValidateDequantize(q.Length, @out.Length);
        // out[k] = q[k] · scale
        for (int k = 0; k < @out.Length; k++) @out[k] = q[k] * scale;
    }

    /// <summary>s = max_k |x_k| / 127; 0 for an all-zero row.</summary>
    static float Scale(ReadOnlySpan<float> row)
    {
        float max = 0f;
        foreach (float v in row) max = Math.Max(max, Math.Abs(v));
        return max / 127f;
    }

    /// <summary>
    /// q = clamp(round-half-to-even(x / s), −127, 127); 0 when s is 0 (an all-zero row, or one that underflows).
    /// </summary>
    static int Quantize(float x, float s) =>
        s > 0 ? (int)Math.Clamp(MathF.Round(x / s, MidpointRounding.ToEven), -127f, 127f) : 0;
}
