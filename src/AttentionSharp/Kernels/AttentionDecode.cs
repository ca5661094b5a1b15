using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// Attention for one query row per head (decoding through a K/V cache): the row's scores against every key, one softmax,
/// and the weighted sum of the values, with no tiles. The tiled kernel would transpose every cached key into tiles and
/// run (1 × HS)·(HS × 64) tile products for a single row; at GPT-2's size that made attention about a sixth of an int8
/// decoding step on 2 threads. Same masks and conventions as <see cref="AttentionFlash"/> (a fully masked row gives
/// O = 0 and L = +∞), so its backward pass applies unchanged.
/// </summary>
internal static unsafe class AttentionDecode
{
    /// <summary>
    /// Whether <see cref="Forward{T}"/> serves the problem: one query row, no dropout, no sliding window (whose tiled
    /// kernel skips the keys outside the band, which a long cache needs).
    /// </summary>
    public static bool Applies(in AttentionProblem p) => p.QueryLength == 1 && p.Dropout == 0 && p.Window == 0;

    /// <summary>
    /// o = softmax(q·kᵀ·scale + mask)·v for the single query row of each (b, h); <paramref name="lse"/> receives the
    /// row's logsumexp L = m + log l.
    /// </summary>
    public static void Forward<T>(in AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* lse)
        where T : unmanaged, ISimd<T>
    {
        var problem = p;
        int hs = p.HeadSize, tk = p.KeyLength;
        AttentionWork.Run(p.Batch * p.Heads, tk + hs, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (item, mem) =>
        {
            int b = item / problem.Heads, h = item % problem.Heads, g = h / problem.Group;
            float* s = (float*)mem, acc = s + tk, qh = q.Head(b, h), kh = k.Head(b, g), vh = v.Head(b, g);
            // s_j = q·k_j, then scaled and masked (the causal mask lets the last query see every key)
            var query = new ReadOnlySpan<float>(qh, hs);
            for (int j = 0; j < tk; j++) s[j] = TensorPrimitives.Dot(query, new ReadOnlySpan<float>(kh + j * k.RowStride, hs));
            AttentionMasks.Apply<T>(in problem, s, tk, b, h, 0, 0, problem.Scale);
            float m = tk == 0 ? float.NegativeInfinity : TensorPrimitives.Max(new ReadOnlySpan<float>(s, tk));
            var row = new Span<float>(o.Head(b, h), hs);
            float* l = lse + (long)b * problem.Heads + h;
            if (float.IsNegativeInfinity(m))
            {
                row.Clear();
                *l = float.PositiveInfinity;
                return;
            }
            // P = e^(S − m), l = Σ P, O = (Σ_j P_j·v_j) / l
            float sum = RowMath.ExpShiftSum<T>(s, s, tk, m);
            var weighted = new Span<float>(acc, hs);
            weighted.Clear();
            for (int j = 0; j < tk; j++)
            {
                var value = new ReadOnlySpan<float>(vh + j * v.RowStride, hs);
                if (s[j] != 0f) TensorPrimitives.MultiplyAdd(value, s[j], weighted, weighted);
            }
            TensorPrimitives.Multiply(weighted, 1f / sum, row);
            *l = m + MathF.Log(sum);
        }, 2L * p.Batch * p.KvHeads * tk * hs >= ParallelFloats ? long.MaxValue : 0);
    }

    /// <summary>
    /// Keys and values read (floats) from which the heads are spread over the threads. A decoding step's cache is read
    /// from memory, its lines evicted by the weights that stream through between two layers, so the heads wait on memory
    /// rather than on arithmetic, and a second thread's loads in flight pay off well below the tiled kernels' threshold:
    /// GPT-2 with 64 cached positions reads 98,304.
    /// </summary>
    const long ParallelFloats = 16 * 1024;
}
