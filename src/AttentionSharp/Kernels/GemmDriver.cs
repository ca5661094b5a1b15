using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AttentionSharp.Kernels;

public static unsafe partial class Gemm
{
    /// <summary>
    /// A register-blocked micro-kernel and the cache blocking that feeds it. <see cref="Run"/> computes one MR×NR tile:
    /// acc(i, j) = Σ_p a[p·aStep + i] · b[p·NR + j] over p ∈ [0, kc), then c(i, j) = acc [+ bias(j)] [+ c(i, j)]. A packed
    /// panel of A has aStep = MR; a transposed A is read where it is stored, its rows aStep = lda apart.
    /// </summary>
    interface IMicroKernel
    {
        /// <summary>Rows of the C tile held in registers.</summary>
        static abstract int MR { get; }
        /// <summary>Columns of the C tile held in registers.</summary>
        static abstract int NR { get; }
        /// <summary>Largest block of rows of op(A) packed at once (MC×KC floats, meant to stay in L2).</summary>
        static abstract int MC { get; }
        /// <summary>Largest depth of a packed panel, so the number of passes over C is ⌈k / KC⌉.</summary>
        static abstract int KC { get; }
        /// <summary>Largest block of columns of op(B) packed at once: KC×NC floats, shared by all threads.</summary>
        static abstract int NC { get; }
        static abstract void Run(int kc, float* a, nint aStep, float* b, float* c, nint ldc, bool loadC, float* bias);
    }

    /// <summary>
    /// The BLIS loop nest around a micro-kernel: for each NC-wide block of columns (jc) and KC-deep slice of k (pc),
    /// pack op(B) into panels, then for each MC-row block (ic) pack op(A) and sweep the micro-kernel over the block,
    /// B micro-panel by micro-panel (jr), A micro-panel by micro-panel (ir).
    /// </summary>
    /// <remarks>
    /// Threads split the work in one of two ways, both taking units from a shared counter so a thread slowed by other
    /// processes simply takes fewer, and one that has not started by the time the work is gone is not waited for:
    /// <list type="bullet">
    /// <item>Row blocks (tall C, the common case): the threads pack each B panel together into one shared buffer, then
    /// take blocks of up to MC rows (smaller near the end of each slice), each packing its own A block. B is packed
    /// once in all.</item>
    /// <item>Column blocks (C with too few rows to give every thread several blocks, such as a weight gradient with
    /// few output features): the threads first pack all of op(A) together into one shared buffer (it has few rows),
    /// then each takes a range of columns and runs the loop nest on it, packing its own B. Where op(A) is too large to
    /// pack whole, each unit packs A again, which costs 1/(unit width) of its multiply-adds.</item>
    /// </list>
    /// KC is large because each slice of k is a pass over C in memory; with KC ≈ 1024 that traffic is a few percent
    /// of the time, while the packed panels, read once per micro-tile, are still fast enough to come from L2.
    /// </remarks>
    sealed class Driver<TKernel> where TKernel : struct, IMicroKernel
    {
        [ThreadStatic] static Driver<TKernel>? t_driver;
        [ThreadStatic] static AlignedBuffer? t_packA, t_packB;

        /// <summary>Row blocks read a transposed A unpacked where C has at most this many micro-panels of columns.</summary>
        const int DirectAMaxPanels = 8;

        /// <summary>Largest op(A), in floats, that column blocks pack once for all units (16 MiB).</summary>
        const long SharedAMaxFloats = 4L << 20;

        readonly AlignedBuffer _sharedB = new(), _sharedA = new();
        readonly Action<int, int> _packPanels, _rowBlocks, _columnBlocks, _packSharedA;
        Problem _p;
        int _mc, _nc, _kc, _threads;
        bool _byColumns, _aShared, _aDirect;
        int _nextUnit;
        // The slice of B being worked on by row blocks: columns jc … jc + nc − 1, depth pc … pc + kc − 1.
        int _jc, _ncur, _pc, _kcur;

