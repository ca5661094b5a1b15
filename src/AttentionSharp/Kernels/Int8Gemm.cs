// Int8 products, plain loops (the SIMD paths replace this).
namespace AttentionSharp.Kernels;

public static class Int8Gemm
{
    public static int PaddedLength(int k) => (k + 63) / 64 * 64;
    public static void QuantizeWeights(ReadOnlySpan<float> w, int n, int k, Span<sbyte> q, Span<float> scales)
    {
        int kp = PaddedLength(k);
        for (int r = 0; r < n; r++)
        {
            float max = 0; for (int c = 0; c < k; c++) max = MathF.Max(max, MathF.Abs(w[r * k + c]));
            float s = max / 127f; scales[r] = s;
            for (int c = 0; c < kp; c++) q[r * kp + c] = c < k && s > 0 ? (sbyte)Math.Clamp(MathF.Round(w[r * k + c] / s), -127, 127) : (sbyte)0;
        }
    }
    public static void QuantizeRows(ReadOnlySpan<float> x, int m, int k, Span<short> xq, Span<float> scales)
    {
        int kp = PaddedLength(k);
        for (int r = 0; r < m; r++)
        {
            float max = 0; for (int c = 0; c < k; c++) max = MathF.Max(max, MathF.Abs(x[r * k + c]));
            float s = max / 127f; scales[r] = s;
            for (int c = 0; c < kp; c++) xq[r * kp + c] = c < k && s > 0 ? (short)Math.Clamp(MathF.Round(x[r * k + c] / s), -127, 127) : (short)0;
        }
    }
    public static void Multiply(ReadOnlySpan<short> xq, ReadOnlySpan<float> xScales, int m, int kPadded,
                                ReadOnlySpan<sbyte> w, ReadOnlySpan<float> wScales, int n,
                                ReadOnlySpan<float> bias, ReadOnlySpan<float> residual, Span<float> y)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                int acc = 0;
                for (int c = 0; c < kPadded; c++) acc += xq[i * kPadded + c] * w[j * kPadded + c];
                float s = xScales[i] * wScales[j]; float v = acc * s;
                if (!bias.IsEmpty) v += bias[j];
                if (!residual.IsEmpty) v += residual[i * n + j];
                y[i * n + j] = v;
            }
    }
    public static void DequantizeRow(ReadOnlySpan<sbyte> q, float scale, Span<float> output)
    {
        for (int i = 0; i < output.Length; i++) output[i] = q[i] * scale;
    }
}
