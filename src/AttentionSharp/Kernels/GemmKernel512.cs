using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionSharp.Kernels;

public static unsafe partial class Gemm
{
    /// <summary>
    /// The AVX-512 micro-kernel: a 14×32 tile of C in 28 zmm accumulators, plus two for the row of B (32 registers).
    /// Per step of k it issues 28 FMAs against 2 loads and 14 broadcast loads (load-port work only), so the two FMA
    /// pipes stay the bottleneck; 28 independent chains cover the 4-cycle FMA latency 3.5 times over.
    /// </summary>
    readonly struct Kernel512 : IMicroKernel
    {
        public static int MR => 14;
        public static int NR => 32;
        public static int MC => 112;
        public static int KC => 1024;
        public static int NC => 3072;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(int kc, float* pa, nint aStep, float* pb, float* c, nint ldc, bool loadC, float* bias)
        {
            Vector512<float> c0a = default, c0b = default, c1a = default, c1b = default, c2a = default, c2b = default,
                c3a = default, c3b = default, c4a = default, c4b = default, c5a = default, c5b = default,
                c6a = default, c6b = default, c7a = default, c7b = default, c8a = default, c8b = default,
                c9a = default, c9b = default, c10a = default, c10b = default, c11a = default, c11b = default,
                c12a = default, c12b = default, c13a = default, c13b = default;
            // The tile of C is read and written only after the loop: start fetching it now so the miss overlaps the FMAs.
            if (Sse.IsSupported)
                for (int i = 0; i < 14; i++)
                {
                    Sse.Prefetch0(c + i * ldc);
                    Sse.Prefetch0(c + i * ldc + 16);
                }
            for (int p = 0; p < kc; p++, pa += aStep, pb += 32)
            {
                // acc(i, :) += a(i, p) · b(p, :) for the 14 rows; a(i, p) is broadcast to every lane.
                var b0 = Vector512.Load(pb);
                var b1 = Vector512.Load(pb + 16);
                Vector512<float> a;
                a = Vector512.Create(pa[0]); c0a = Vector512.FusedMultiplyAdd(a, b0, c0a); c0b = Vector512.FusedMultiplyAdd(a, b1, c0b);
                a = Vector512.Create(pa[1]); c1a = Vector512.FusedMultiplyAdd(a, b0, c1a); c1b = Vector512.FusedMultiplyAdd(a, b1, c1b);
                a = Vector512.Create(pa[2]); c2a = Vector512.FusedMultiplyAdd(a, b0, c2a); c2b = Vector512.FusedMultiplyAdd(a, b1, c2b);
                a = Vector512.Create(pa[3]); c3a = Vector512.FusedMultiplyAdd(a, b0, c3a); c3b = Vector512.FusedMultiplyAdd(a, b1, c3b);
                a = Vector512.Create(pa[4]); c4a = Vector512.FusedMultiplyAdd(a, b0, c4a); c4b = Vector512.FusedMultiplyAdd(a, b1, c4b);
                a = Vector512.Create(pa[5]); c5a = Vector512.FusedMultiplyAdd(a, b0, c5a); c5b = Vector512.FusedMultiplyAdd(a, b1, c5b);
                a = Vector512.Create(pa[6]); c6a = Vector512.FusedMultiplyAdd(a, b0, c6a); c6b = Vector512.FusedMultiplyAdd(a, b1, c6b);
                a = Vector512.Create(pa[7]); c7a = Vector512.FusedMultiplyAdd(a, b0, c7a); c7b = Vector512.FusedMultiplyAdd(a, b1, c7b);
                a = Vector512.Create(pa[8]); c8a = Vector512.FusedMultiplyAdd(a, b0, c8a); c8b = Vector512.FusedMultiplyAdd(a, b1, c8b);
                a = Vector512.Create(pa[9]); c9a = Vector512.FusedMultiplyAdd(a, b0, c9a); c9b = Vector512.FusedMultiplyAdd(a, b1, c9b);
                a = Vector512.Create(pa[10]); c10a = Vector512.FusedMultiplyAdd(a, b0, c10a); c10b = Vector512.FusedMultiplyAdd(a, b1, c10b);
                a = Vector512.Create(pa[11]); c11a = Vector512.FusedMultiplyAdd(a, b0, c11a); c11b = Vector512.FusedMultiplyAdd(a, b1, c11b);
                a = Vector512.Create(pa[12]); c12a = Vector512.FusedMultiplyAdd(a, b0, c12a); c12b = Vector512.FusedMultiplyAdd(a, b1, c12b);
                a = Vector512.Create(pa[13]); c13a = Vector512.FusedMultiplyAdd(a, b0, c13a); c13b = Vector512.FusedMultiplyAdd(a, b1, c13b);
            }
            var bias0 = bias == null ? Vector512<float>.Zero : Vector512.Load(bias);
            var bias1 = bias == null ? Vector512<float>.Zero : Vector512.Load(bias + 16);
            Store(c, c0a, c0b, loadC, bias0, bias1);
            Store(c + ldc, c1a, c1b, loadC, bias0, bias1);
            Store(c + 2 * ldc, c2a, c2b, loadC, bias0, bias1);
            Store(c + 3 * ldc, c3a, c3b, loadC, bias0, bias1);
            Store(c + 4 * ldc, c4a, c4b, loadC, bias0, bias1);
            Store(c + 5 * ldc, c5a, c5b, loadC, bias0, bias1);
            Store(c + 6 * ldc, c6a, c6b, loadC, bias0, bias1);
            Store(c + 7 * ldc, c7a, c7b, loadC, bias0, bias1);
            Store(c + 8 * ldc, c8a, c8b, loadC, bias0, bias1);
            Store(c + 9 * ldc, c9a, c9b, loadC, bias0, bias1);
            Store(c + 10 * ldc, c10a, c10b, loadC, bias0, bias1);
            Store(c + 11 * ldc, c11a, c11b, loadC, bias0, bias1);
            Store(c + 12 * ldc, c12a, c12b, loadC, bias0, bias1);
            Store(c + 13 * ldc, c13a, c13b, loadC, bias0, bias1);
        }

        /// <summary>One row of the tile: c = acc + bias [+ c].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Store(float* c, Vector512<float> acc0, Vector512<float> acc1, bool loadC, Vector512<float> bias0, Vector512<float> bias1)
        {
            acc0 += bias0;
            acc1 += bias1;
            if (loadC)
            {
                acc0 += Vector512.Load(c);
                acc1 += Vector512.Load(c + 16);
            }
            acc0.Store(c);
            acc1.Store(c + 16);
        }
    }
}