        Driver()
        {
            _packPanels = PackPanels;
            _rowBlocks = RowBlocks;
            _columnBlocks = ColumnBlocks;
            _packSharedA = PackSharedA;
        }

        public static void Run(in Problem p, int threads)
        {
            var driver = t_driver ??= new Driver<TKernel>();
            driver.Setup(in p, threads);
            if (driver._byColumns)
            {
                if (driver._aShared) Parallel.For(driver.SharedABlocks, 1, driver._packSharedA);
                Parallel.For(threads, 1, driver._columnBlocks);
            }
            else driver.ExecuteByRows();
            driver._p = default;
        }

        void Setup(in Problem p, int threads)
        {
            _p = p;
            _threads = threads;
            int mr = TKernel.MR, nr = TKernel.NR;
            // Equal blocks no larger than the limits, so no thread is left with a thin last block.
            _kc = CeilDiv(p.K, CeilDiv(p.K, TKernel.KC));
            _mc = RoundUp(CeilDiv(p.M, CeilDiv(p.M, TKernel.MC)), mr);
            // Row blocks need at least four blocks of at least four micro-tiles per thread to balance well.
            _byColumns = threads > 1 && p.M < threads * 4 * 4 * mr && p.N >= threads * 4 * nr;
            _aDirect = !_byColumns && ReadsADirectly(in p);
            if (_byColumns)
            {
                // Units: at least four per thread, no wider than NC, a multiple of the thread count.
                int units = RoundUp(Math.Max(CeilDiv(p.N, TKernel.NC), 4 * threads), threads);
                _nc = RoundUp(CeilDiv(p.N, units), nr);
                _aShared = (long)SharedABlocks * _mc * _kc <= SharedAMaxFloats;
                if (_aShared) _sharedA.Ensure((long)SharedABlocks * _mc * _kc);
            }
            else
            {
                if (threads > 1) _mc = Math.Min(_mc, RoundUp(CeilDiv(p.M, 4 * threads), mr));
                _nc = RoundUp(CeilDiv(p.N, CeilDiv(p.N, TKernel.NC)), nr);
                _sharedB.Ensure((long)_kc * _nc);
            }
            _nextUnit = 0;
        }

        /// <summary>
        /// Row blocks, slice by slice of B: the panels of the slice are packed (split over threads), then the threads
        /// take row blocks from the shared counter. Both steps are chunked jobs (<see cref="Parallel.For"/>), so a
        /// thread that other processes keep off the cores is not waited for: the others take its share.
        /// </summary>
        void ExecuteByRows()
        {
            ref readonly var p = ref _p;
            for (int jc = 0; jc < p.N; jc += _nc)
                for (int pc = 0; pc < p.K; pc += _kc)
                {
                    _jc = jc; _ncur = Math.Min(_nc, p.N - jc); _pc = pc; _kcur = Math.Min(_kc, p.K - pc);
                    _nextUnit = 0;
                    int panels = CeilDiv(_ncur, TKernel.NR);
                    if (_threads > 1) Parallel.For(panels, Math.Max(1, panels / (2 * _threads)), _packPanels);
                    else PackPanels(0, panels);
                    if (_threads > 1) Parallel.For(_threads, 1, _rowBlocks);
                    else RowBlocks(0, 1);
                }
        }

        /// <summary>
        /// Whether row blocks read a transposed A where it is stored instead of packing it: op(A)'s rows are then
        /// contiguous, each step of k a stride of lda, which is the packed panel's layout with rows further apart. Worth it
        /// where C has few columns, so each packed panel would serve few micro-tiles (a weight gradient dYᵀ·X with few
        /// input features): packing op(A) took a fifth to a third of such a product's time.
        /// A stride that is a multiple of 1 KiB is not: its rows would fall into a few of the caches' sets (with lda = 512
        /// or 2,048, read this way, the product ran no faster than packed).
        /// </summary>
        static bool ReadsADirectly(in Problem p) =>
            p.TransA == Transpose.Yes && CeilDiv(p.N, TKernel.NR) <= DirectAMaxPanels && p.Lda % 256 != 0;

