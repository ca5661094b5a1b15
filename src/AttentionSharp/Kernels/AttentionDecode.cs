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
        AttentionWork.Run(p.Batch * p.Heads, tk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (item, mem) =>
        {
            int b = item / problem.Heads, h = item % problem.Heads, g = h / problem.Group;
            float* s = (float*)mem, qh = q.Head(b, h), kh = k.Head(b, g), vh = v.Head(b, g);
            Scores<T>(qh, kh, k.RowStride, hs, tk, s);                       // s_j = q·k_j, then scaled and masked
            AttentionMasks.Apply<T>(in problem, s, tk, b, h, 0, 0, problem.Scale);
            float m = tk == 0 ? float.NegativeInfinity : TensorPrimitives.Max(new ReadOnlySpan<float>(s, tk));
            float* l = lse + (long)b * problem.Heads + h;
            if (float.IsNegativeInfinity(m))
            {
                new Span<float>(o.Head(b, h), hs).Clear();
                *l = float.PositiveInfinity;
                return;
            }
            // P = e^(S − m), l = Σ P, O = (Σ_j P_j·v_j) / l
            float sum = RowMath.ExpShiftSum<T>(s, s, tk, m);
            WeightedSum<T>(s, vh, v.RowStride, hs, tk, 1f / sum, o.Head(b, h));
            *l = m + MathF.Log(sum);
        }, 2L * p.Batch * p.KvHeads * tk * hs >= ParallelFloats ? long.MaxValue : 0);
    }

    /// <summary>
    /// s_j = q·k_j for the <paramref name="tk"/> keys (rows <paramref name="stride"/> floats apart), four keys at a time
    /// so four independent sums share each load of q. A library dot product per key cost more in its call than in its
    /// 64 multiply-adds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Scores<T>(float* q, float* k, long stride, int hs, int tk, float* s) where T : unmanaged, ISimd<T>
    {
        int w = T.Count, whole = hs - hs % w, j = 0;
        for (; j + 4 <= tk; j += 4)
        {
            float* k0 = k + j * stride, k1 = k0 + stride, k2 = k1 + stride, k3 = k2 + stride;
            T a0 = T.Create(0f), a1 = a0, a2 = a0, a3 = a0;
            for (int i = 0; i < whole; i += w)
            {
                var x = T.Load(in q[i]);
                a0 = T.MultiplyAdd(x, T.Load(in k0[i]), a0);
                a1 = T.MultiplyAdd(x, T.Load(in k1[i]), a1);
                a2 = T.MultiplyAdd(x, T.Load(in k2[i]), a2);
                a3 = T.MultiplyAdd(x, T.Load(in k3[i]), a3);
            }
            float s0 = T.Sum(a0), s1 = T.Sum(a1), s2 = T.Sum(a2), s3 = T.Sum(a3);
            for (int i = whole; i < hs; i++)
            {
                s0 += q[i] * k0[i]; s1 += q[i] * k1[i]; s2 += q[i] * k2[i]; s3 += q[i] * k3[i];
            }
            s[j] = s0; s[j + 1] = s1; s[j + 2] = s2; s[j + 3] = s3;
        }
        for (; j < tk; j++)
        {
            float* kj = k + j * stride;
            T a = T.Create(0f);
            for (int i = 0; i < whole; i += w) a = T.MultiplyAdd(T.Load(in q[i]), T.Load(in kj[i]), a);
            float sj = T.Sum(a);
            for (int i = whole; i < hs; i++) sj += q[i] * kj[i];
            s[j] = sj;
        }
    }

    /// <summary>
    /// o = scale · Σ_j p_j·v_j over the <paramref name="tk"/> value rows (<paramref name="stride"/> floats apart), up to
    /// four vectors of the head at a time held in registers across every j; keys of weight 0 (masked) are skipped.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void WeightedSum<T>(float* p, float* v, long stride, int hs, int tk, float scale, float* o)
        where T : unmanaged, ISimd<T>
    {
        int w = T.Count, i = 0;
        for (; i + 4 * w <= hs; i += 4 * w)
        {
            T a0 = T.Create(0f), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < tk; j++)
            {
                if (p[j] == 0f) continue;
                var pj = T.Create(p[j]);
                float* vj = v + j * stride + i;
                a0 = T.MultiplyAdd(pj, T.Load(in vj[0]), a0);
                a1 = T.MultiplyAdd(pj, T.Load(in vj[w]), a1);
                a2 = T.MultiplyAdd(pj, T.Load(in vj[2 * w]), a2);
                a3 = T.MultiplyAdd(pj, T.Load(in vj[3 * w]), a3);
            }
            var f = T.Create(scale);
            T.Store(a0 * f, ref o[i]); T.Store(a1 * f, ref o[i + w]);
            T.Store(a2 * f, ref o[i + 2 * w]); T.Store(a3 * f, ref o[i + 3 * w]);
        }
        for (; i + w <= hs; i += w)
        {
            T a = T.Create(0f);
            for (int j = 0; j < tk; j++)
                if (p[j] != 0f) a = T.MultiplyAdd(T.Create(p[j]), T.Load(in v[j * stride + i]), a);
            T.Store(a * T.Create(scale), ref o[i]);
        }
        for (; i < hs; i++)
        {
            float a = 0f;
            for (int j = 0; j < tk; j++)
                if (p[j] != 0f) a += p[j] * v[j * stride + i];
            o[i] = a * scale;
        }
    }

    /// <summary>
    /// Keys and values read (floats) from which the heads are spread over the threads. A decoding step's cache is read
    /// from memory, its lines evicted by the weights that stream through between two layers, so the heads wait on memory
    /// rather than on arithmetic, and a second thread's loads in flight pay off well below the tiled kernels' threshold:
    /// GPT-2 with 64 cached positions reads 98,304.
    /// </summary>
    const long ParallelFloats = 16 * 1024;
}
