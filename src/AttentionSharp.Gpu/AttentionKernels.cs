// Source: Dao, "FlashAttention-2" (2023), algorithm 1 (forward) and algorithm 2 (backward).
using ILGPU;

namespace AttentionSharp.Gpu;

/// <summary>One (B, NH, T, HS) operand as the kernels read it: element (b, h, t, c) at b·Batch + h·Head + t·Row + c.</summary>
internal struct HeadView
{
    public ArrayView<float> Data;
    public long Batch, Head, Row;

    public readonly long RowStart(int b, int h, int t) => b * Batch + h * Head + t * Row;
}

internal struct AttentionArgs
{
    public HeadView Q, K, V, O, DO, DQ, DK, DV;
    public ArrayView<float> Lse, D;
    public ArrayView<int> Padding;
    public int HasPadding, HasDQ, HasDK, HasDV, Batch, Heads, Tq, Tk, HeadSize, Causal, DropoutFirstBatch;
    public float Scale, Dropout;
    public ulong DropoutSeed;
}

/// <summary>
/// The FlashAttention-2 kernels. Every loop over a tile's elements is strided by the group's thread count, so a thread
/// owns the elements tid, tid + threads, …; per-thread accumulators (O, dK, dV) have the fixed size tile area /
/// threads. Rows and keys past the end of the sequence are zero-filled and masked, never branched around, so that all
/// threads of a group reach every barrier.
/// </summary>
internal static class AttentionKernels
{
    public const int MaxHeadSize = 128;

    /// <summary>Whether query i of batch b sees key j: the causal mask (bottom-right aligned) and key padding.</summary>
    static bool Visible(AttentionArgs p, int b, int i, int j) =>
        (p.Causal == 0 || j <= i + p.Tk - p.Tq) && (p.HasPadding == 0 || p.Padding[(long)b * p.Tk + j] == 0);

    /// <summary>
    /// 1/(1 − p) where attention weight (b, h, i, j) survives dropout, else 0: element ((b′·NH + h)·Tq + i)·Tk + j of
    /// the dropout stream, b′ = b + the first batch index, as the CPU engine's attention draws it.
    /// </summary>
    static float DropoutFactor(AttentionArgs p, int b, int h, int i, int j) =>
        GpuMath.DropoutFactor(p.DropoutSeed,
            ((((ulong)b + (ulong)p.DropoutFirstBatch) * (ulong)p.Heads + (ulong)h) * (ulong)p.Tq + (ulong)i) * (ulong)p.Tk
            + (ulong)j, p.Dropout);