        /// <summary>op(A) packed whole for column blocks: one MC×KC block per (slice of k, block of rows).</summary>
        int SharedABlocks => CeilDiv(_p.K, _kc) * CeilDiv(_p.M, _mc);

        /// <summary>Packs shared A blocks [block0, block1): block = slice · (row blocks) + row block.</summary>
        void PackSharedA(int block0, int block1)
        {
            int rowBlocks = CeilDiv(_p.M, _mc);
            for (int block = block0; block < block1; block++)
            {
                int pc = block / rowBlocks * _kc, ic = block % rowBlocks * _mc;
                PackA(in _p, ic, Math.Min(_mc, _p.M - ic), pc, Math.Min(_kc, _p.K - pc), TKernel.MR, SharedA(pc, ic));
            }
        }

        float* SharedA(int pc, int ic) => _sharedA.Pointer + ((long)(pc / _kc) * CeilDiv(_p.M, _mc) + ic / _mc) * _mc * _kc;

        void PackPanels(int panel0, int panel1) =>
            PackB(in _p, _pc, _kcur, _jc, _ncur, panel0, panel1, TKernel.NR, _sharedB.Pointer);

        /// <summary>One participant's share of the current slice: row blocks claimed until none are left.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void RowBlocks(int _, int __)
        {
            ref readonly var p = ref _p;
            var packA = t_packA ??= new AlignedBuffer();
            packA.Ensure((long)_mc * _kc);
            float* aPack = packA.Pointer, bPack = _sharedB.Pointer;
            int tileRows = CeilDiv(p.M, TKernel.MR);
            int start, count;
            while ((count = ClaimTileRows(tileRows, _threads, out start)) > 0)
            {
                int ic = start * TKernel.MR, mc = Math.Min(count * TKernel.MR, p.M - ic);
                if (_aDirect)
                {
                    // Full panels are read in place; a ragged last one is packed, so nothing past A is read.
                    int full = mc / TKernel.MR * TKernel.MR;
                    if (full < mc) PackA(in p, ic + full, mc - full, _pc, _kcur, TKernel.MR, aPack);
                    var inPlace = new ABlock(p.A + (long)_pc * p.Lda + ic, TKernel.MR, p.Lda, aPack);
                    MacroKernel(in p, _kcur, mc, _ncur, in inPlace, bPack, ic, _jc, _pc);
                }
                else
                {
                    PackA(in p, ic, mc, _pc, _kcur, TKernel.MR, aPack);
                    MacroKernel(in p, _kcur, mc, _ncur, ABlock.Packed(aPack, _kcur), bPack, ic, _jc, _pc);
                }
            }
        }

        /// <summary>
        /// Takes the next rows of micro-tiles (guided scheduling): MC rows while much is left, then a share of what
        /// remains, so that the threads reach the barrier together. Returns how many were taken, 0 when none are left.
        /// </summary>
        int ClaimTileRows(int tileRows, int threads, out int start)
        {
            int most = _mc / TKernel.MR, least = Math.Max(1, most / 4);
            while (true)
            {
                start = Volatile.Read(ref _nextUnit);
                int left = tileRows - start;
                if (left <= 0) return 0;
                int count = Math.Min(left, Math.Clamp(left / (2 * threads), least, most));
                if (Interlocked.CompareExchange(ref _nextUnit, start + count, start) == start) return count;
            }
        }

