// Source: Vaswani et al., "Attention Is All You Need" (2017), eq. 1; the backward pass as Karpathy's llm.c
// (attention_backward), in matrix form.
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// Attention that materialises the (B, NH, Tq, Tk) weights P = softmax(QKᵀ·scale + mask), the path that can return
/// them; its products are GEMMs. Masks and dropout are those of <see cref="AttentionFlash"/> (one mask code, one dropout
/// stream), so both paths agree to rounding; a fully masked row likewise gives zero weights and O = 0.
/// </summary>
/// <remarks>Threading: (b, h, query block) items forward, (b, key/value head) items backward, each owning its outputs;
/// results do not depend on the thread count.</remarks>
public static unsafe class AttentionPlain
{
    /// <summary>Query rows per forward item.</summary>
    const int QueryBlock = 64;

    /// <summary>
    /// weights = softmax(q·kᵀ·scale + mask) (B·NH·Tq·Tk floats, before dropout), o = (weights ⊙ dropout mask)·v.
    /// </summary>
    public static void Forward(in AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* weights)
    {
        p.Validate();
        if (Vector512.IsHardwareAccelerated) Forward<Vec512>(p, q, k, v, o, weights);
        else if (Vector256.IsHardwareAccelerated) Forward<Vec256>(p, q, k, v, o, weights);
        else Forward<Vec1>(p, q, k, v, o, weights);
    }

    /// <summary>
    /// dq += ∂L/∂q, dk += ∂L/∂k, dv += ∂L/∂v from dO and the saved weights P; a null gradient operand is skipped.
    /// dV = P̃ᵀ·dO, dP = (dO·Vᵀ) ⊙ dropout mask, dS = P ⊙ (dP − Σ_j P ⊙ dP), dQ = dS·K·scale,
    /// dK = dSᵀ·Q·scale.
    /// </summary>
    public static void Backward(in AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, float* weights,
        HeadTensor dO, HeadTensor dq, HeadTensor dk, HeadTensor dv)
    {
        p.Validate();
        if (Vector512.IsHardwareAccelerated) Backward<Vec512>(p, q, k, v, weights, dO, dq, dk, dv);
        else if (Vector256.IsHardwareAccelerated) Backward<Vec256>(p, q, k, v, weights, dO, dq, dk, dv);
        else Backward<Vec1>(p, q, k, v, weights, dO, dq, dk, dv);
    }

