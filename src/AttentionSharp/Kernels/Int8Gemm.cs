// Source: Dettmers et al., "LLM.int8(): 8-bit Matrix Multiplication for Transformers at Scale" (2022), vector-wise
// absmax quantization; Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
// Inference" (2018), int32 accumulation with a float rescale.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionSharp.Kernels;

/// <summary>
/// Int8 matrix multiply for inference: weights quantized once per output channel (row of W), activations quantized
/// per row as they arrive (dynamic), products summed exactly in int32 and rescaled in float.
/// </summary>
/// <remarks>
/// <para>Quantization is symmetric absmax: <c>s_r = max_k |x_r,k| / 127</c>, <c>q_r,k = round(x_r,k / s_r)</c> (ties to
/// even) clamped to [−127, 127], so x ≈ s·q with an error of at most s/2 per element. Rows are padded with zeros to
/// <see cref="PaddedLength"/> so every kernel runs whole vectors.</para>
/// <para><c>y(i, j) = acc(i, j) · (s_x(i) · s_w(j)) + bias(j) + residual(i, j)</c>,
/// <c>acc(i, j) = Σ_k xq(i, k) · w(j, k)</c>.
/// The sums are exact integers, and the float epilogue is the same four operations in the same order on every path
/// (no fused multiply-add), so the AVX-512, AVX2 and scalar kernels give bit-identical results, whatever the thread
/// count, and row i's result does not depend on the other rows of the batch.</para>
/// </remarks>
public static unsafe partial class Int8Gemm
{
    /// <summary>Rows are padded to a multiple of this many elements: one 512-bit vector of bytes.</summary>
    public const int Block = 64;

    /// <summary>
    /// Longest padded row: 127 · 127 · 131072 &lt; 2³¹, so no sum of products can overflow int32.
    /// </summary>
    public const int MaxPaddedLength = 131072;

    /// <summary>Which kernel this process uses: 512 (AVX-512BW), 256 (AVX2, with AVX-VNNI where present) or 0 (scalar).</summary>
    public static int VectorBits { get; } =
        Avx512BW.IsSupported && Vector512.IsHardwareAccelerated ? 512
        : Avx2.IsSupported && Vector256.IsHardwareAccelerated ? 256
        : 0;

    /// <summary>
    /// K rounded up to a multiple of 64: the row stride of quantized weights and activations (the padding is zero).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">k is negative or above <see cref="MaxPaddedLength"/>.</exception>
    public static int PaddedLength(int k)
    {
        if ((uint)k > MaxPaddedLength)
            throw new ArgumentOutOfRangeException(nameof(k), k,
                $"k must be in [0, {MaxPaddedLength}] so that int32 sums of int8 products cannot overflow; got {k}.");
        return (k + Block - 1) / Block * Block;
    }

