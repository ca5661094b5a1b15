using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionSharp.Kernels;

public static unsafe partial class Int8Gemm
{
    /// <summary>
    /// The AVX2 kernel: up to 2 rows × 4 columns in 8 ymm accumulators, 4 registers of widened weights and one of
    /// activations (13 of the 16). Per 16 values of k: vpmovsxbw per column, then vpmaddwd + vpaddd per row and column,
    /// or one vpdpwssd where the CPU has AVX-VNNI. Both are exact: no pair of products comes near the 16-bit
    /// saturation of vpmaddwd (2 · 127 · 127 &lt; 2¹⁵), and no sum near the int32 limit (see <see cref="MaxPaddedLength"/>).
    /// </summary>
    readonly struct Kernel256 : IKernel
    {
        public static int MR => 2;

        /// <summary>
        /// How far ahead of the loads the panel is prefetched, in bytes. One sequence's decoding streams every weight
        /// from memory once, and with the hardware prefetcher alone this kernel stayed well below the machine's
        /// streaming-read bandwidth on an AMD EPYC (Zen 3); distances from 512 bytes to 16 KiB were tried and the gain
        /// flattened past 8 KiB. `attn bench decode --int8` before and after: docs/quantization.md.
        /// </summary>
        const int PrefetchAhead = 8192;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run<TRows>(short* x, sbyte* panel, int kPadded, int* tile) where TRows : struct, IRowCount
        {
            Debug.Assert(TRows.Value <= MR && kPadded % PanelPiece == 0);
            Vector256<int> a00 = default, a01 = default, a02 = default, a03 = default,
                a10 = default, a11 = default, a12 = default, a13 = default;
            short* x0 = x, x1 = x + kPadded;
            sbyte* w = panel;
            for (nint p = 0; p < kPadded; p += PanelPiece, w += PanelRows * PanelPiece)
            {
                // acc(r, c) += Σ pairs x_r[p …] · w_c[p …] over one piece of 32 values of k: the four columns' 32-byte
                // pieces lie one after another (PackWeights), each widened 16 bytes at a time to 16 shorts. Two halves
                // per pass keep the address arithmetic to one pointer step per 128 bytes of weights.
                Sse.Prefetch0(w + PrefetchAhead); // two cache lines of the 128 bytes this pass reads
                Sse.Prefetch0(w + PrefetchAhead + 64);
                Step<TRows>(x0 + p, x1 + p, w, ref a00, ref a01, ref a02, ref a03, ref a10, ref a11, ref a12, ref a13);
                Step<TRows>(x0 + p + 16, x1 + p + 16, w + 16, ref a00, ref a01, ref a02, ref a03,
                    ref a10, ref a11, ref a12, ref a13);
            }
            SumColumns(a00, a01, a02, a03).Store(tile);
            if (TRows.Value > 1) SumColumns(a10, a11, a12, a13).Store(tile + NR);
        }

        /// <summary>
        /// One row against panels A and B in one pass, 128 bytes of each per step of 32 values of k: four accumulators a
        /// panel, each summed as <see cref="Run{TRows}"/> sums it (integer sums, so exactly the same).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void RunTwo(short* x, sbyte* panelA, sbyte* panelB, int kPadded, int* tileA, int* tileB)
        {
            Debug.Assert(kPadded % PanelPiece == 0);
            Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default,
                b0 = default, b1 = default, b2 = default, b3 = default;
            sbyte* wa = panelA, wb = panelB;
            for (nint p = 0; p < kPadded; p += PanelPiece, wa += PanelRows * PanelPiece, wb += PanelRows * PanelPiece)
            {
                Sse.Prefetch0(wa + PrefetchAhead);
                Sse.Prefetch0(wa + PrefetchAhead + 64);
                Sse.Prefetch0(wb + PrefetchAhead);
                Sse.Prefetch0(wb + PrefetchAhead + 64);
                var v = Vector256.Load(x + p);
                Columns(v, Widen(wa, 0), Widen(wa, 1), Widen(wa, 2), Widen(wa, 3), ref a0, ref a1, ref a2, ref a3);
                Columns(v, Widen(wb, 0), Widen(wb, 1), Widen(wb, 2), Widen(wb, 3), ref b0, ref b1, ref b2, ref b3);
                v = Vector256.Load(x + p + 16);
                Columns(v, Widen(wa + 16, 0), Widen(wa + 16, 1), Widen(wa + 16, 2), Widen(wa + 16, 3),
                    ref a0, ref a1, ref a2, ref a3);
                Columns(v, Widen(wb + 16, 0), Widen(wb + 16, 1), Widen(wb + 16, 2), Widen(wb + 16, 3),
                    ref b0, ref b1, ref b2, ref b3);
            }
            SumColumns(a0, a1, a2, a3).Store(tileA);
            SumColumns(b0, b1, b2, b3).Store(tileB);
        }

        /// <summary>16 values of k: the columns' 16 bytes at w, w + 32, w + 64 and w + 96 against x0 (and x1).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Step<TRows>(short* x0, short* x1, sbyte* w, ref Vector256<int> a00, ref Vector256<int> a01,
            ref Vector256<int> a02, ref Vector256<int> a03, ref Vector256<int> a10, ref Vector256<int> a11,
            ref Vector256<int> a12, ref Vector256<int> a13) where TRows : struct, IRowCount
        {
            var b0 = Widen(w, 0);
            var b1 = Widen(w, 1);
            var b2 = Widen(w, 2);
            var b3 = Widen(w, 3);
            Columns(Vector256.Load(x0), b0, b1, b2, b3, ref a00, ref a01, ref a02, ref a03);
            if (TRows.Value > 1) Columns(Vector256.Load(x1), b0, b1, b2, b3, ref a10, ref a11, ref a12, ref a13);
        }

        /// <summary>Column c's 16 weights of a piece (<see cref="PackWeights"/>), sign-extended to shorts.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<short> Widen(sbyte* w, int c) => Avx2.ConvertToVector256Int16(w + c * PanelPiece);

        /// <summary>acc_c += pairs of a · b_c for the four columns of one row.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Columns(Vector256<short> a, Vector256<short> b0, Vector256<short> b1, Vector256<short> b2,
            Vector256<short> b3, ref Vector256<int> acc0, ref Vector256<int> acc1, ref Vector256<int> acc2,
            ref Vector256<int> acc3)
        {
            acc0 = MultiplyAdd(acc0, a, b0); acc1 = MultiplyAdd(acc1, a, b1);
            acc2 = MultiplyAdd(acc2, a, b2); acc3 = MultiplyAdd(acc3, a, b3);
        }

        /// <summary>
        /// acc + (a₀b₀ + a₁b₁, a₂b₂ + a₃b₃, …): pairs of 16-bit products added into int32 lanes.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<int> MultiplyAdd(Vector256<int> acc, Vector256<short> a, Vector256<short> b) =>
            AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(acc, a, b) : acc + Avx2.MultiplyAddAdjacent(a, b);

        /// <summary>
        /// (Σ a, Σ b, Σ c, Σ d) of four vectors of eight partial sums, by three rounds of pairwise adds (vphaddd) and
        /// one of the halves. Integer sums are exact, so the order does not matter.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static Vector128<int> SumColumns(Vector256<int> a, Vector256<int> b, Vector256<int> c, Vector256<int> d)
        {
            var ab = Avx2.HorizontalAdd(a, b);
            var cd = Avx2.HorizontalAdd(c, d);
            var s = Avx2.HorizontalAdd(ab, cd); // per 128-bit half: partial (Σ a, Σ b, Σ c, Σ d)
            return s.GetLower() + s.GetUpper();
        }
    }
}
