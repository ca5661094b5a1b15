using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionSharp.Kernels;

public static unsafe partial class Gemm
{
    /// <summary>
    /// Packs op(A)[ic..ic+mc, pc..pc+kc] as micro-panels of <paramref name="mr"/> rows: element (i, p) of panel r at
    /// <c>r·mr·kc + p·mr + i</c>; rows past mc are zero so the micro-kernel never reads outside the block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackA(in Problem p, int ic, int mc, int pc, int kc, int mr, float* dst)
    {
        for (int i0 = 0; i0 < mc; i0 += mr, dst += (long)mr * kc)
        {
            int rows = Math.Min(mr, mc - i0);
            if (p.TransA == Transpose.No)
                // op(A)[i, p] = A[i·lda + p]: stored rows are contiguous in p, so the panel is a transpose.
                TransposeInto(p.A + (long)(ic + i0) * p.Lda + pc, p.Lda, rows, kc, dst, mr);
            else
            {
                // op(A)[i, p] = A[p·lda + i]: the panel's rows are contiguous in storage.
                float* src = p.A + (long)pc * p.Lda + ic + i0;
                int k = 0;
                // A panel narrower than a vector (6 rows for AVX2) moves whole vectors anyway: each store's extra lanes
                // are overwritten by the next row's, and the last row goes element by element. The extra lanes read
                // stay inside the stored row.
                if (Vector256.IsHardwareAccelerated && rows == mr && mr < 8 && ic + i0 + 8 <= p.Lda)
                    for (; k + 1 < kc; k++) Vector256.Store(Vector256.Load(src + (long)k * p.Lda), dst + k * mr);
                for (; k < kc; k++) Copy(src + (long)k * p.Lda, dst + k * mr, rows, mr);
            }
        }
    }

    /// <summary>
    /// Packs panels [panel0, panel1) of op(B)[pc..pc+kc, jc..jc+nc] as micro-panels of <paramref name="nr"/> columns:
    /// element (p, j) of panel q at <c>q·nr·kc + p·nr + j</c>; columns past nc are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackB(in Problem p, int pc, int kc, int jc, int nc, int panel0, int panel1, int nr, float* bPack)
    {
        if (p.TransB == Transpose.No)
        {
            // op(B)[p, j] = B[p·ldb + j]: row p of a panel is a contiguous piece of stored row p. Going 32 rows at a
            // time, panel by panel, keeps both sides on few pages: 32 source rows, each read in order, and one 4 KB
            // stretch of the destination.
            for (int k0 = 0; k0 < kc; k0 += 32)
            {
                int k1 = Math.Min(kc, k0 + 32);
                float* rows = p.B + (long)(pc + k0) * p.Ldb + jc;
                for (int q = panel0; q < panel1; q++)
                {
                    int j0 = q * nr, cols = Math.Min(nr, nc - j0);
                    float* src = rows + j0, dst = bPack + ((long)q * kc + k0) * nr;
                    for (int k = k0; k < k1; k++, src += p.Ldb, dst += nr) Copy(src, dst, cols, nr);
                }
            }
            return;
        }
        for (int q = panel0; q < panel1; q++)
        {
            // op(B)[p, j] = B[j·ldb + p]: stored rows are columns of op(B), so the panel is a transpose.
            int j0 = q * nr;
            TransposeInto(p.B + (long)(jc + j0) * p.Ldb + pc, p.Ldb, Math.Min(nr, nc - j0), kc, bPack + (long)q * kc * nr, nr);
        }
    }