        /// <summary>One participant's share of a column-split product: column units claimed until none are left.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void ColumnBlocks(int _, int __)
        {
            ref readonly var p = ref _p;
            float* aPack = null;
            if (!_aShared)
            {
                var packA = t_packA ??= new AlignedBuffer();
                packA.Ensure((long)_mc * _kc);
                aPack = packA.Pointer;
            }
            var packB = t_packB ??= new AlignedBuffer();
            packB.Ensure((long)_kc * _nc);
            float* bPack = packB.Pointer;
            int units = CeilDiv(p.N, _nc), unit;
            while ((unit = Interlocked.Increment(ref _nextUnit) - 1) < units)
            {
                int jc = unit * _nc, nc = Math.Min(_nc, p.N - jc), panels = CeilDiv(nc, TKernel.NR);
                for (int pc = 0; pc < p.K; pc += _kc)
                {
                    int kc = Math.Min(_kc, p.K - pc);
                    PackB(in p, pc, kc, jc, nc, 0, panels, TKernel.NR, bPack);
                    for (int ic = 0; ic < p.M; ic += _mc)
                    {
                        int mc = Math.Min(_mc, p.M - ic);
                        float* a = aPack;
                        if (_aShared) a = SharedA(pc, ic);
                        else PackA(in p, ic, mc, pc, kc, TKernel.MR, a);
                        MacroKernel(in p, kc, mc, nc, ABlock.Packed(a, kc), bPack, ic, jc, pc);
                    }
                }
            }
        }

        /// <summary>
        /// C[ic.., jc..] (mc×nc) += A block (mc×kc) · packed B panels (kc×nc). The first slice of k (pc = 0) writes C,
        /// adding the old C only when accumulating, and the bias; later slices add to C. A packed A block has its panels
        /// MR·kc floats apart and steps of k MR apart (<see cref="ABlock.Packed"/>); a transposed A read where it is
        /// stored has its panels MR floats apart and steps of k lda apart, and a last panel of fewer than MR rows packed
        /// apart (<see cref="ABlock.LastPanel"/>), so that nothing past A is read.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void MacroKernel(in Problem p, int kc, int mc, int nc, in ABlock a, float* bPack, int ic, int jc, int pc)
        {
            int mr = TKernel.MR, nr = TKernel.NR, ldc = p.Ldc, full = mc / mr * mr;
            bool loadC = p.Accumulate || pc > 0;
            float* bias = pc == 0 && p.Bias != null ? p.Bias + jc : null;
            float* c = p.C + (long)ic * ldc + jc;
            float* last = a.LastPanel != null ? a.LastPanel : a.First + full / mr * a.PanelStride;
            for (int j = 0; j < nc; j += nr)
            {
                int ncur = Math.Min(nr, nc - j);
                float* b = bPack + (long)j * kc;
                float* biasJ = bias == null ? null : bias + j;
                for (int i = 0; i < full; i += mr)
                {
                    float* panel = a.First + i / mr * a.PanelStride, cTile = c + (long)i * ldc + j;
                    if (ncur == nr) TKernel.Run(kc, panel, a.Step, b, cTile, ldc, loadC, biasJ);
                    else EdgeTile(kc, panel, a.Step, b, cTile, ldc, mr, ncur, loadC, biasJ);
                }
                if (full < mc) EdgeTile(kc, last, mr, b, c + (long)full * ldc + j, ldc, mc - full, ncur, loadC, biasJ);
            }
        }

        /// <summary>
        /// Where an A block's micro-panels are for <see cref="MacroKernel"/>: the first, the floats from one to the next,
        /// the floats from one step of k to the next, and (read in place) the packed copy of a ragged last panel.
        /// </summary>
        readonly struct ABlock(float* first, long panelStride, nint step, float* lastPanel)
        {
            public readonly float* First = first, LastPanel = lastPanel;
            public readonly long PanelStride = panelStride;
            public readonly nint Step = step;

            public static ABlock Packed(float* pack, int kc) => new(pack, (long)TKernel.MR * kc, TKernel.MR, null);
        }

        /// <summary>A partial tile: the micro-kernel writes a full tile to the stack, the valid part is copied out.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        static void EdgeTile(int kc, float* a, nint aStep, float* b, float* c, int ldc, int mcur, int ncur, bool loadC,
            float* bias)
        {
            int nr = TKernel.NR;
            float* tile = stackalloc float[TKernel.MR * nr];
            TKernel.Run(kc, a, aStep, b, tile, nr, false, null);
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