    static void Forward<T>(AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* weights)
        where T : unmanaged, ISimd<T>
    {
        int bh = p.Batch * p.Heads, blocks = (p.QueryLength + QueryBlock - 1) / QueryBlock;
        int tk = p.KeyLength, hs = p.HeadSize;
        long scratch = p.Dropout > 0 ? (long)QueryBlock * tk : 0;
        AttentionWork.Run(bh * blocks, scratch, (item, mem) =>
        {
            int b = item / p.Heads / blocks, h = item / blocks % p.Heads, i0 = item % blocks * QueryBlock;
            int all = Math.Min(QueryBlock, p.QueryLength - i0), g = h / p.Group;
            float* w = weights + (((long)b * p.Heads + h) * p.QueryLength + i0) * tk;
            float* o0 = o.Head(b, h) + i0 * o.RowStride;
            // Rows past the live ones (QueryLengths) get zero weights and O = 0.
            int rows = tk == 0 ? 0 : Math.Clamp(p.LiveRows(b) - i0, 0, all);
            for (int r = rows; r < all; r++)
            {
                new Span<float>(o0 + r * o.RowStride, hs).Clear();
                new Span<float>(w + (long)r * tk, tk).Clear();
            }
            if (rows == 0) return;
            // S = Q·Kᵀ
            Gemm.Multiply(Transpose.No, Transpose.Yes, rows, tk, hs, q.Head(b, h) + i0 * q.RowStride, (int)q.RowStride,
                k.Head(b, g), (int)k.RowStride, w, tk);
            for (int r = 0; r < rows; r++)
            {
                // P = softmax(S·scale + mask), an all-masked row giving zeros
                float* wr = w + (long)r * tk;
                AttentionMasks.Apply<T>(in p, wr, tk, b, h, i0 + r, 0, p.Scale);
                float max = TensorPrimitives.Max(new ReadOnlySpan<float>(wr, tk));
                if (float.IsNegativeInfinity(max)) { new Span<float>(wr, tk).Clear(); continue; }
                float sum = RowMath.ExpShiftSum<T>(wr, wr, tk, max);
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(wr, tk), 1f / sum, new Span<float>(wr, tk));
            }
            // O = P̃·V with P̃ = P ⊙ dropout mask
            float* pd = w;
            if (p.Dropout > 0)
            {
                pd = (float*)mem;
                for (int r = 0; r < rows; r++)
                {
                    AttentionMasks.DropoutRow(in p, pd + (long)r * tk, tk, b, h, i0 + r, 0);
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(pd + (long)r * tk, tk),
                        new ReadOnlySpan<float>(w + (long)r * tk, tk), new Span<float>(pd + (long)r * tk, tk));
                }
            }
            Gemm.Multiply(Transpose.No, Transpose.No, rows, hs, tk, pd, tk, v.Head(b, g), (int)v.RowStride, o0, (int)o.RowStride);
        }, AttentionWork.Work(in p));
    }

    static void Backward<T>(AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, float* weights,
        HeadTensor dO, HeadTensor dq, HeadTensor dk, HeadTensor dv) where T : unmanaged, ISimd<T>
    {
        int tq = p.QueryLength, tk = p.KeyLength, hs = p.HeadSize;
        if (tq == 0 || tk == 0) return;
        long square = (long)tq * tk;
        long scratch = (p.Dropout > 0 ? 2 : 1) * square;
        AttentionWork.Run(p.Batch * p.KvHeads, scratch, (item, mem) =>
        {
            int b = item / p.KvHeads, g = item % p.KvHeads, live = p.LiveRows(b);   // rows past the live ones add nothing
            if (live == 0) return;
            float* ds = (float*)mem, pd = ds + square;
            for (int x = 0; x < p.Group; x++)
            {
                int h = g * p.Group + x;
                float* w = weights + ((long)b * p.Heads + h) * square, gh = dO.Head(b, h);
                float* dropped = w;
                if (p.Dropout > 0)
                {
                    dropped = pd;
                    for (int i = 0; i < live; i++)
                    {
                        AttentionMasks.DropoutRow(in p, pd + (long)i * tk, tk, b, h, i, 0);
                        TensorPrimitives.Multiply(new ReadOnlySpan<float>(pd + (long)i * tk, tk),
                            new ReadOnlySpan<float>(w + (long)i * tk, tk), new Span<float>(pd + (long)i * tk, tk));
                    }
                }
                // dV += P̃ᵀ·dO
                if (!dv.IsNull)
                    Gemm.Multiply(Transpose.Yes, Transpose.No, tk, hs, live, dropped, tk, gh, (int)dO.RowStride,
                        dv.Head(b, g), (int)dv.RowStride, accumulate: true);
                if (dq.IsNull && dk.IsNull) continue;
                // dP = (dO·Vᵀ) ⊙ dropout mask
                Gemm.Multiply(Transpose.No, Transpose.Yes, live, tk, hs, gh, (int)dO.RowStride, v.Head(b, g),
                    (int)v.RowStride, ds, tk);
                for (int i = 0; i < live; i++)
                {
                    float* dsr = ds + (long)i * tk, wr = w + (long)i * tk;
                    // A kept weight is P·1/(1 − p) ≠ 0 wherever P ≠ 0, and where P = 0 the mask does not matter (dS = 0).
                    if (p.Dropout > 0) KeepWhere(dsr, dropped + (long)i * tk, tk, 1f / (1f - p.Dropout));
                    // dS = P ⊙ (dP − Σ_j P_j·dP_j)·scale
                    float rowTerm = TensorPrimitives.Dot(new ReadOnlySpan<float>(wr, tk), new ReadOnlySpan<float>(dsr, tk));
                    AttentionFlash.SoftmaxGradient<T>(dsr, wr, tk, rowTerm);
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(dsr, tk), p.Scale, new Span<float>(dsr, tk));
                }
                // dQ += dS·K, dK += dSᵀ·Q (the scale is in dS)
                if (!dq.IsNull)
                    Gemm.Multiply(Transpose.No, Transpose.No, live, hs, tk, ds, tk, k.Head(b, g), (int)k.RowStride,
                        dq.Head(b, h), (int)dq.RowStride, accumulate: true);
                if (!dk.IsNull)
                    Gemm.Multiply(Transpose.Yes, Transpose.No, tk, hs, live, ds, tk, q.Head(b, h), (int)q.RowStride,
                        dk.Head(b, g), (int)dk.RowStride, accumulate: true);
            }
        });
    }

    /// <summary>x_j ← x_j·kept where y_j ≠ 0, else 0.</summary>
    static void KeepWhere(float* x, float* y, int n, float kept)
    {
        for (int j = 0; j < n; j++) x[j] = y[j] != 0f ? x[j] * kept : 0f;
    }
}