    /// <summary>
    /// Copies <paramref name="count"/> floats and zeroes the rest of a <paramref name="width"/>-wide row. A count that
    /// is not a multiple of the vector ends with one vector that overlaps the one before it (a 14-row panel of AVX-512
    /// is two 8-float moves, [0, 8) and [6, 14)), so only rows shorter than a vector are copied element by element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Copy(float* src, float* dst, int count, int width)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && count >= 16)
        {
            for (; i + 16 <= count; i += 16) Vector512.Store(Vector512.Load(src + i), dst + i);
            if (i < count) Vector512.Store(Vector512.Load(src + count - 16), dst + count - 16);
            i = count;
        }
        else if (Vector256.IsHardwareAccelerated && count >= 8)
        {
            for (; i + 8 <= count; i += 8) Vector256.Store(Vector256.Load(src + i), dst + i);
            if (i < count) Vector256.Store(Vector256.Load(src + count - 8), dst + count - 8);
            i = count;
        }
        for (; i < count; i++) dst[i] = src[i];
        for (; i < width; i++) dst[i] = 0;
    }

    /// <summary>
    /// dst[p·width + r] = src[r·ld + p] for r &lt; rows, p &lt; depth; rows in [rows, width) are zero. Eight-by-eight
    /// blocks are transposed in registers where AVX allows and the panel is full.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TransposeInto(float* src, long ld, int rows, int depth, float* dst, int width)
    {
        int p = 0;
        if (Avx.IsSupported && rows == width && width >= 8)
            for (; p + 16 <= depth; p += 16)
                for (int r = 0; r < width; r += 8)
                {
                    // A width that is not a multiple of 8 ends with a block overlapping the one before it, so
                    // (for width 14) rows 6 and 7 are written twice with the same values and nothing spills.
                    // Two blocks along p read 64 bytes of each source row: whole cache lines.
                    int r0 = Math.Min(r, width - 8);
                    Transpose8x8(src + r0 * ld + p, ld, dst + (long)p * width + r0, width);
                    Transpose8x8(src + r0 * ld + p + 8, ld, dst + (long)(p + 8) * width + r0, width);
                }
        else if (Avx.IsSupported && rows == width && width is >= 4 and < 8)
            // Narrow panels (6 rows for AVX2) take eight columns at a time the same way, stored with overlap: each
            // column's two extra lanes are overwritten by the next column, and the last block's by the tail below.
            for (; p + 8 < depth; p += 8)
                Transpose8x8(src + p, ld, dst + (long)p * width, width, rows: width);
        // What is left: the last depth % 16 columns, or everything when rows do not fill the panel. Blocks of 64
        // columns keep the destination rows being written in L1.
        for (int k0 = p; k0 < depth; k0 += 64)
        {
            int k1 = Math.Min(depth, k0 + 64);
            for (int r = 0; r < rows; r++)
            {
                float* s = src + r * ld;
                for (int k = k0; k < k1; k++) dst[(long)k * width + r] = s[k];
            }
            for (int k = k0; k < k1; k++)
                for (int r = rows; r < width; r++) dst[(long)k * width + r] = 0;
        }
    }

    /// <summary>
    /// Writes the transpose of the 8×8 block at <paramref name="src"/> (rows <paramref name="ld"/> apart) to
    /// <paramref name="dst"/> (rows <paramref name="ldd"/> apart): unpack pairs of rows, shuffle pairs of pairs, then
    /// swap 128-bit halves — the standard 24-instruction AVX sequence. With <paramref name="rows"/> &lt; 8 only that many
    /// source rows are read (the others count as zero); with <paramref name="ldd"/> &lt; 8 the eight stores overlap, in
    /// order, so each one's extra lanes land where the next one then writes, and the caller writes the last one's again.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(float* src, long ld, float* dst, int ldd, int rows = 8)
    {
        var r0 = Avx.LoadVector256(src);
        var r1 = rows > 1 ? Avx.LoadVector256(src + ld) : Vector256<float>.Zero;
        var r2 = rows > 2 ? Avx.LoadVector256(src + 2 * ld) : Vector256<float>.Zero;
        var r3 = rows > 3 ? Avx.LoadVector256(src + 3 * ld) : Vector256<float>.Zero;
        var r4 = rows > 4 ? Avx.LoadVector256(src + 4 * ld) : Vector256<float>.Zero;
        var r5 = rows > 5 ? Avx.LoadVector256(src + 5 * ld) : Vector256<float>.Zero;
        var r6 = rows > 6 ? Avx.LoadVector256(src + 6 * ld) : Vector256<float>.Zero;
        var r7 = rows > 7 ? Avx.LoadVector256(src + 7 * ld) : Vector256<float>.Zero;
        // t0 = (r0[0], r1[0], r0[1], r1[1] | r0[4], r1[4], r0[5], r1[5]), and so on.
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        // u0 = (r0[0], r1[0], r2[0], r3[0] | r0[4], r1[4], r2[4], r3[4]), and so on.
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        // Column c of the block: low halves give columns 0–3, high halves columns 4–7.
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }
}
