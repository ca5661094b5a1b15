// Source: Dao, "FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning" (2023), algorithms 1
// (forward) and 2 (backward).
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// FlashAttention-2 on the CPU: O = softmax(QKᵀ·scale + mask)·V computed tile by tile with an online softmax, so the
/// (Tq, Tk) weights are never held; the forward pass saves the row logsumexp L, from which the backward pass recomputes
/// each weight tile as P = exp(S − L).
/// </summary>
/// <remarks>
/// <para>Masks as <see cref="AttentionProblem"/> describes. Causal key tiles that lie wholly in a query tile's future are
/// skipped, and so are tiles wholly outside a sliding window's band (unless they hold a global token), which makes the
/// windowed kernel O(T·w) in time. A causal tile on the diagonal is cut to the keys the query tile's last row sees;
/// causal query tiles are half as tall as key tiles, so masked weights take about a third of a diagonal tile's work,
/// not half. A row whose keys are all masked gets O = 0 (PyTorch gives NaN) and L = +∞, so that its recomputed weights
/// are 0 and it contributes no gradient.</para>
/// <para>Threading: the forward pass hands out (b, h, query tile) items, the costliest causal tiles first; the backward
/// pass hands out (b, key/value head) items, each owning its dK, dV and the dQ of its query heads, so nothing is shared
/// and every sum runs in a fixed order: results do not depend on the thread count. The backward pass therefore uses at
/// most B·NKV threads.</para>
/// </remarks>
public static unsafe class AttentionFlash
{
    /// <summary>Query rows per tile (Br), which sizes the scratch; causal problems take half (<see cref="QueryRows"/>).</summary>
    public const int QueryTile = 64;

    /// <summary>Keys per tile (Bc).</summary>
    public const int KeyTile = 64;

    /// <summary>
    /// Query rows per tile for this problem: half of <see cref="QueryTile"/> under the causal mask, where a shorter tile
    /// wastes less of its diagonal key tile on masked weights; the full height otherwise, where each key and value tile
    /// brought into L1 then serves twice as many rows (half-height tiles made the unmasked forward pass about a tenth
    /// slower at T = 1024, HS = 64).
    /// </summary>
    static int QueryRows(in AttentionProblem p) => p.Causal ? QueryTile / 2 : QueryTile;

    /// <summary>
    /// o = softmax(q·kᵀ·scale + mask)·v, (B, NH, Tq, HS); <paramref name="lse"/> (B·NH·Tq floats) receives
    /// L_i = m_i + log l_i, the logsumexp of row i of the masked scores.
    /// </summary>
    public static void Forward(in AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* lse)
    {
        p.Validate();
        if (Vector512.IsHardwareAccelerated) Forward<Vec512>(p, q, k, v, o, lse);
        else if (Vector256.IsHardwareAccelerated) Forward<Vec256>(p, q, k, v, o, lse);
        else Forward<Vec1>(p, q, k, v, o, lse);
    }

    /// <summary>
    /// dq += ∂L/∂q, dk += ∂L/∂k, dv += ∂L/∂v given dO = ∂L/∂o, the forward output o and its logsumexp;
    /// a null gradient operand is skipped. With D_i = Σ_c dO_ic·O_ic: dV = P̃ᵀ·dO, dP̃ = dO·Vᵀ,
    /// dS = P ⊙ (dP − D), dQ = dS·K·scale, dK = dSᵀ·Q·scale, where P̃ = P ⊙ dropout mask and
    /// dP = dP̃ ⊙ dropout mask. With <paramref name="clear"/>, dq, dk and dv are set instead of added to: each head's rows
    /// are cleared by the thread that then accumulates into them, so their old contents are never read.
    /// </summary>
    public static void Backward(in AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* lse,
        HeadTensor dO, HeadTensor dq, HeadTensor dk, HeadTensor dv, bool clear = false)
    {
        p.Validate();
        if (Vector512.IsHardwareAccelerated) Backward<Vec512>(p, q, k, v, o, lse, dO, dq, dk, dv, clear);
        else if (Vector256.IsHardwareAccelerated) Backward<Vec256>(p, q, k, v, o, lse, dO, dq, dk, dv, clear);
        else Backward<Vec1>(p, q, k, v, o, lse, dO, dq, dk, dv, clear);
    }

