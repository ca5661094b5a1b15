// Reference twin of Kernels.Dropout: one element at a time, the same counter-based stream.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain inverted dropout; the mask of element i depends only on (seed, offset + i).</summary>
public static class Dropout
{
    public static void Forward(Span<float> y, Span<byte> mask, ReadOnlySpan<float> x, float p, ulong seed, ulong offset)
    {
        Guard.SameLength(nameof(y), y.Length, x.Length, nameof(x));
        Guard.SameLength(nameof(mask), mask.Length, x.Length, nameof(x));
        Kernels.Dropout.CheckProbability(p);
        float scale = 1f / (1f - p);
        for (int i = 0; i < x.Length; i++)
        {
            bool keep = p == 0f || Kernels.Dropout.Keep(seed, offset + (ulong)i, p);
            mask[i] = keep ? (byte)1 : (byte)0;
            // y = x·mask/(1 − p)
            y[i] = x[i] * (mask[i] * scale);
        }
    }

    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<byte> mask, float p)
    {
        Guard.SameLength(nameof(dx), dx.Length, dy.Length, nameof(dy));
        Guard.SameLength(nameof(mask), mask.Length, dy.Length, nameof(dy));
        Kernels.Dropout.CheckProbability(p);
        float scale = 1f / (1f - p);
        // dx += dy·mask/(1 − p)
        for (int i = 0; i < dy.Length; i++) dx[i] += dy[i] * (mask[i] * scale);
    }
}
