using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionSharp.Kernels;

public static unsafe partial class Gemm
{
    /// <summary>
    /// The AVX2 micro-kernel: a 6×16 tile of C in 12 ymm accumulators, two for the row of B and one for the broadcast
    /// (15 of the 16 registers), the classic Haswell shape: 12 FMAs per 2 loads and 6 broadcasts.
    /// </summary>
    readonly struct Kernel256 : IMicroKernel
    {
        public static int MR => 6;
        public static int NR => 16;
        public static int MC => 192;
        public static int KC => 512;
        public static int NC => 3072;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(int kc, float* pa, nint aStep, float* pb, float* c, nint ldc, bool loadC, float* bias)
        {
            Vector256<float> c0a = default, c0b = default, c1a = default, c1b = default, c2a = default, c2b = default, c3a = default, c3b = default,
                c4a = default, c4b = default, c5a = default, c5b = default;
            // The tile of C is read and written only after the loop: start fetching it now so the miss overlaps the FMAs
            // (a row of 16 floats spans two cache lines unless C happens to be 64-byte aligned there).
            if (Sse.IsSupported)
                for (int i = 0; i < 6; i++)
                {
                    Sse.Prefetch0(c + i * ldc);
                    Sse.Prefetch0(c + i * ldc + 15);
                }
            for (int p = 0; p < kc; p++, pa += aStep, pb += 16)
            {
                // acc(i, :) += a(i, p) · b(p, :) for the 6 rows; a(i, p) is broadcast to every lane.
                var b0 = Vector256.Load(pb);
                var b1 = Vector256.Load(pb + 8);
                Vector256<float> a;
                a = Vector256.Create(pa[0]); c0a = Vector256.FusedMultiplyAdd(a, b0, c0a); c0b = Vector256.FusedMultiplyAdd(a, b1, c0b);
                a = Vector256.Create(pa[1]); c1a = Vector256.FusedMultiplyAdd(a, b0, c1a); c1b = Vector256.FusedMultiplyAdd(a, b1, c1b);
                a = Vector256.Create(pa[2]); c2a = Vector256.FusedMultiplyAdd(a, b0, c2a); c2b = Vector256.FusedMultiplyAdd(a, b1, c2b);
                a = Vector256.Create(pa[3]); c3a = Vector256.FusedMultiplyAdd(a, b0, c3a); c3b = Vector256.FusedMultiplyAdd(a, b1, c3b);
                a = Vector256.Create(pa[4]); c4a = Vector256.FusedMultiplyAdd(a, b0, c4a); c4b = Vector256.FusedMultiplyAdd(a, b1, c4b);
                a = Vector256.Create(pa[5]); c5a = Vector256.FusedMultiplyAdd(a, b0, c5a); c5b = Vector256.FusedMultiplyAdd(a, b1, c5b);
            }
            var bias0 = bias == null ? Vector256<float>.Zero : Vector256.Load(bias);
            var bias1 = bias == null ? Vector256<float>.Zero : Vector256.Load(bias + 8);
            Store(c, c0a, c0b, loadC, bias0, bias1);
            Store(c + ldc, c1a, c1b, loadC, bias0, bias1);
            Store(c + 2 * ldc, c2a, c2b, loadC, bias0, bias1);
            Store(c + 3 * ldc, c3a, c3b, loadC, bias0, bias1);
            Store(c + 4 * ldc, c4a, c4b, loadC, bias0, bias1);
            Store(c + 5 * ldc, c5a, c5b, loadC, bias0, bias1);
        }

        /// <summary>One row of the tile: c = acc + bias [+ c].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Store(float* c, Vector256<float> acc0, Vector256<float> acc1, bool loadC, Vector256<float> bias0, Vector256<float> bias1)
        {
            acc0 += bias0;
            acc1 += bias1;
            if (loadC)
            {
                acc0 += Vector256.Load(c);
                acc1 += Vector256.Load(c + 8);
            }
            acc0.Store(c);
            acc1.Store(c + 8);
        }
    }
}
