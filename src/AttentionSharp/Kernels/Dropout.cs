// Sources: Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting" (2014), inverted
// scaling as PyTorch torch.nn.functional.dropout; Steele, Lea & Flood, "Fast Splittable Pseudorandom Number Generators"
// (2014) for SplitMix64.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
        ulong z = seed + (index + 1) * Gamma;
        z = (z ^ (z >> 30)) * Mix1;
        z = (z ^ (z >> 27)) * Mix2;
        return z ^ (z >> 31);
    }

    /// <summary>Whether element (offset + i) is kept: u = top 24 bits · 2⁻²⁴, kept when u ≥ p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool Keep(ulong seed, ulong index, float p) => (SplitMix64(seed, index) >> 40) * (1f / (1 << 24)) >= p;

    /// <summary>
    /// flags[i] = 1 where element (first + i) is kept (<see cref="Keep"/>), else 0, for i in [0, count). AVX2 forms
    /// four SplitMix64 outputs at a time (the 64-bit products from 32-bit ones, vpmuludq); the flags are the same bytes
    /// <see cref="Keep"/> gives one at a time, which stays the reference twin and takes what is left.
    /// </summary>
    internal static void KeepFlags(ulong seed, ulong first, int count, float p, byte* flags)
    {
        int i = 0;
        if (Avx2.IsSupported && count >= 4)
        {
            // Keep compares u = n·2⁻²⁴ ≥ p for the integer n = top 24 bits; both sides are exact, so it is
            // n ≥ ⌈p·2²⁴⌉.
            var threshold = Vector256.Create((long)Math.Ceiling(p * 16777216.0));
            // z = seed + (index + 1)·γ for four consecutive indices, then γ·4 further each round (mod 2⁶⁴).
            var z = Vector256.Create(seed + (first + 1) * Gamma, seed + (first + 2) * Gamma, seed + (first + 3) * Gamma,
                seed + (first + 4) * Gamma);
            var step = Vector256.Create(unchecked(4 * Gamma));
            for (; i + 4 <= count; i += 4, z += step)
            {
                var x = MultiplyLow(z ^ (z >>> 30), Mix1);
                x = MultiplyLow(x ^ (x >>> 27), Mix2);
                x ^= x >>> 31;
                // n < threshold marks a dropped element; n fits 24 bits, so the signed comparison is exact.
                var dropped = Avx2.CompareGreaterThan(threshold, (x >>> 40).AsInt64());
                int bits = ~Avx.MoveMask(dropped.AsDouble());
                flags[i] = (byte)(bits & 1);
                flags[i + 1] = (byte)((bits >> 1) & 1);
                flags[i + 2] = (byte)((bits >> 2) & 1);
                flags[i + 3] = (byte)((bits >> 3) & 1);
            }
        }
        for (; i < count; i++) flags[i] = Keep(seed, first + (ulong)i, p) ? (byte)1 : (byte)0;
    }

    const ulong Gamma = 0x9E3779B97F4A7C15UL, Mix1 = 0xBF58476D1CE4E5B9UL, Mix2 = 0x94D049BB133111EBUL;

    /// <summary>a·c mod 2⁶⁴ per lane from three 32×32→64 products: lo·lo + ((hi·lo + lo·hi) ≪ 32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<ulong> MultiplyLow(Vector256<ulong> a, ulong c)
    {
        var cLow = Vector256.Create(c & 0xFFFFFFFFUL).AsUInt32();
        var cHigh = Vector256.Create(c >> 32).AsUInt32();
        var low = Avx2.Multiply(a.AsUInt32(), cLow);
        var cross = Avx2.Multiply((a >>> 32).AsUInt32(), cLow) + Avx2.Multiply(a.AsUInt32(), cHigh);
        return low + (cross << 32);
    }

    internal static void CheckProbability(float p)
    {
        if (!(p >= 0f && p < 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, $"Dropout probability p must be in [0, 1); got {p}.");
    }

    readonly struct ForwardKernel(float* y, byte* mask, float* x, float p, ulong seed, ulong offset) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            KeepFlags(seed, offset + (ulong)start, end - start, p, mask + start);
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
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
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
