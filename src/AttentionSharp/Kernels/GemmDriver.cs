using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AttentionSharp.Kernels;

public static unsafe partial class Gemm
{
    /// <summary>
    /// A register-blocked micro-kernel and the cache blocking that feeds it. <see cref="Run"/> computes one MR×NR tile:
    /// acc(i, j) = Σ_p a[p·MR + i] · b[p·NR + j] over p ∈ [0, kc), then c(i, j) = acc [+ bias(j)] [+ c(i, j)].
    /// </summary>
    interface IMicroKernel
    {
        /// <summary>Rows of the C tile held in registers.</summary>
        static abstract int MR { get; }
        /// <summary>Columns of the C tile held in registers.</summary>
        static abstract int NR { get; }
        /// <summary>Largest block of rows of op(A) packed at once: MC×KC floats stay in the L2 cache.</summary>
        static abstract int MC { get; }
        /// <summary>Largest depth of a packed panel: a KC×NR micro-panel of B stays in the L1 cache.</summary>
        static abstract int KC { get; }
        /// <summary>Largest block of columns of op(B) packed at once: KC×NC floats, shared by all threads.</summary>
        static abstract int NC { get; }
        static abstract void Run(int kc, float* a, float* b, float* c, nint ldc, bool loadC, float* bias);
    }

    /// <summary>
    /// The BLIS loop nest around a micro-kernel. For each NC-wide block of columns (jc) and each KC-deep slice of k (pc)
    /// the threads pack op(B)[pc.., jc..] together into one shared buffer, then take (MC-row block × column range)
    /// units from a shared counter; each packs its rows of op(A) into its own buffer and sweeps the micro-kernel over
    /// the unit, B micro-panel by micro-panel (jr), A micro-panel by micro-panel (ir).
    /// </summary>
    sealed class Driver<TKernel> where TKernel : struct, IMicroKernel
    {
        [ThreadStatic] static Driver<TKernel>? t_driver;
        [ThreadStatic] static AlignedBuffer? t_packA;

        readonly AlignedBuffer _packB = new();
        readonly SpinBarrier _barrier = new();
        readonly Action<int, int> _execute;
        Problem _p;
        int _mc, _nc, _kc;
        int _nextUnit;

        Driver() => _execute = Execute;

        public static void Run(in Problem p, int threads)
        {
            var driver = t_driver ??= new Driver<TKernel>();
            driver.Setup(in p);
            if (threads <= 1) driver.Execute(0, 1);
            else Parallel.Run(threads, driver._execute);
            driver._p = default;
        }

        void Setup(in Problem p)
        {
            _p = p;
            int mr = TKernel.MR, nr = TKernel.NR;
            // Equal blocks no larger than the limits, so no thread is left with a thin last block.
            int blocks = CeilDiv(p.K, TKernel.KC);
            _kc = CeilDiv(p.K, blocks);
            blocks = CeilDiv(p.M, TKernel.MC);
            _mc = RoundUp(CeilDiv(p.M, blocks), mr);
            blocks = CeilDiv(p.N, TKernel.NC);
            _nc = RoundUp(CeilDiv(p.N, blocks), nr);
            _packB.Ensure((long)_kc * _nc);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Execute(int thread, int threads)
        {
            ref readonly var p = ref _p;
            int mr = TKernel.MR, nr = TKernel.NR;
            var packA = t_packA ??= new AlignedBuffer();
            packA.Ensure((long)_mc * _kc);
            float* aPack = packA.Pointer, bPack = _packB.Pointer;
            int mBlocks = CeilDiv(p.M, _mc);
            bool first = true;

            for (int jc = 0; jc < p.N; jc += _nc)
            {
                int nc = Math.Min(_nc, p.N - jc), panels = CeilDiv(nc, nr);
                // Split columns too when there are few row blocks, so every thread has several units to take.
                int columnChunks = threads == 1 ? 1 : Math.Clamp(CeilDiv(4 * threads, mBlocks), 1, panels);
                int units = mBlocks * columnChunks;
                for (int pc = 0; pc < p.K; pc += _kc)
                {
                    int kc = Math.Min(_kc, p.K - pc);
                    // Everyone is done with the previous B panel (and has stopped taking units) before it is overwritten.
                    if (!first) _barrier.SignalAndWait(threads);
                    first = false;
                    if (thread == 0) _nextUnit = 0;
                    PackB(in p, pc, kc, jc, nc, panels * thread / threads, panels * (thread + 1) / threads, bPack);
                    _barrier.SignalAndWait(threads);

                    // The first slice of k writes C (adding the old C only when accumulating, and the bias); later slices add.
                    bool loadC = p.Accumulate || pc > 0;
                    float* bias = pc == 0 && p.Bias != null ? p.Bias + jc : null;
                    int packed = -1, unit;
                    while ((unit = Interlocked.Increment(ref _nextUnit) - 1) < units)
                    {
                        int block = unit / columnChunks, chunk = unit % columnChunks;
                        int ic = block * _mc, mc = Math.Min(_mc, p.M - ic);
                        if (block != packed) { PackA(in p, ic, mc, pc, kc, aPack); packed = block; }
                        MacroKernel(kc, mc, nc, aPack, bPack, panels * chunk / columnChunks,
                            panels * (chunk + 1) / columnChunks, p.C + (long)ic * p.Ldc + jc, p.Ldc, loadC, bias);
                    }
                }
            }
        }

        /// <summary>C block (mc×nc) += packed A block (mc×kc) · packed B panels [panel0, panel1).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void MacroKernel(int kc, int mc, int nc, float* aPack, float* bPack, int panel0, int panel1, float* c,
            int ldc, bool loadC, float* bias)
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            for (int jr = panel0; jr < panel1; jr++)
            {
                int j = jr * nr, ncur = Math.Min(nr, nc - j);
                float* b = bPack + (long)jr * kc * nr;
                float* biasJ = bias == null ? null : bias + j;
                for (int i = 0; i < mc; i += mr)
                {
                    float* a = aPack + (long)i * kc;
                    float* cTile = c + (long)i * ldc + j;
                    int mcur = Math.Min(mr, mc - i);
                    if (mcur == mr && ncur == nr) TKernel.Run(kc, a, b, cTile, ldc, loadC, biasJ);
                    else EdgeTile(kc, a, b, cTile, ldc, mcur, ncur, loadC, biasJ);
                }
            }
        }