    /// <summary>
    /// y(i, j) = ((float)acc(i, j) · (xScales[i] · wScales[j])) + bias[j] (+ residual(i, j)), with
    /// acc(i, j) = Σ_k xq(i, k) · w(j, k) in exact int32 arithmetic.
    /// </summary>
    /// <param name="xq">Quantized activations, m × <paramref name="kPadded"/> values in [−127, 127] (<see
    /// cref="QuantizeRows"/>).</param>
    /// <param name="xScales">The activations' row scales, m of them; a NaN scale makes the row's outputs NaN.</param>
    /// <param name="m">Rows of activations and of y.</param>
    /// <param name="kPadded">Row stride of <paramref name="xq"/> and <paramref name="w"/>: <see cref="PaddedLength"/>(k).</param>
    /// <param name="w">Quantized weights, n × <paramref name="kPadded"/> (<see cref="QuantizeWeights"/>; row j feeds
    /// output j) in the panel layout of <see cref="PackWeights"/>: <see cref="PackedLength"/>(n, kPadded) bytes.</param>
    /// <param name="wScales">The weights' row scales, n of them.</param>
    /// <param name="n">Output features: rows of w, columns of y.</param>
    /// <param name="bias">n floats, or empty for no bias.</param>
    /// <param name="residual">m × n floats added last, or empty for none. It may be <paramref name="y"/> itself
    /// (y += …).</param>
    /// <param name="y">The output, m × n, row-major.</param>
    /// <remarks>
    /// Threads split the columns into whole panels, so each streams a contiguous part of w; with many rows, blocks of
    /// rows too. Nothing is allocated.
    /// </remarks>
    public static void Multiply(ReadOnlySpan<short> xq, ReadOnlySpan<float> xScales, int m, int kPadded,
        ReadOnlySpan<sbyte> w, ReadOnlySpan<float> wScales, int n,
        ReadOnlySpan<float> bias, ReadOnlySpan<float> residual, Span<float> y)
    {
        ValidateMultiply(xq.Length, xScales.Length, m, kPadded, w.Length, packed: true, wScales.Length, n, bias.Length,
            residual.Length, y.Length);
        if (!residual.IsEmpty && ((ReadOnlySpan<float>)y).Overlaps(residual, out int offset) && offset != 0)
            throw new ArgumentException(
                $"residual overlaps y at an offset of {offset} elements; it must be y itself or not overlap " +
                    $"it.", nameof(residual));
        if (m == 0 || n == 0) return;
        fixed (short* px = xq)
        fixed (float* pxs = xScales, pws = wScales, pb = bias, pr = residual, py = y)
        fixed (sbyte* pw = w)
        {
            var p = new Problem(px, pxs, m, kPadded, pw, pws, n, bias.IsEmpty ? null : pb, residual.IsEmpty ? null : pr, py);
            Driver.Run(in p);
        }
    }

    /// <summary>
    /// Shape checks of <see cref="Multiply"/>, shared with the reference twin, which reads w row-major (not
    /// <paramref name="packed"/>).
    /// </summary>
    internal static void ValidateMultiply(int xq, int xScales, int m, int kPadded, int w, bool packed, int wScales, int n,
        int bias, int residual, int y)
    {
        Guard.Shape(m, n, nameof(m), nameof(n));
        CheckPaddedLength(kPadded);
        Guard.Matrix(nameof(xq), xq, m, kPadded, nameof(m), nameof(kPadded));
        Guard.Vector(nameof(xScales), xScales, m, nameof(m));
        if (!packed) Guard.Matrix(nameof(w), w, n, kPadded, nameof(n), nameof(kPadded));
        else if (w != PackedLength(n, kPadded))
            throw new ArgumentException($"w has length {w}; expected {PackedLength(n, kPadded)} (PackedLength(n, kPadded) " +
                                        $"for n = {n}, kPadded = {kPadded}: the panels of PackWeights).", nameof(w));
        Guard.Vector(nameof(wScales), wScales, n, nameof(n));
        Guard.OptionalVector(nameof(bias), bias, n, nameof(n));
        if (residual != 0) Guard.Matrix(nameof(residual), residual, m, n, nameof(m), nameof(n));
        Guard.Matrix(nameof(y), y, m, n, nameof(m), nameof(n));
    }

    /// <summary>One call's operands, pinned for its duration.</summary>
    readonly struct Problem(short* x, float* xScales, int m, int kPadded, sbyte* w, float* wScales, int n, float* bias,
        float* residual, float* y)
    {
        public readonly short* X = x;
        public readonly sbyte* W = w;
        public readonly float* XScales = xScales, WScales = wScales, Bias = bias, Residual = residual, Y = y;
        public readonly int M = m, N = n, KPadded = kPadded;
    }

    /// <summary>
    /// A register-blocked kernel: <c>tile[r · 4 + c] = Σ_p x_r[p] · w_c[p]</c> over p ∈ [0, kPadded) for rows
    /// r &lt; TRows (row r at <c>x + r · kPadded</c>) and the four weight rows of one panel (<see cref="PackWeights"/>):
    /// <c>w_c[s + t] = panel[4s + 32c + t]</c> for s a multiple of 32 and t &lt; 32.
    /// </summary>
    interface IKernel
    {
        /// <summary>Most rows per call: each weight vector loaded is used this many times.</summary>
        static abstract int MR { get; }

