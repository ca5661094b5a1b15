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
        public static void Run<TRows>(short* x, sbyte* w0, sbyte* w1, sbyte* w2, sbyte* w3, int kPadded, int* tile)
            where TRows : struct, IRowCount
        {
            Debug.Assert(TRows.Value == 1);
            int a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (nint p = 0; p < kPadded; p++)
            {
                // acc(c) += x[p] · w_c[p]
                int a = x[p];
                a0 += a * w0[p];
                a1 += a * w1[p];
                a2 += a * w2[p];
                a3 += a * w3[p];
            }
            tile[0] = a0; tile[1] = a1; tile[2] = a2; tile[3] = a3;
        }
    }
}