    /// <summary>Algorithm 1 for query rows [i0, i0 + Br) of head (b, h), group (tile, b·NH + h).</summary>
    [Kernel]
    public static void Forward<TS>(AttentionArgs p) where TS : struct, IKernelShapes
    {
        const int ld = MaxHeadSize, ldk = MaxHeadSize + 1;
        var qs = SharedMemory.Allocate<float>(TS.ForwardQueryTile * MaxHeadSize);       // Q·scale, (Br, HS)
        var ks = SharedMemory.Allocate<float>(TS.ForwardKeyTile * (MaxHeadSize + 1));   // K tile, rows padded
        var vs = SharedMemory.Allocate<float>(TS.ForwardKeyTile * MaxHeadSize);         // V tile
        var ps = SharedMemory.Allocate<float>(TS.ForwardQueryTile * TS.ForwardKeyTile); // S, then P
        var stats = SharedMemory.Allocate<float>(3 * TS.ForwardQueryTile);             // m | l | α per row
        var o = LocalMemory.Allocate<float>(TS.ForwardQueryTile * MaxHeadSize / TS.AttentionThreads);
        int brMax = TS.ForwardQueryTile, bcMax = TS.ForwardKeyTile, threads = TS.AttentionThreads;
        int hs = p.HeadSize, tid = Group.IdxX;
        int i0 = Grid.IdxX * brMax, b = Grid.IdxY / p.Heads, h = Grid.IdxY % p.Heads;
        int br = Math.Min(brMax, p.Tq - i0);
        for (int e = tid; e < brMax * hs; e += threads)
        {
            int r = e / hs, c = e - r * hs;
            qs[r * ld + c] = r < br ? p.Q.Data[p.Q.RowStart(b, h, i0 + r) + c] * p.Scale : 0f;
        }
        for (int r = tid; r < brMax; r += threads)
        {
            stats[r] = float.NegativeInfinity;
            stats[brMax + r] = 0f;
            stats[2 * brMax + r] = 1f;
        }
        for (int u = 0, e = tid; e < brMax * hs; u++, e += threads) o[u] = 0f;
        // Under the causal mask no row of the tile sees keys beyond (i0 + br − 1) + (Tk − Tq).
        int end = p.Causal != 0 ? Math.Min(Math.Max(i0 + br + p.Tk - p.Tq, 0), p.Tk) : p.Tk;
        for (int j0 = 0; j0 < end; j0 += bcMax)
        {
            int bc = Math.Min(bcMax, end - j0);
            Group.Barrier();
            for (int e = tid; e < bcMax * hs; e += threads)
            {
                int j = e / hs, c = e - j * hs;
                ks[j * ldk + c] = j < bc ? p.K.Data[p.K.RowStart(b, h, j0 + j) + c] : 0f;
                vs[j * ld + c] = j < bc ? p.V.Data[p.V.RowStart(b, h, j0 + j) + c] : 0f;
            }
            Group.Barrier();
            // S = (Q·scale)·Kᵀ, −∞ where masked or outside the sequence
            for (int e = tid; e < brMax * bcMax; e += threads)
            {
                int r = e / bcMax, j = e - r * bcMax;
                float s = float.NegativeInfinity;
                if (r < br && j < bc && Visible(p, b, i0 + r, j0 + j))
                {
                    s = 0f;
                    for (int c = 0; c < hs; c++) s = GpuMath.Fma(qs[r * ld + c], ks[j * ldk + c], s);
                }
                ps[e] = s;
            }
            Group.Barrier();
            // m' = max(m, rowmax S), P = e^(S − m'), l' = e^(m − m')·l + rowsum P, α = e^(m − m') rescales O
            for (int r = tid; r < brMax; r += threads)
            {
                float mOld = stats[r], mNew = mOld;
                for (int j = 0; j < bcMax; j++) mNew = MathF.Max(mNew, ps[r * bcMax + j]);
                if (float.IsNegativeInfinity(mNew))
                {
                    for (int j = 0; j < bcMax; j++) ps[r * bcMax + j] = 0f;
                    stats[2 * brMax + r] = 1f;
                    continue;
                }
                float alpha = MathF.Exp(mOld - mNew), sum = 0f;
                for (int j = 0; j < bcMax; j++)
                {
                    float e = MathF.Exp(ps[r * bcMax + j] - mNew);
                    ps[r * bcMax + j] = e;
                    sum += e;
                }
                stats[r] = mNew;
                stats[brMax + r] = stats[brMax + r] * alpha + sum;
                stats[2 * brMax + r] = alpha;
            }
            Group.Barrier();
            // Dropout acts on the weights after normalisation, so l summed the kept and the dropped alike: P̃ = P ⊙ mask.
            if (p.Dropout > 0f)
            {
                for (int e = tid; e < brMax * bcMax; e += threads)
                {
                    int r = e / bcMax, j = e - r * bcMax;
                    if (r < br && j < bc) ps[e] *= DropoutFactor(p, b, h, i0 + r, j0 + j);
                }
                Group.Barrier();
            }
            // O ← α·O + P̃·V
            for (int u = 0, e = tid; e < brMax * hs; u++, e += threads)
            {
                int r = e / hs, c = e - r * hs;
                float acc = o[u] * stats[2 * brMax + r];
                for (int j = 0; j < bc; j++) acc = GpuMath.Fma(ps[r * bcMax + j], vs[j * ld + c], acc);
                o[u] = acc;
            }
        }
        Group.Barrier();
        // O = O / l, L = m + log l; a fully masked row (l = 0) gives O = 0 and L = +∞.
        for (int u = 0, e = tid; e < brMax * hs; u++, e += threads)
        {
            int r = e / hs, c = e - r * hs;
            if (r >= br) continue;
            float l = stats[brMax + r];
            p.O.Data[p.O.RowStart(b, h, i0 + r) + c] = l > 0f ? o[u] * (1f / l) : 0f;
        }
        for (int r = tid; r < br; r += threads)
        {
            float l = stats[brMax + r];
            p.Lse[((long)b * p.Heads + h) * p.Tq + i0 + r] = l > 0f ? stats[r] + MathF.Log(l) : float.PositiveInfinity;
        }
    }