        static abstract void Run<TRows>(short* x, sbyte* panel, int kPadded, int* tile) where TRows : struct, IRowCount;

        /// <summary>
        /// One row x against two panels read side by side (two streams of weights): tileA and tileB get exactly what
        /// <see cref="Run{TRows}"/> gives each panel alone.
        /// </summary>
        static abstract void RunTwo(short* x, sbyte* panelA, sbyte* panelB, int kPadded, int* tileA, int* tileB);
    }

    /// <summary>A row count known when the kernel is compiled, so rows it does not use cost nothing.</summary>
    interface IRowCount
    {
        static abstract int Value { get; }
    }

    readonly struct Rows1 : IRowCount { public static int Value => 1; }
    readonly struct Rows2 : IRowCount { public static int Value => 2; }
    readonly struct Rows3 : IRowCount { public static int Value => 3; }
    readonly struct Rows4 : IRowCount { public static int Value => 4; }

    /// <summary>Columns per kernel call: four weight rows, whose sums reduce together into one 128-bit vector.</summary>
    const int NR = 4;

    /// <summary>
    /// Splits y into units of one block of rows × one panel (four columns) and runs them on <see cref="Parallel.For"/>.
    /// Units are numbered column-fastest, so a thread's contiguous range of units is a contiguous range of panels.
    /// </summary>
    sealed class Driver
    {
        [ThreadStatic] static Driver? t_driver;

        /// <summary>
        /// The rows of x a unit keeps hot in L2 while it sweeps its four weight rows over them: 256 KiB of shorts.
        /// </summary>
        const int RowBlockBytes = 256 * 1024;

        /// <summary>
        /// Fewest multiply-adds per chunk of units: below about this a thread's wake-up costs more than its share.
        /// </summary>
        const long ChunkMacs = 128 * 1024;

        readonly Action<int, int> _units;
        Problem _p;
        int _mc, _quads;

        Driver() => _units = Units;

        public static void Run(in Problem p)
        {
            var driver = t_driver ??= new Driver();
            driver._p = p;
            // Rows per block: as many as fit the L2 budget, a multiple of 4, at least 4.
            driver._mc = Math.Clamp(RowBlockBytes / (2 * Math.Max(p.KPadded, Block)) / 4 * 4, 4, 256);
            driver._quads = (p.N + NR - 1) / NR;
            int rowBlocks = (p.M + driver._mc - 1) / driver._mc;
            long unitMacs = (long)Math.Min(p.M, driver._mc) * NR * Math.Max(p.KPadded, Block);
            int grain = (int)Math.Max(1, ChunkMacs / unitMacs);
            Parallel.For(rowBlocks * driver._quads, grain, driver._units);
            driver._p = default;
        }