        /// <summary>A partial tile: the micro-kernel writes a full tile to the stack, the valid part is copied out.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        static void EdgeTile(int kc, float* a, float* b, float* c, int ldc, int mcur, int ncur, bool loadC, float* bias)
        {
            int nr = TKernel.NR;
            float* tile = stackalloc float[TKernel.MR * nr];
            TKernel.Run(kc, a, b, tile, nr, false, null);
            for (int i = 0; i < mcur; i++)
            {
                float* src = tile + i * nr;
                float* dst = c + (long)i * ldc;
                for (int j = 0; j < ncur; j++)
                {
                    float v = src[j];
                    if (bias != null) v += bias[j];
                    if (loadC) v += dst[j];
                    dst[j] = v;
                }
            }
        }

        /// <summary>
        /// Packs op(A)[ic..ic+mc, pc..pc+kc] as micro-panels of MR rows: element (i, p) of panel r at
        /// <c>r·MR·kc + p·MR + i</c>; rows past mc are zero so the micro-kernel never reads outside the block.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void PackA(in Problem p, int ic, int mc, int pc, int kc, float* dst)
        {
            int mr = TKernel.MR;
            for (int i0 = 0; i0 < mc; i0 += mr, dst += (long)mr * kc)
            {
                int rows = Math.Min(mr, mc - i0);
                if (p.TransA == Transpose.No)
                {
                    // op(A)[i, p] = A[i·lda + p]: each stored row is contiguous in p, written with stride MR.
                    for (int i = 0; i < rows; i++)
                    {
                        float* src = p.A + (long)(ic + i0 + i) * p.Lda + pc;
                        for (int k = 0; k < kc; k++) dst[k * mr + i] = src[k];
                    }
                }
                else
                {
                    // op(A)[i, p] = A[p·lda + i]: MR consecutive rows of op(A) are contiguous in storage.
                    for (int k = 0; k < kc; k++)
                        Copy(p.A + (long)(pc + k) * p.Lda + ic + i0, dst + k * mr, rows);
                }
                if (rows < mr)
                    for (int k = 0; k < kc; k++) new Span<float>(dst + k * mr + rows, mr - rows).Clear();
            }
        }

        /// <summary>
        /// Packs op(B)[pc..pc+kc, jc..jc+nc] panels [panel0, panel1) as micro-panels of NR columns: element (p, j) of
        /// panel q at <c>q·NR·kc + p·NR + j</c>; columns past nc are zero.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void PackB(in Problem p, int pc, int kc, int jc, int nc, int panel0, int panel1, float* bPack)
        {
            int nr = TKernel.NR;
            for (int q = panel0; q < panel1; q++)
            {
                int j0 = q * nr, cols = Math.Min(nr, nc - j0);
                float* dst = bPack + (long)q * kc * nr;
                if (p.TransB == Transpose.No)
                {
                    // op(B)[p, j] = B[p·ldb + j]: NR consecutive columns are contiguous in storage.
                    for (int k = 0; k < kc; k++)
                        Copy(p.B + (long)(pc + k) * p.Ldb + jc + j0, dst + k * nr, cols);
                }
                else
                {
                    // op(B)[p, j] = B[j·ldb + p]: each stored row is one column of op(B), written with stride NR.
                    for (int j = 0; j < cols; j++)
                    {
                        float* src = p.B + (long)(jc + j0 + j) * p.Ldb + pc;
                        for (int k = 0; k < kc; k++) dst[k * nr + j] = src[k];
                    }
                }
                if (cols < nr)
                    for (int k = 0; k < kc; k++) new Span<float>(dst + k * nr + cols, nr - cols).Clear();
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Copy(float* src, float* dst, int count) =>
            Unsafe.CopyBlockUnaligned(dst, src, (uint)count * sizeof(float));
    }

    static int CeilDiv(int a, int b) => (a + b - 1) / b;

    static int RoundUp(int a, int multiple) => CeilDiv(a, multiple) * multiple;

    /// <summary>
    /// A pinned, 64-byte aligned scratch buffer that only grows. It lives on the pinned object heap, so a buffer owned
    /// by a thread that ends is reclaimed by the GC like any array.
    /// </summary>
    sealed class AlignedBuffer
    {
        const int Alignment = 64;
        float[] _array = [];

        public float* Pointer { get; private set; }

        public void Ensure(long floats)
        {
            if (_array.Length - Alignment / sizeof(float) >= floats) return;
            _array = GC.AllocateUninitializedArray<float>(checked((int)floats + Alignment / sizeof(float)), pinned: true);
            nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
            Pointer = (float*)((address + Alignment - 1) & ~(nint)(Alignment - 1));
        }
    }
}