    static void Forward<T>(AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* lse)
        where T : unmanaged, ISimd<T>
    {
        int qt = QueryRows(in p), bh = p.Batch * p.Heads, tiles = (p.QueryLength + qt - 1) / qt;
        if (bh == 0 || tiles == 0) return;
        if (AttentionDecode.Applies(in p) && p.QueryLengths == null)
        {
            AttentionDecode.Forward<T>(in p, q, k, v, o, lse);
            return;
        }
        int hs = p.HeadSize, tk = p.KeyLength;
        // Kᵀ of every key tile, a dense (HS, Bc) block each, so a score tile is a plain (Br × HS)·(HS × Bc) product whose
        // rows of B are adjacent (rows Tk apart would alias in the cache when Tk is a power of two).
        int keyTiles = (tk + KeyTile - 1) / KeyTile;
        long headT = (long)keyTiles * hs * KeyTile;
        long scratch = 2L * QueryTile * hs + (long)QueryTile * KeyTile + 2 * QueryTile;
        var globalPrefix = AttentionMasks.GlobalPrefix(in p);
        if (tiles == 1 && p.Group == 1)
        {
            // Each item is a whole head and the only reader of its keys (short sequences: a word, a sentence, an
            // image's patches): it transposes them into its own scratch, so the call is one parallel region, not two.
            AttentionWork.Run(bh, scratch + headT, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (item, mem) =>
            {
                int b = item / p.Heads, h = item % p.Heads;
                float* ktHead = (float*)mem + scratch;
                TransposeKeys<T>(in p, k.Head(b, h), k.RowStride, ktHead);
                ForwardTile<T>(in p, globalPrefix, q, ktHead, v, o, lse, b, h, 0, (float*)mem);
            }, AttentionWork.Work(in p));
            return;
        }
        long ktFloats = p.Batch * p.KvHeads * headT;
        float* kt = AttentionWork.Alloc(ktFloats);
        try
        {
            AttentionWork.Run(p.Batch * p.KvHeads, 0, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (item, _) =>
                TransposeKeys<T>(in p, k.Head(item / p.KvHeads, item % p.KvHeads), k.RowStride, kt + item * headT),
                (long)p.Batch * p.KvHeads * tk * hs);
            // The costliest query tiles (the last ones, under a causal mask) go first, so the threads finish together.
            AttentionWork.Run(bh * tiles, scratch, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (item, mem) =>
            {
                int tile = tiles - 1 - item / bh, b = item % bh / p.Heads, h = item % p.Heads;
                float* ktHead = kt + (b * p.KvHeads + h / p.Group) * headT;
                ForwardTile<T>(in p, globalPrefix, q, ktHead, v, o, lse, b, h, tile * qt, (float*)mem);
            }, AttentionWork.Work(in p));
        }
        finally
        {
            AttentionWork.Free(kt, ktFloats);
        }
    }

    /// <summary>Kᵀ of one key/value head's key tiles: (HS, Bc) blocks of <see cref="KeyTile"/>-float rows.</summary>
    static void TransposeKeys<T>(in AttentionProblem p, float* kh, long rowStride, float* kt) where T : unmanaged, ISimd<T>
    {
        int hs = p.HeadSize, tk = p.KeyLength;
        for (int j0 = 0; j0 < tk; j0 += KeyTile)
        {
            int bc = Math.Min(KeyTile, tk - j0);
            AttentionTiles.Transpose(bc, hs, kh + j0 * rowStride, rowStride, KeyTile, kt + (long)j0 * hs,
                AttentionTiles.Padded<T>(bc, KeyTile));
        }
    }