    /// <summary>D_i = Σ_c dO_ic·O_ic for every query row (b, h, i), the softmax backward's row term.</summary>
    [Kernel]
    public static void RowTerms(AttentionArgs p)
    {
        int rows = p.Batch * p.Heads * p.Tq;
        for (int row = GpuMath.GridFirst; row < rows; row += GpuMath.GridStride)
        {
            int i = row % p.Tq, bh = row / p.Tq, b = bh / p.Heads, h = bh % p.Heads;
            long o = p.O.RowStart(b, h, i), g = p.DO.RowStart(b, h, i);
            float d = 0f;
            for (int c = 0; c < p.HeadSize; c++) d = GpuMath.Fma(p.DO.Data[g + c], p.O.Data[o + c], d);
            p.D[row] = d;
        }
    }

    /// <summary>Algorithm 2 for keys [j0, j0 + Bc) of head (b, h), group (tile, b·NH + h).</summary>
    [Kernel]
    public static void Backward<TS>(AttentionArgs p) where TS : struct, IKernelShapes
    {
        const int ld = MaxHeadSize, ldk = MaxHeadSize + 1;
        var ks = SharedMemory.Allocate<float>(TS.BackwardKeyTile * (MaxHeadSize + 1));    // K tile, rows padded
        var vs = SharedMemory.Allocate<float>(TS.BackwardKeyTile * (MaxHeadSize + 1));    // V tile, rows padded
        var qs = SharedMemory.Allocate<float>(TS.BackwardQueryTile * MaxHeadSize);        // Q·scale
        var gs = SharedMemory.Allocate<float>(TS.BackwardQueryTile * MaxHeadSize);        // dO
        var ps = SharedMemory.Allocate<float>(TS.BackwardQueryTile * TS.BackwardKeyTile); // P
        var ds = SharedMemory.Allocate<float>(TS.BackwardQueryTile * TS.BackwardKeyTile); // dS
        var rowStats = SharedMemory.Allocate<float>(2 * TS.BackwardQueryTile);           // L | D per row
        var dk = LocalMemory.Allocate<float>(TS.BackwardKeyTile * MaxHeadSize / TS.AttentionThreads);
        var dv = LocalMemory.Allocate<float>(TS.BackwardKeyTile * MaxHeadSize / TS.AttentionThreads);
        int brMax = TS.BackwardQueryTile, bcMax = TS.BackwardKeyTile, threads = TS.AttentionThreads;
        int hs = p.HeadSize, tid = Group.IdxX;
        int j0 = Grid.IdxX * bcMax, b = Grid.IdxY / p.Heads, h = Grid.IdxY % p.Heads;
        int bc = Math.Min(bcMax, p.Tk - j0), shift = p.Tk - p.Tq;
        for (int e = tid; e < bcMax * hs; e += threads)
        {
            int j = e / hs, c = e - j * hs;
            ks[j * ldk + c] = j < bc ? p.K.Data[p.K.RowStart(b, h, j0 + j) + c] : 0f;
            vs[j * ldk + c] = j < bc ? p.V.Data[p.V.RowStart(b, h, j0 + j) + c] : 0f;
        }
        for (int u = 0, e = tid; e < bcMax * hs; u++, e += threads)
        {
            dk[u] = 0f;
            dv[u] = 0f;
        }
        long statBase = ((long)b * p.Heads + h) * p.Tq;
        // Query tiles on a fixed grid; under the causal mask those wholly before key j0 see none of this tile.
        int first = p.Causal != 0 ? Math.Max(0, j0 - shift) / brMax * brMax : 0;
        for (int i0 = first; i0 < p.Tq; i0 += brMax)
        {
            int br = Math.Min(brMax, p.Tq - i0);
            Group.Barrier();
            for (int e = tid; e < brMax * hs; e += threads)
            {
                int r = e / hs, c = e - r * hs;
                qs[r * ld + c] = r < br ? p.Q.Data[p.Q.RowStart(b, h, i0 + r) + c] * p.Scale : 0f;
                gs[r * ld + c] = r < br ? p.DO.Data[p.DO.RowStart(b, h, i0 + r) + c] : 0f;
            }
            for (int r = tid; r < brMax; r += threads)
            {
                rowStats[r] = r < br ? p.Lse[statBase + i0 + r] : float.PositiveInfinity;
                rowStats[brMax + r] = r < br ? p.D[statBase + i0 + r] : 0f;
            }
            Group.Barrier();
            // S = (Q·scale)·Kᵀ, P = e^(S − L); dP = dO·Vᵀ; dS = P ⊙ (dP − D)
            for (int e = tid; e < brMax * bcMax; e += threads)
            {
                int r = e / bcMax, j = e - r * bcMax;
                float prob = 0f, grad = 0f;
                if (r < br && j < bc && Visible(p, b, i0 + r, j0 + j))
                {
                    float s = 0f, dp = 0f;
                    for (int c = 0; c < hs; c++)
                    {
                        s = GpuMath.Fma(qs[r * ld + c], ks[j * ldk + c], s);
                        dp = GpuMath.Fma(gs[r * ld + c], vs[j * ldk + c], dp);
                    }
                    prob = MathF.Exp(s - rowStats[r]);
                    if (p.Dropout > 0f)
                    {
                        // dV takes P̃ = P ⊙ mask; the weights' gradient is dP̃ ⊙ mask
                        float factor = DropoutFactor(p, b, h, i0 + r, j0 + j);
                        grad = prob * (dp * factor - rowStats[brMax + r]);
                        prob *= factor;
                    }
                    else grad = prob * (dp - rowStats[brMax + r]);
                }
                ps[e] = prob;
                ds[e] = grad;
            }
            Group.Barrier();
            // dV += P̃ᵀ·dO, dK += dSᵀ·(Q·scale), for this thread's (key, column) elements
            for (int u = 0, e = tid; e < bcMax * hs; u++, e += threads)
            {
                int j = e / hs, c = e - j * hs;
                float accV = dv[u], accK = dk[u];
                for (int r = 0; r < br; r++)
                {
                    accV = GpuMath.Fma(ps[r * bcMax + j], gs[r * ld + c], accV);
                    accK = GpuMath.Fma(ds[r * bcMax + j], qs[r * ld + c], accK);
                }
                dv[u] = accV;
                dk[u] = accK;
            }
            // dQ += dS·K·scale, shared with the other key tiles' groups: atomics
            if (p.HasDQ == 0) continue;
            for (int e = tid; e < brMax * hs; e += threads)
            {
                int r = e / hs, c = e - r * hs;
                if (r >= br) continue;
                float acc = 0f;
                for (int j = 0; j < bc; j++) acc = GpuMath.Fma(ds[r * bcMax + j], ks[j * ldk + c], acc);
                if (acc != 0f) Atomic.Add(ref p.DQ.Data[p.DQ.RowStart(b, h, i0 + r) + c], acc * p.Scale);
            }
        }
        for (int u = 0, e = tid; e < bcMax * hs; u++, e += threads)
        {
            int j = e / hs, c = e - j * hs;
            if (j >= bc) continue;
            if (p.HasDK != 0) p.DK.Data[p.DK.RowStart(b, h, j0 + j) + c] += dk[u];
            if (p.HasDV != 0) p.DV.Data[p.DV.RowStart(b, h, j0 + j) + c] += dv[u];
        }
    }
}
