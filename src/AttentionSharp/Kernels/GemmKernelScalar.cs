using System.Runtime.CompilerServices;

namespace AttentionSharp.Kernels;

public static unsafe partial class Gemm
{
    /// <summary>
    /// The portable micro-kernel for CPUs without Vector256: a 4×4 tile of C in 16 scalar accumulators, so the loop
    /// still reads each packed value once per four multiply-adds.
    /// </summary>
    readonly struct KernelScalar : IMicroKernel
    {
        public static int MR => 4;
        public static int NR => 4;
        public static int MC => 128;
        public static int KC => 256;
        public static int NC => 1024;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(int kc, float* pa, nint aStep, float* pb, float* c, nint ldc, bool loadC, float* bias)
        {
            float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
            float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
            for (int p = 0; p < kc; p++, pa += aStep, pb += 4)
            {
                // acc(i, j) += a(i, p) · b(p, j)
                float b0 = pb[0], b1 = pb[1], b2 = pb[2], b3 = pb[3];
                float a = pa[0]; c00 += a * b0; c01 += a * b1; c02 += a * b2; c03 += a * b3;
                a = pa[1]; c10 += a * b0; c11 += a * b1; c12 += a * b2; c13 += a * b3;
                a = pa[2]; c20 += a * b0; c21 += a * b1; c22 += a * b2; c23 += a * b3;
                a = pa[3]; c30 += a * b0; c31 += a * b1; c32 += a * b2; c33 += a * b3;
            }
            Store(c, c00, c01, c02, c03, loadC, bias);
            Store(c + ldc, c10, c11, c12, c13, loadC, bias);
            Store(c + 2 * ldc, c20, c21, c22, c23, loadC, bias);
            Store(c + 3 * ldc, c30, c31, c32, c33, loadC, bias);
        }

        /// <summary>One row of the tile: c = acc + bias [+ c].</summary>
        static void Store(float* c, float acc0, float acc1, float acc2, float acc3, bool loadC, float* bias)
        {
            if (bias != null) { acc0 += bias[0]; acc1 += bias[1]; acc2 += bias[2]; acc3 += bias[3]; }
            if (loadC) { acc0 += c[0]; acc1 += c[1]; acc2 += c[2]; acc3 += c[3]; }
            c[0] = acc0; c[1] = acc1; c[2] = acc2; c[3] = acc3;
        }
    }
}
