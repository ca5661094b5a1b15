// Sources: Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting" (2014), inverted
// scaling as PyTorch torch.nn.functional.dropout; Steele, Lea & Flood, "Fast Splittable Pseudorandom Number Generators"
// (2014) for SplitMix64.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// Inverted dropout, element-wise over whole spans. Element i is kept when u ≥ p, where u is a uniform number on a
/// 2⁻²⁴ grid taken from output number (offset + i) of a SplitMix64 generator seeded with <c>seed</c>: the stream is
/// counter-based, so a mask is reproducible from (seed, offset) alone and independent of how work is split; a caller
/// advances <c>offset</c> by the element count after each use. The mask holds 1 (kept) or 0 (dropped).
/// </summary>
public static unsafe class Dropout
{
    /// <summary>y = x·mask/(1 − p) with mask_i ~ Bernoulli(1 − p); p = 0 copies x and sets every mask byte to 1.</summary>
    public static void Forward(Span<float> y, Span<byte> mask, ReadOnlySpan<float> x, float p, ulong seed, ulong offset)
    {
        Guard.SameLength(nameof(y), y.Length, x.Length, nameof(x));
        Guard.SameLength(nameof(mask), mask.Length, x.Length, nameof(x));
        CheckProbability(p);
        if (p == 0f)
        {
            x.CopyTo(y);
            mask.Fill(1);
            return;
        }
        fixed (float* py = y)
        fixed (byte* pm = mask)
        fixed (float* px = x)
            Work.Elements(x.Length, new ForwardKernel(py, pm, px, p, seed, offset));
    }

    /// <summary>dx += dy·mask/(1 − p).</summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<byte> mask, float p)
    {
        Guard.SameLength(nameof(dx), dx.Length, dy.Length, nameof(dy));
        Guard.SameLength(nameof(mask), mask.Length, dy.Length, nameof(dy));
        CheckProbability(p);
        fixed (float* pdx = dx)
        fixed (float* pdy = dy)
        fixed (byte* pm = mask)
            Work.Elements(dy.Length, new BackwardKernel(pdx, pdy, pm, 1f / (1f - p)));
    }

    /// <summary>Output number <paramref name="index"/> of SplitMix64 seeded with <paramref name="seed"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong SplitMix64(ulong seed, ulong index)
    {
        ulong z = seed + (index + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Whether element (offset + i) is kept: u = top 24 bits · 2⁻²⁴, kept when u ≥ p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool Keep(ulong seed, ulong index, float p) => (SplitMix64(seed, index) >> 40) * (1f / (1 << 24)) >= p;

    internal static void CheckProbability(float p)
    {
        if (!(p >= 0f && p < 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, $"Dropout probability p must be in [0, 1); got {p}.");
    }

    readonly struct ForwardKernel(float* y, byte* mask, float* x, float p, ulong seed, ulong offset) : IRangeKernel
    {
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int i = start; i < end; i++) mask[i] = Keep(seed, offset + (ulong)i, p) ? (byte)1 : (byte)0;
            // y = x·mask·(1/(1 − p))
            float scale = 1f / (1f - p);
            T vscale = T.Create(scale);
            int j = start;
            for (; j <= end - T.Count; j += T.Count) T.Store(T.Load(in x[j]) * (T.LoadBytes(in mask[j]) * vscale), ref y[j]);
            for (; j < end; j++) y[j] = x[j] * (mask[j] * scale);
        }
    }

    readonly struct BackwardKernel(float* dx, float* dy, byte* mask, float scale) : IRangeKernel
    {
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            // dx += dy·mask·(1/(1 − p))
            T vscale = T.Create(scale);
            int j = start;
            for (; j <= end - T.Count; j += T.Count)
                T.Store(T.MultiplyAdd(T.Load(in dy[j]), T.LoadBytes(in mask[j]) * vscale, T.Load(in dx[j])), ref dx[j]);
            for (; j < end; j++) dx[j] += dy[j] * (mask[j] * scale);
        }
    }
}
