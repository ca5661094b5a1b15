using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionSharp.Kernels;

public static unsafe partial class Int8Gemm
{
    /// <summary>The largest quantized magnitude: the grid is symmetric, so −128 is never used.</summary>
    const float QMax = 127f;

    /// <summary>
    /// Symmetric per-row quantization of weights w (n × k, row-major floats) to q (n × <see cref="PaddedLength"/>(k)
    /// sbytes, zero padding) with scales[r] = max|w_r| / 127 (0 for an all-zero row, whose q row is all zero);
    /// q = round-half-to-even(w / scale), clamped to [−127, 127] (never −128). Non-finite weights throw
    /// <see cref="ArgumentException"/> naming the row.
    /// </summary>
    /// <remarks>
    /// A row so small that max|w_r| / 127 underflows to 0 (below about 1.8e−43) quantizes to zeros, as an all-zero row.
    /// </remarks>
    public static void QuantizeWeights(ReadOnlySpan<float> w, int n, int k, Span<sbyte> q, Span<float> scales)
    {
        int kp = ValidateQuantize(w.Length, n, k, q.Length, scales.Length, nameof(w), nameof(q), nameof(n));
        fixed (float* pw = w, ps = scales)
        fixed (sbyte* pq = q)
        {
            for (int r = 0; r < n; r++)
            {
                float* row = pw + (long)r * k;
                float scale = RowScale(row, k);
                if (float.IsNaN(scale)) throw NonFiniteWeight(row, r, k);
                ps[r] = scale;
                QuantizeRow(row, k, scale, pq + (long)r * kp, kp);
            }
        }
    }

    /// <summary>
    /// Symmetric per-row quantization of activations x (m × k floats) into xq (m × <see cref="PaddedLength"/>(k) shorts
    /// holding values in [−127, 127], zero padding) and scales[m], by the rule of <see cref="QuantizeWeights"/>. Shorts,
    /// because the AVX2 and AVX-512BW kernels multiply 16-bit lanes (vpmaddwd). A row holding NaN or ±∞ gets scale NaN
    /// and a zero q row, so its outputs from <see cref="Multiply"/> are NaN, as a float product would give.
    /// </summary>
    public static void QuantizeRows(ReadOnlySpan<float> x, int m, int k, Span<short> xq, Span<float> scales)
    {
        int kp = ValidateQuantize(x.Length, m, k, xq.Length, scales.Length, nameof(x), nameof(xq), nameof(m));
        fixed (float* px = x, ps = scales)
        fixed (short* pq = xq)
        {
            for (int r = 0; r < m; r++)
            {
                float* row = px + (long)r * k;
                float scale = RowScale(row, k);
                ps[r] = scale;
                QuantizeRow(row, k, scale, pq + (long)r * kp, kp);
            }
        }
    }

