using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace AttentionSharp.Kernels;

public static unsafe partial class Int8Gemm
{
    /// <summary>
    /// The portable kernel for CPUs without AVX2: one row × 4 columns in four int accumulators, so each activation
    /// read serves four multiply-adds.
    /// </summary>
    readonly struct KernelScalar : IKernel
    {
        public static int MR => 1;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run<TRows>(short* x, sbyte* panel, int kPadded, int* tile) where TRows : struct, IRowCount
        {
            Debug.Assert(TRows.Value == 1);
            int a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (nint s = 0; s < kPadded; s += PanelPiece)
            {
                // The four columns' pieces of k ∈ [s, s + 32) lie one after another in the panel (PackWeights).
                sbyte* w = panel + PanelRows * s;
                for (nint t = 0; t < PanelPiece; t++)
                {
                    // acc(c) += x[p] · w_c[p]
                    int a = x[s + t];
                    a0 += a * w[t];
                    a1 += a * w[PanelPiece + t];
                    a2 += a * w[2 * PanelPiece + t];
                    a3 += a * w[3 * PanelPiece + t];
                }
            }
            tile[0] = a0; tile[1] = a1; tile[2] = a2; tile[3] = a3;
        }

        /// <summary>The two panels one after the other: with no vectors, one stream or two read alike.</summary>
        public static void RunTwo(short* x, sbyte* panelA, sbyte* panelB, int kPadded, int* tileA, int* tileB)
        {
            Run<Rows1>(x, panelA, kPadded, tileA);
            Run<Rows1>(x, panelB, kPadded, tileB);
        }
    }
}