        void Units(int start, int end)
        {
            switch (VectorBits)
            {
                case 512: Units<Kernel512>(start, end); break;
                case 256: Units<Kernel256>(start, end); break;
                default: Units<KernelScalar>(start, end); break;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Units<TKernel>(int start, int end) where TKernel : struct, IKernel
        {
            ref readonly var p = ref _p;
            int kp = p.KPadded, mr = TKernel.MR;
            int* tile = stackalloc int[4 * NR];
            if (p.M == 1)
            {
                OneRow<TKernel>(start, end, tile);
                return;
            }
            int rowBlock = Math.DivRem(start, _quads, out int quad);
            for (int u = start; u < end; u++, quad++)
            {
                if (quad == _quads) { quad = 0; rowBlock++; }
                int j = quad * NR, cols = Math.Min(NR, p.N - j);
                // A last panel of fewer than four rows is padded with zero rows, whose sums the epilogue skips.
                sbyte* panel = p.W + (long)j * kp;
                int rowEnd = Math.Min(p.M, (rowBlock + 1) * _mc);
                for (int i = rowBlock * _mc; i < rowEnd; i += mr)
                {
                    int rows = Math.Min(mr, rowEnd - i);
                    short* x = p.X + (long)i * kp;
                    switch (rows)
                    {
                        case 1: TKernel.Run<Rows1>(x, panel, kp, tile); break;
                        case 2: TKernel.Run<Rows2>(x, panel, kp, tile); break;
                        case 3: TKernel.Run<Rows3>(x, panel, kp, tile); break;
                        default: TKernel.Run<Rows4>(x, panel, kp, tile); break;
                    }
                    Epilogue(in p, tile, i, rows, j, cols);
                }
            }
        }

        /// <summary>
        /// Units [start, end) of a product with one row of activations (decoding one sequence), which streams its share
        /// of the weights from memory once: the first half of the range and the second are read side by side, panel q
        /// with panel q + half (<see cref="IKernel.RunTwo"/>). One core keeps more reads in flight from two streams than
        /// from one: on an AMD EPYC with AVX2 only (Zen 3) the language-model head's 38.6 MB went from 25.3 to 30.6 GB/s
        /// on two threads and from 15.1 to 19.0 on one (a scratch program alternating both ways in one process, medians
        /// of seven rounds of 60 calls each); on a Zen 4 with AVX-512 a GPT-2 token's 49 int8 products took 4.41 ms
        /// against 4.68 on one thread and were level on two (3.46 against 3.41; medians of 30 rounds alternating in one
        /// process). Every panel's sums are the ones it gets alone.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void OneRow<TKernel>(int start, int end, int* tile) where TKernel : struct, IKernel
        {
            ref readonly var p = ref _p;
            int kp = p.KPadded, half = (end - start) / 2;
            int* second = tile + NR;
            for (int quad = start; quad < start + half; quad++)
            {
                int ja = quad * NR, jb = (quad + half) * NR;
                TKernel.RunTwo(p.X, p.W + (long)ja * kp, p.W + (long)jb * kp, kp, tile, second);
                Epilogue(in p, tile, 0, 1, ja, Math.Min(NR, p.N - ja));
                Epilogue(in p, second, 0, 1, jb, Math.Min(NR, p.N - jb));
            }
            if ((end - start) % 2 != 0)
            {
                int j = (end - 1) * NR;
                TKernel.Run<Rows1>(p.X, p.W + (long)j * kp, kp, tile);
                Epilogue(in p, tile, 0, 1, j, Math.Min(NR, p.N - j));
            }
        }

        /// <summary>
        /// y(i, j) = acc(i, j) · (s_x(i) · s_w(j)) + bias(j) + residual(i, j) for a rows × cols block of sums. The float
        /// operations are written out one by one, so no path can fuse or reorder them; four columns at a time they are
        /// the same IEEE operations lane by lane.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Epilogue(in Problem p, int* tile, int i0, int rows, int j0, int cols)
        {
            for (int r = 0; r < rows; r++)
            {
                float* y = p.Y + (long)(i0 + r) * p.N + j0;
                float* residual = p.Residual + (long)(i0 + r) * p.N + j0;
                float* bias = p.Bias + j0;
                float xScale = p.XScales[i0 + r];
                int* acc = tile + r * NR;
                if (cols == NR)
                {
                    var s = Vector128.Create(xScale) * Vector128.Load(p.WScales + j0);
                    var v = Vector128.ConvertToSingle(Vector128.Load(acc)) * s;
                    if (p.Bias != null) v += Vector128.Load(bias);
                    if (p.Residual != null) v += Vector128.Load(residual);
                    v.Store(y);
                    continue;
                }
                for (int c = 0; c < cols; c++)
                {
                    float s = xScale * p.WScales[j0 + c];
                    float v = (float)acc[c] * s;
                    if (p.Bias != null) v += bias[c];
                    if (p.Residual != null) v += residual[c];
                    y[c] = v;
                }
            }
        }
    }
}
