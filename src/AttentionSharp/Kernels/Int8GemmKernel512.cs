using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionSharp.Kernels;

public static unsafe partial class Int8Gemm
{
    /// <summary>
    /// The AVX-512BW kernel: up to 4 rows × 4 columns in 16 zmm accumulators of int32 lanes. Per 32 values of k it
    /// sign-extends 32 weights of each column to 16 bits (vpmovsxbw), multiplies them with the row's activations and
    /// adds adjacent pairs (vpmaddwd), so each weight load serves every row. 16 accumulators, 4 weight registers and
    /// one of activations fit the 32 zmm registers.
    /// </summary>
    /// <remarks>
    /// AVX512-VNNI would fuse the multiply-add and the accumulation into one vpdpwssd, but .NET 10 exposes it only as the
    /// 256-bit <see cref="AvxVnni"/> (VEX encoded, absent on CPUs such as AMD Zen 4 that have AVX512-VNNI), and the
    /// AvxVnniInt16.V512 forms multiply signed by unsigned words; so this kernel issues vpmaddwd and vpaddd.
    /// </remarks>
    readonly struct Kernel512 : IKernel
    {
        public static int MR => 4;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run<TRows>(short* x, sbyte* panel, int kPadded, int* tile) where TRows : struct, IRowCount
        {
            Debug.Assert(TRows.Value <= MR && kPadded % PanelPiece == 0);
            Vector512<int> a00 = default, a01 = default, a02 = default, a03 = default,
                a10 = default, a11 = default, a12 = default, a13 = default,
                a20 = default, a21 = default, a22 = default, a23 = default,
                a30 = default, a31 = default, a32 = default, a33 = default;
            short* x0 = x, x1 = x + kPadded, x2 = x1 + kPadded, x3 = x2 + kPadded;
            for (nint p = 0; p < kPadded; p += PanelPiece)
            {
                // acc(r, c) += Σ pairs x_r[p …] · w_c[p …], the weights widened from 32 bytes to 32 shorts; the four
                // columns' pieces lie one after another (PackWeights), so the loads run forward through the panel.
                sbyte* w = panel + PanelRows * p;
                var b0 = Avx512BW.ConvertToVector512Int16(Vector256.Load(w));
                var b1 = Avx512BW.ConvertToVector512Int16(Vector256.Load(w + PanelPiece));
                var b2 = Avx512BW.ConvertToVector512Int16(Vector256.Load(w + 2 * PanelPiece));
                var b3 = Avx512BW.ConvertToVector512Int16(Vector256.Load(w + 3 * PanelPiece));
                var a = Vector512.Load(x0 + p);
                a00 += Avx512BW.MultiplyAddAdjacent(a, b0); a01 += Avx512BW.MultiplyAddAdjacent(a, b1);
                a02 += Avx512BW.MultiplyAddAdjacent(a, b2); a03 += Avx512BW.MultiplyAddAdjacent(a, b3);
                if (TRows.Value > 1)
                {
                    a = Vector512.Load(x1 + p);
                    a10 += Avx512BW.MultiplyAddAdjacent(a, b0); a11 += Avx512BW.MultiplyAddAdjacent(a, b1);
                    a12 += Avx512BW.MultiplyAddAdjacent(a, b2); a13 += Avx512BW.MultiplyAddAdjacent(a, b3);
                }
                if (TRows.Value > 2)
                {
                    a = Vector512.Load(x2 + p);
                    a20 += Avx512BW.MultiplyAddAdjacent(a, b0); a21 += Avx512BW.MultiplyAddAdjacent(a, b1);
                    a22 += Avx512BW.MultiplyAddAdjacent(a, b2); a23 += Avx512BW.MultiplyAddAdjacent(a, b3);
                }
                if (TRows.Value > 3)
                {
                    a = Vector512.Load(x3 + p);
                    a30 += Avx512BW.MultiplyAddAdjacent(a, b0); a31 += Avx512BW.MultiplyAddAdjacent(a, b1);
                    a32 += Avx512BW.MultiplyAddAdjacent(a, b2); a33 += Avx512BW.MultiplyAddAdjacent(a, b3);
                }
            }
            Kernel256.SumColumns(Fold(a00), Fold(a01), Fold(a02), Fold(a03)).Store(tile);
            if (TRows.Value > 1) Kernel256.SumColumns(Fold(a10), Fold(a11), Fold(a12), Fold(a13)).Store(tile + NR);
            if (TRows.Value > 2) Kernel256.SumColumns(Fold(a20), Fold(a21), Fold(a22), Fold(a23)).Store(tile + 2 * NR);
            if (TRows.Value > 3) Kernel256.SumColumns(Fold(a30), Fold(a31), Fold(a32), Fold(a33)).Store(tile + 3 * NR);
        }

        /// <summary>
        /// One row against two panels, their weights read as two streams side by side; each panel's sums are those of
        /// <see cref="Run{TRows}"/> for one row.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void RunTwo(short* x, sbyte* panelA, sbyte* panelB, int kPadded, int* tileA, int* tileB)
        {
            Debug.Assert(kPadded % PanelPiece == 0);
            Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default,
                b0 = default, b1 = default, b2 = default, b3 = default;
            sbyte* wa = panelA, wb = panelB;
            for (nint p = 0; p < kPadded; p += PanelPiece, wa += PanelRows * PanelPiece, wb += PanelRows * PanelPiece)
            {
                var v = Vector512.Load(x + p);
                a0 += Avx512BW.MultiplyAddAdjacent(v, Widen(wa, 0)); a1 += Avx512BW.MultiplyAddAdjacent(v, Widen(wa, 1));
                a2 += Avx512BW.MultiplyAddAdjacent(v, Widen(wa, 2)); a3 += Avx512BW.MultiplyAddAdjacent(v, Widen(wa, 3));
                b0 += Avx512BW.MultiplyAddAdjacent(v, Widen(wb, 0)); b1 += Avx512BW.MultiplyAddAdjacent(v, Widen(wb, 1));
                b2 += Avx512BW.MultiplyAddAdjacent(v, Widen(wb, 2)); b3 += Avx512BW.MultiplyAddAdjacent(v, Widen(wb, 3));
            }
            Kernel256.SumColumns(Fold(a0), Fold(a1), Fold(a2), Fold(a3)).Store(tileA);
            Kernel256.SumColumns(Fold(b0), Fold(b1), Fold(b2), Fold(b3)).Store(tileB);
        }

        /// <summary>Column c's 32 weights of a piece (<see cref="PackWeights"/>), sign-extended to shorts.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<short> Widen(sbyte* w, int c) => Avx512BW.ConvertToVector512Int16(Vector256.Load(w + c * PanelPiece));

        /// <summary>The two 256-bit halves added: eight partial sums.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<int> Fold(Vector512<int> a) => a.GetLower() + a.GetUpper();
    }
}