    /// <summary>
    /// Dequantizes one row: out[k] = q[k] · scale for k &lt; out.Length (an embedding lookup from an int8 table).
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<sbyte> q, float scale, Span<float> @out)
    {
        ValidateDequantize(q.Length, @out.Length);
        fixed (sbyte* pq = q)
        fixed (float* po = @out)
        {
            int k = @out.Length, j = 0;
            if (Avx512F.IsSupported && Vector512.IsHardwareAccelerated)
            {
                var s = Vector512.Create(scale);
                for (; j <= k - 16; j += 16)
                    (Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(Vector128.Load(pq + j))) * s).Store(po + j);
            }
            if (Avx2.IsSupported)
            {
                var s = Vector256.Create(scale);
                for (; j <= k - 8; j += 8)
                    (Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(pq + j)) * s).Store(po + j);
            }
            for (; j < k; j++) po[j] = pq[j] * scale;
        }
    }

    /// <summary>Checks of <see cref="DequantizeRow"/>, shared with the reference twin: q must reach as far as out.</summary>
    internal static void ValidateDequantize(int q, int @out)
    {
        if (q < @out)
            throw new ArgumentException($"q has length {q}; expected at least {@out} (out.Length).", nameof(q));
    }

    /// <summary>Shape checks of the quantizers, shared with the reference twin; returns PaddedLength(k).</summary>
    internal static int ValidateQuantize(int source, int rows, int k, int q, int scales, string sourceName, string qName,
        string rowsName)
    {
        Guard.Shape(rows, k, rowsName, nameof(k));
        int kp = PaddedLength(k);
        Guard.Matrix(sourceName, source, rows, k, rowsName, nameof(k));
        Guard.Matrix(qName, q, rows, kp, rowsName, "PaddedLength(k)");
        Guard.Vector(nameof(scales), scales, rows, rowsName);
        return kp;
    }

    /// <summary>
    /// max_k |x_k| / 127, 0 for an empty or all-zero row, or NaN if the row holds NaN or ±∞. A maximum is exact, so
    /// every register width finds the same one.
    /// </summary>
    static float RowScale(float* x, int k)
    {
        if (k == 0) return 0f;
        float max = MathF.Abs(TensorPrimitives.MaxMagnitude(new ReadOnlySpan<float>(x, k)));
        return float.IsFinite(max) ? max / QMax : float.NaN;
    }

    static ArgumentException NonFiniteWeight(float* row, int r, int k)
    {
        int c = 0;
        while (c < k && float.IsFinite(row[c])) c++;
        return new ArgumentException($"w row {r} holds {row[c]} at column {c}; weights must be finite to be quantized.", "w");
    }

    /// <summary>
    /// q_k = clamp(round(x_k / scale), −127, 127) for k &lt; <paramref name="k"/>, zeros up to <paramref name="kp"/>;
    /// all zeros when the scale is 0 or NaN. Division and round-half-to-even are exact IEEE operations lane by lane,
    /// so the vector loops and the scalar tail agree bit for bit.
    /// </summary>
    static void QuantizeRow(float* x, int k, float scale, short* q, int kp)
    {
        int j = 0;
        if (scale > 0)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                var s = Vector512.Create(scale);
                for (; j <= k - 32; j += 32)
                    Vector512.Narrow(Quantize(Vector512.Load(x + j), s), Quantize(Vector512.Load(x + j + 16), s)).Store(q + j);
            }
            if (Vector256.IsHardwareAccelerated)
            {
                var s = Vector256.Create(scale);
                for (; j <= k - 16; j += 16)
                    Vector256.Narrow(Quantize(Vector256.Load(x + j), s), Quantize(Vector256.Load(x + j + 8), s)).Store(q + j);
            }
            for (; j < k; j++) q[j] = (short)Quantize(x[j], scale);
        }
        new Span<short>(q + j, kp - j).Clear();
    }

    /// <inheritdoc cref="QuantizeRow(float*, int, float, short*, int)"/>
    static void QuantizeRow(float* x, int k, float scale, sbyte* q, int kp)
    {
        int j = 0;
        if (scale > 0)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                var s = Vector512.Create(scale);
                for (; j <= k - 64; j += 64)
                {
                    var lo = Vector512.Narrow(Quantize(Vector512.Load(x + j), s), Quantize(Vector512.Load(x + j + 16), s));
                    var hi = Vector512.Narrow(Quantize(Vector512.Load(x + j + 32), s), Quantize(Vector512.Load(x + j + 48), s));
                    Vector512.Narrow(lo, hi).Store(q + j);
                }
            }
            if (Vector256.IsHardwareAccelerated)
            {
                var s = Vector256.Create(scale);
                for (; j <= k - 32; j += 32)
                {
                    var lo = Vector256.Narrow(Quantize(Vector256.Load(x + j), s), Quantize(Vector256.Load(x + j + 8), s));
                    var hi = Vector256.Narrow(Quantize(Vector256.Load(x + j + 16), s), Quantize(Vector256.Load(x + j + 24), s));
                    Vector256.Narrow(lo, hi).Store(q + j);
                }
            }
            for (; j < k; j++) q[j] = (sbyte)Quantize(x[j], scale);
        }
        new Span<sbyte>(q + j, kp - j).Clear();
    }

    /// <summary>q = clamp(round(x / scale), −127, 127), rounding half to even; x finite, scale &gt; 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Quantize(float x, float scale) => (int)Math.Clamp(MathF.Round(x / scale), -QMax, QMax);

    /// <inheritdoc cref="Quantize(float, float)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<int> Quantize(Vector512<float> x, Vector512<float> scale) =>
        Vector512.ConvertToInt32(Vector512.Clamp(Vector512.Round(x / scale), Vector512.Create(-QMax), Vector512.Create(QMax)));

    /// <inheritdoc cref="Quantize(float, float)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Quantize(Vector256<float> x, Vector256<float> scale) =>
        Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(x / scale), Vector256.Create(-QMax), Vector256.Create(QMax)));
}