    /// <summary>Rows [i0, i0 + Br) of head (b, h): algorithm 1 of FlashAttention-2 over the key tiles.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static void ForwardTile<T>(in AttentionProblem p, int[]? globalPrefix, HeadTensor q, float* kt, HeadTensor v, HeadTensor o,
        float* lse, int b, int h, int i0, float* mem) where T : unmanaged, ISimd<T>
    {
        int hs = p.HeadSize, tk = p.KeyLength, rows = Math.Min(QueryRows(in p), p.QueryLength - i0);
        // Rows past the batch row's live ones are not computed (QueryLengths): they leave with l = 0, so O = 0, L = +∞.
        int shift = tk - p.QueryLength, br = Math.Clamp(p.LiveRows(b) - i0, 0, rows);
        float* qs = mem, acc = qs + QueryTile * hs, s = acc + QueryTile * hs, m = s + QueryTile * KeyTile, l = m + QueryTile;
        LoadScaled<T>(qs, q.Head(b, h) + i0 * q.RowStride, q.RowStride, br, hs, p.Scale);
        new Span<float>(acc, br * hs).Clear();
        new Span<float>(m, rows).Fill(float.NegativeInfinity);
        new Span<float>(l, rows).Clear();
        // Under the causal mask no row of the tile sees keys beyond (i0 + rows − 1) + (Tk − Tq).
        int end = br == 0 ? 0 : p.Causal ? Math.Clamp(i0 + rows + shift, 0, tk) : tk;
        bool masked = p.Additive != null || p.KeyPadding != null || p.Window > 0;
        float* vh = v.Head(b, h / p.Group);
        for (int j0 = 0; j0 < end; j0 += KeyTile)
        {
            int bc = Math.Min(KeyTile, end - j0);
            // A sliding window leaves most tiles wholly outside its band.
            if (p.Window > 0 && !AttentionMasks.TileVisible(in p, globalPrefix, i0, br, j0, bc)) continue;
            // S = (Q·scale)·Kᵀ, (br × bc), computed in rows of bw ≥ bc floats (see Padded; columns past bc are not read)
            int bw = AttentionTiles.Padded<T>(bc, KeyTile);
            AttentionTiles.Multiply<T>(br, bw, hs, qs, hs, 1, kt + (long)j0 * hs, KeyTile, s, bw);
            bool diagonal = p.Causal && j0 + bc - 1 > i0 + shift;
            for (int r = 0; r < br; r++)
            {
                float* sr = s + r * bw;
                if (masked || diagonal) AttentionMasks.Apply<T>(in p, sr, bc, b, h, i0 + r, j0, 1f);
                // m' = max(m, rowmax S), P = e^(S − m'), l' = e^(m − m')·l + rowsum P, O ← e^(m − m')·O
                float mNew = Math.Max(m[r], TensorPrimitives.Max(new ReadOnlySpan<float>(sr, bc)));
                if (float.IsNegativeInfinity(mNew))
                {
                    new Span<float>(sr, bc).Clear();
                    continue;
                }
                float mOld = m[r], alpha = MathF.Exp(mOld - mNew);
                float sum = RowMath.ExpShiftSum<T>(sr, sr, bc, mNew, bw);
                l[r] = l[r] * alpha + sum;
                m[r] = mNew;
                // Until a row has seen a key its accumulator holds zeros (or what 0·V gave), which e^(−∞) would keep.
                var accRow = new Span<float>(acc + r * hs, hs);
                if (alpha != 1f && !float.IsNegativeInfinity(mOld)) TensorPrimitives.Multiply(accRow, alpha, accRow);
                // Dropout acts on the weights after normalisation, so l sums the kept and the dropped alike.
                if (p.Dropout > 0) AttentionMasks.DropoutInPlace(in p, sr, bc, b, h, i0 + r, j0);
            }
            // O += P̃·V
            AttentionTiles.MultiplyAdd<T>(br, hs, bc, s, bw, 1, vh + j0 * v.RowStride, v.RowStride, acc, hs);
        }
        float* oh = o.Head(b, h) + i0 * o.RowStride;
        float* lh = lse + ((long)b * p.Heads + h) * p.QueryLength + i0;
        for (int r = 0; r < rows; r++)
        {
            // O = O / l, L = m + log l; a fully masked row (l = 0) gives O = 0 and L = +∞.
            var row = new Span<float>(oh + r * o.RowStride, hs);
            if (l[r] > 0)
            {
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(acc + r * hs, hs), 1f / l[r], row);
                lh[r] = m[r] + MathF.Log(l[r]);
            }
            else
            {
                row.Clear();
                lh[r] = float.PositiveInfinity;
            }
        }
    }

    /// <summary>dst (rows × hs, dense) = src (rows with stride lds) · scale.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void LoadScaled<T>(float* dst, float* src, long lds, int rows, int hs, float scale) where T : unmanaged, ISimd<T>
    {
        T vs = T.Create(scale);
        for (int r = 0; r < rows; r++)
        {
            float* s = src + r * lds, d = dst + r * hs;
            int c = 0;
            for (; c <= hs - T.Count; c += T.Count) T.Store(T.Load(in s[c]) * vs, ref d[c]);
            for (; c < hs; c++) d[c] = s[c] * scale;
        }
    }

    static void Backward<T>(AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* lse,
        HeadTensor dO, HeadTensor dq, HeadTensor dk, HeadTensor dv, bool clear) where T : unmanaged, ISimd<T>
    {
        int hs = p.HeadSize;
        long scratch = 2L * KeyTile * hs + (long)QueryTile * hs + 3L * QueryTile * KeyTile + (long)p.Group * p.QueryLength;
        var globalPrefix = AttentionMasks.GlobalPrefix(in p);
        AttentionWork.Run(p.Batch * p.KvHeads, scratch, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (item, mem) =>
            BackwardHead<T>(in p, globalPrefix, q, k, v, o, lse, dO, dq, dk, dv, item / p.KvHeads, item % p.KvHeads,
                (float*)mem, clear));
    }

    /// <summary>Algorithm 2 of FlashAttention-2 for key/value head g of batch b and the query heads that read it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static void BackwardHead<T>(in AttentionProblem p, int[]? globalPrefix, HeadTensor q, HeadTensor k, HeadTensor v,
        HeadTensor o, float* lse, HeadTensor dO, HeadTensor dq, HeadTensor dk, HeadTensor dv, int b, int g, float* mem,
        bool clear)
        where T : unmanaged, ISimd<T>
    {
        int hs = p.HeadSize, tq = p.QueryLength, tk = p.KeyLength, group = p.Group, shift = tk - tq, qt = QueryRows(in p);
        // Rows past the live ones (QueryLengths) add nothing: their dO is not read and their dQ stays as cleared or given.
        int live = p.LiveRows(b);
        if (clear)
        {
            // This item owns the rows of dK and dV of head g and of dQ of the query heads that read it.
            for (int x = 0; x < group && !dq.IsNull; x++)
                AttentionTiles.ClearRows(dq.Head(b, g * group + x), dq.RowStride, tq, hs);
            if (!dk.IsNull) AttentionTiles.ClearRows(dk.Head(b, g), dk.RowStride, tk, hs);
            if (!dv.IsNull) AttentionTiles.ClearRows(dv.Head(b, g), dv.RowStride, tk, hs);
        }
        float* kt = mem, vt = kt + KeyTile * hs;
        float* qs = vt + KeyTile * hs, s = qs + QueryTile * hs, dp = s + QueryTile * KeyTile, drop = dp + QueryTile * KeyTile;
        float* d = drop + QueryTile * KeyTile;
        // D_i = Σ_c dO_ic·O_ic (= Σ_j P_ij·dP_ij, the softmax backward's row term)
        for (int x = 0; x < group; x++)
        {
            int h = g * group + x;
            float* oh = o.Head(b, h), gh = dO.Head(b, h);
            for (int i = 0; i < live; i++)
                d[x * tq + i] = TensorPrimitives.Dot(new ReadOnlySpan<float>(oh + i * o.RowStride, hs),
                    new ReadOnlySpan<float>(gh + i * dO.RowStride, hs));
        }
        bool masked = p.Additive != null || p.KeyPadding != null || p.Window > 0, dropout = p.Dropout > 0;
        float* kh = k.Head(b, g), vh = v.Head(b, g);
        for (int j0 = 0; j0 < tk; j0 += KeyTile)
        {
            // Kᵀ and Vᵀ of the tile in rows of ldt ≥ bc floats (see Padded), zero past bc.
            int bc = Math.Min(KeyTile, tk - j0), ldt = AttentionTiles.Padded<T>(bc, KeyTile);
            AttentionTiles.Transpose(bc, hs, kh + j0 * k.RowStride, k.RowStride, ldt, kt, ldt);
            AttentionTiles.Transpose(bc, hs, vh + j0 * v.RowStride, v.RowStride, ldt, vt, ldt);
            // This item owns rows j0 … j0 + bc − 1 of dK and dV: the tile products accumulate into them in place.
            float* dkj = dk.IsNull ? null : dk.Head(b, g) + j0 * dk.RowStride;
            float* dvj = dv.IsNull ? null : dv.Head(b, g) + j0 * dv.RowStride;
            // Query tiles on a fixed grid; under the causal mask those wholly before key j0 see none of this tile.
            int first = p.Causal ? Math.Max(0, j0 - shift) / qt * qt : 0;
            for (int x = 0; x < group; x++)
            {
                int h = g * group + x;
                float* lh = lse + ((long)b * p.Heads + h) * tq, dh = d + x * tq;
                for (int i0 = first; i0 < live; i0 += qt)
                {
                    // The tile's rows, of which the first br are live: the rest would add exact zeros (their dO is 0
                    // where nobody reads their output), so leaving them out changes no bit.
                    int rows = Math.Min(qt, tq - i0), br = Math.Min(rows, live - i0);
                    // Under the causal mask these rows see only the tile's first bn keys (up to i0 + rows − 1 + shift);
                    // the rest would add exact zeros too. (bn comes from all the tile's rows, so the tile's products
                    // keep their widths, and with them their rounding.)
                    int bn = p.Causal ? Math.Min(bc, i0 + rows + shift - j0) : bc;
                    if (p.Window > 0 && !AttentionMasks.TileVisible(in p, globalPrefix, i0, br, j0, bn)) continue;
                    float* gi = dO.Head(b, h) + i0 * dO.RowStride;
                    LoadScaled<T>(qs, q.Head(b, h) + i0 * q.RowStride, q.RowStride, br, hs, p.Scale);
                    // S = (Q·scale)·Kᵀ, P = e^(S − L); the tiles below lie in rows of bw ≥ bn floats (see Padded), of
                    // which only the first bn are read.
                    int bw = AttentionTiles.Padded<T>(bn, ldt);
                    AttentionTiles.Multiply<T>(br, bw, hs, qs, hs, 1, kt, ldt, s, bw);
                    bool diagonal = p.Causal && j0 + bn - 1 > i0 + shift;
                    RecomputeWeights<T>(in p, s, bw, br, bn, b, h, i0, j0, lh + i0, masked || diagonal, dropout ? drop : null);
                    float* pd = s;
                    if (dropout)
                    {
                        pd = dp;
                        MultiplyRows(s, drop, pd, br, bn, bw);
                    }
                    // dV += P̃ᵀ·dO
                    if (!dv.IsNull) AttentionTiles.MultiplyAdd<T>(bn, hs, br, pd, 1, bw, gi, dO.RowStride, dvj, dv.RowStride);
                    if (dq.IsNull && dk.IsNull) continue;
                    // dP̃ = dO·Vᵀ, dP = dP̃ ⊙ mask
                    AttentionTiles.Multiply<T>(br, bw, hs, gi, dO.RowStride, 1, vt, ldt, dp, bw);
                    if (dropout) MultiplyRows(dp, drop, dp, br, bn, bw);
                    // dS = P ⊙ (dP − D)
                    for (int r = 0; r < br; r++) SoftmaxGradient<T>(dp + r * bw, s + r * bw, bn, dh[i0 + r], bw);
                    // dK += dSᵀ·(Q·scale)
                    if (!dk.IsNull) AttentionTiles.MultiplyAdd<T>(bn, hs, br, dp, 1, bw, qs, hs, dkj, dk.RowStride);
                    // dQ += dS·K·scale
                    if (!dq.IsNull)
                    {
                        // The whole padded tile in one pass: the columns past bn hold finite values or junk never read.
                        TensorPrimitives.Multiply(new ReadOnlySpan<float>(dp, br * bw), p.Scale, new Span<float>(dp, br * bw));
                        AttentionTiles.MultiplyAdd<T>(br, hs, bn, dp, bw, 1, kh + j0 * k.RowStride, k.RowStride,
                            dq.Head(b, h) + i0 * dq.RowStride, dq.RowStride);
                    }
                }
            }
        }
    }

    /// <summary>
    /// P = e^(S − L) for a (br × bn) score tile in place (rows <paramref name="lds"/> apart), its masks applied first,
    /// and the dropout mask of its weights into <paramref name="drop"/> (unless null). A method of its own: inlined
    /// into the head loop, the JIT would run out of its inlining budget and call the vector exponential's every FMA as
    /// a function.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static void RecomputeWeights<T>(in AttentionProblem p, float* s, int lds, int br, int bn, int b, int h, int i0, int j0,
        float* lse, bool mask, float* drop) where T : unmanaged, ISimd<T>
    {
        for (int r = 0; r < br; r++)
        {
            float* sr = s + r * lds;
            if (mask) AttentionMasks.Apply<T>(in p, sr, bn, b, h, i0 + r, j0, 1f);
            RowMath.ExpShiftSum<T>(sr, sr, bn, lse[r], lds);
            if (drop != null) AttentionMasks.DropoutRow(in p, drop + r * lds, bn, b, h, i0 + r, j0);
        }
    }

    /// <summary>
    /// z = x ⊙ y over the first <paramref name="n"/> columns of <paramref name="rows"/> rows <paramref name="stride"/>
    /// apart; one pass over the whole tile when the rows are not padded (the dropout mask's padding is never written).
    /// </summary>
    static void MultiplyRows(float* x, float* y, float* z, int rows, int n, int stride)
    {
        if (stride == n)
        {
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(x, rows * n), new ReadOnlySpan<float>(y, rows * n),
                new Span<float>(z, rows * n));
            return;
        }
        for (int r = 0; r < rows; r++)
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(x + r * stride, n), new ReadOnlySpan<float>(y + r * stride, n),
                new Span<float>(z + r * stride, n));
    }

    /// <summary>
    /// ds_j = p_j·(ds_j − D): <paramref name="ds"/> holds dP on entry. Where both rows have room for n rounded up to
    /// whole vectors (<paramref name="width"/> floats), the last partial vector is computed whole (its lanes past n
    /// are not read).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SoftmaxGradient<T>(float* ds, float* prob, int n, float rowTerm, int width = 0)
        where T : unmanaged, ISimd<T>
    {
        T vd = T.Create(rowTerm);
        int j = 0;
        for (; j <= n - T.Count; j += T.Count) T.Store(T.Load(in prob[j]) * (T.Load(in ds[j]) - vd), ref ds[j]);
        if (j < n && j + T.Count <= width)
        {
            T.Store(T.Load(in prob[j]) * (T.Load(in ds[j]) - vd), ref ds[j]);
            j = n;
        }
        for (; j < n; j++) ds[j] = prob[j] * (ds[j] - rowTerm);
    }
}
