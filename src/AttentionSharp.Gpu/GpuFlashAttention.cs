// Source: Dao, "FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning" (2023), algorithms 1
// (forward) and 2 (backward); the CPU engine's Kernels/AttentionFlash.cs, whose contract (masks, fully masked rows,
// saved logsumexp) this follows.
using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// A (B, NH, T, HS) attention operand inside a device buffer: element (b, h, t, c) lies at
/// <c>Offset + b·BatchStride + h·HeadStride + t·RowStride + c</c>, so the heads of a (B, T, NH, HS) tensor, or of a
/// fused (B, T, 3·C) QKV projection, are read in place.
/// </summary>
public readonly record struct GpuHeads(GpuTensor Tensor, long BatchStride, long HeadStride, long RowStride, long Offset = 0)
{
    /// <summary>A dense (B, NH, T, HS) tensor.</summary>
    public static GpuHeads Dense(GpuTensor tensor, int heads, int time, int headSize) =>
        new(tensor, (long)heads * time * headSize, (long)time * headSize, headSize);

    /// <summary>The heads of a (B, T, NH·HS) tensor (heads merged, as attention's output is laid out), read in place.</summary>
    public static GpuHeads Merged(GpuTensor tensor, int heads, int time, int headSize) =>
        new(tensor, (long)time * heads * headSize, headSize, heads * headSize);

    /// <summary>Q, K and V of a fused (B, T, 3·NH·HS) projection, read in place: columns [0, C), [C, 2C), [2C, 3C).</summary>
    public static (GpuHeads Q, GpuHeads K, GpuHeads V) Packed(GpuTensor qkv, int heads, int time, int headSize)
    {
        int c = heads * headSize;
        long batchStride = (long)time * 3 * c;
        return (new(qkv, batchStride, headSize, 3 * c), new(qkv, batchStride, headSize, 3 * c, c),
            new(qkv, batchStride, headSize, 3 * c, 2 * c));
    }
}

/// <summary>The sizes and masks of one attention call.</summary>
/// <param name="Batch">B.</param>
/// <param name="Heads">NH (the same for queries, keys and values).</param>
/// <param name="QueryLength">Tq.</param>
/// <param name="KeyLength">Tk.</param>
/// <param name="HeadSize">HS, at most <see cref="GpuFlashAttention.MaxHeadSize"/>.</param>
public readonly record struct GpuAttentionProblem(int Batch, int Heads, int QueryLength, int KeyLength, int HeadSize)
{
    /// <summary>Query i sees key j only when j ≤ i + (Tk − Tq), as the CPU engine (aligned bottom-right).</summary>
    public bool Causal { get; init; }

    /// <summary>(B × Tk) flags, 1 where key j of batch b is padding and must be ignored; null for none.</summary>
    public GpuIntBuffer? KeyPadding { get; init; }

    /// <summary>The factor on QKᵀ; null for 1/√HS.</summary>
    public float? Scale { get; init; }

    /// <summary>Dropout probability on the weights, in [0, 1); the mask is the CPU engine's (see the seed).</summary>
    public float Dropout { get; init; }

    /// <summary>Seed of the counter-based dropout stream (the CPU's AttentionProblem.DropoutSeed).</summary>
    public ulong DropoutSeed { get; init; }

    /// <summary>Where batch 0 sits in a larger batch whose mask is drawn in parts.</summary>
    public int DropoutFirstBatch { get; init; }
}

/// <summary>
/// FlashAttention-2 on the device: O = softmax(QKᵀ·scale + mask)·V computed tile by tile with an online softmax, so the
/// (Tq, Tk) weights are never held; the forward pass saves the row logsumexp L, from which the backward pass recomputes
/// each weight tile as P = exp(S − L). A row whose keys are all masked gets O = 0 and L = +∞ (as on the CPU), so it
/// contributes no gradient.
/// </summary>
/// <remarks>
/// Forward: one group per (query tile of Br rows, b, h); K/V tiles of Bc keys pass through shared memory; causal key
/// tiles wholly in the query tile's future are never loaded. Backward: one group per (key tile of Bc keys, b, h), which
/// owns that tile's dK and dV in registers and loops over the query tiles that can see it; dQ is added with float
/// atomics (so its summation order varies from run to run), after D_i = Σ_c dO_ic·O_ic is precomputed by a row kernel.
/// </remarks>
public sealed class GpuFlashAttention : IDisposable
{
    /// <summary>The largest head size the kernels hold in shared memory.</summary>
    public const int MaxHeadSize = AttentionKernels.MaxHeadSize;

    readonly GpuDevice _device;
    readonly Action<KernelConfig, AttentionArgs> _forward, _backward, _rowTerms;
    readonly GpuIntBuffer _noPadding;
    GpuTensor? _d;

    internal GpuFlashAttention(GpuDevice device)
    {
        _device = device;
        _forward = device.Load<AttentionArgs>(AttentionKernels.Forward<CudaShapes>, AttentionKernels.Forward<SmallShapes>);
        _backward = device.Load<AttentionArgs>(AttentionKernels.Backward<CudaShapes>, AttentionKernels.Backward<SmallShapes>);
        _rowTerms = device.Load<AttentionArgs>(AttentionKernels.RowTerms, AttentionKernels.RowTerms);
        _noPadding = device.Upload(stackalloc int[1]);
    }

    /// <summary>
    /// o = softmax(q·kᵀ·scale + mask)·v, (B, NH, Tq, HS); <paramref name="lse"/> (B·NH·Tq floats, dense) receives
    /// L_i = m_i + log l_i, the logsumexp of row i of the masked, scaled scores.
    /// </summary>
    public void Forward(in GpuAttentionProblem problem, GpuHeads q, GpuHeads k, GpuHeads v, GpuHeads o, GpuTensor lse)
    {
        var args = Arguments(problem, q, k, v, lse);
        args.O = View(problem, o, problem.QueryLength, nameof(o));
        if (problem.Batch == 0 || problem.QueryLength == 0) return;
        int tile = _device.Shapes == GpuKernelShapes.Cuda ? CudaShapes.ForwardQueryTile : SmallShapes.ForwardQueryTile;
        _forward(Launch(problem.QueryLength, tile, problem), args);
    }

    /// <summary>
    /// dq += ∂L/∂q, dk += ∂L/∂k, dv += ∂L/∂v given dO = ∂L/∂o, the forward output o and its logsumexp; a null
    /// gradient is skipped. With D_i = Σ_c dO_ic·O_ic: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − D), dQ = dS·K·scale,
    /// dK = dSᵀ·Q·scale.
    /// </summary>
    public void Backward(in GpuAttentionProblem problem, GpuHeads q, GpuHeads k, GpuHeads v, GpuHeads o, GpuTensor lse,
        GpuHeads dO, GpuHeads? dq, GpuHeads? dk, GpuHeads? dv)
    {
        var args = Arguments(problem, q, k, v, lse);
        int tq = problem.QueryLength, tk = problem.KeyLength;
        args.O = View(problem, o, tq, nameof(o));
        args.DO = View(problem, dO, tq, nameof(dO));
        args.DQ = dq is { } gq ? View(problem, gq, tq, nameof(dq)) : args.Q;
        args.DK = dk is { } gk ? View(problem, gk, tk, nameof(dk)) : args.K;
        args.DV = dv is { } gv ? View(problem, gv, tk, nameof(dv)) : args.V;
        args.HasDQ = dq is null ? 0 : 1;
        args.HasDK = dk is null ? 0 : 1;
        args.HasDV = dv is null ? 0 : 1;
        long rows = (long)problem.Batch * problem.Heads * tq;
        if (rows == 0 || tk == 0 || (dq is null && dk is null && dv is null)) return;
        // D_i = Σ_c dO_ic·O_ic, once per query row, in a scratch buffer kept for the next call.
        if (_d is null || _d.Count < rows)
        {
            _d?.Dispose();
            _d = _device.Zeros((int)rows);
        }
        args.D = _d.View;
        _rowTerms(_device.ElementLaunch(rows), args);
        int tile = _device.Shapes == GpuKernelShapes.Cuda ? CudaShapes.BackwardKeyTile : SmallShapes.BackwardKeyTile;
        _backward(Launch(tk, tile, problem), args);
    }

    KernelConfig Launch(int length, int tile, in GpuAttentionProblem problem)
    {
        int threads = _device.Shapes == GpuKernelShapes.Cuda ? CudaShapes.AttentionThreads : SmallShapes.AttentionThreads;
        return new KernelConfig(new Index2D((length + tile - 1) / tile, problem.Batch * problem.Heads), new Index2D(threads, 1));
    }

    AttentionArgs Arguments(in GpuAttentionProblem p, GpuHeads q, GpuHeads k, GpuHeads v, GpuTensor lse)
    {
        if (p.Batch < 0 || p.Heads < 1 || p.QueryLength < 0 || p.KeyLength < 0 || p.HeadSize < 1)
            throw new ArgumentException($"Attention sizes must be positive: B = {p.Batch}, NH = {p.Heads}, Tq = " +
                $"{p.QueryLength}, Tk = {p.KeyLength}, HS = {p.HeadSize}.");
        if (p.HeadSize > MaxHeadSize)
            throw new ArgumentException($"The GPU attention kernels hold heads of at most {MaxHeadSize} floats; HS = " +
                $"{p.HeadSize}.");
        if ((long)p.Batch * p.Heads > 65535)
            throw new ArgumentException($"B·NH must be at most 65535 (the grid's second dimension); got " +
                $"{(long)p.Batch * p.Heads}.");
        Check.Count(_device, lse, (long)p.Batch * p.Heads * p.QueryLength, nameof(lse), "B·NH·Tq");
        if (p.KeyPadding is { } padding) Check.Length(_device, padding, (long)p.Batch * p.KeyLength, "KeyPadding", "B·Tk");
        AttentionSharp.Kernels.Dropout.CheckProbability(p.Dropout);
        var args = new AttentionArgs
        {
            Q = View(p, q, p.QueryLength, nameof(q)),
            K = View(p, k, p.KeyLength, nameof(k)),
            V = View(p, v, p.KeyLength, nameof(v)),
            Lse = lse.View, D = lse.View,
            // Without padding flags the kernels never read them; a one-integer buffer stands in.
            Padding = (p.KeyPadding ?? _noPadding).View,
            HasPadding = p.KeyPadding is null ? 0 : 1,
            Batch = p.Batch, Heads = p.Heads, Tq = p.QueryLength, Tk = p.KeyLength, HeadSize = p.HeadSize,
            Causal = p.Causal ? 1 : 0,
            Scale = p.Scale ?? 1f / MathF.Sqrt(p.HeadSize),
            Dropout = p.Dropout, DropoutSeed = p.DropoutSeed, DropoutFirstBatch = p.DropoutFirstBatch,
        };
        args.O = args.DO = args.DQ = args.Q;
        args.DK = args.K;
        args.DV = args.V;
        return args;
    }

    HeadView View(in GpuAttentionProblem p, GpuHeads heads, int time, string name)
    {
        var t = heads.Tensor;
        ArgumentNullException.ThrowIfNull(t, name);
        if (heads.Offset < 0 || heads.BatchStride < 0 || heads.HeadStride < 0 || heads.RowStride < p.HeadSize)
            throw new ArgumentException($"{name}: strides must be non-negative and rows at least HS = {p.HeadSize} " +
                $"apart; got offset {heads.Offset}, strides ({heads.BatchStride}, {heads.HeadStride}, {heads.RowStride}).", name);
        long last = p.Batch == 0 || time == 0 ? 0
            : heads.Offset + (p.Batch - 1) * heads.BatchStride + (p.Heads - 1) * heads.HeadStride
              + (time - 1) * heads.RowStride + p.HeadSize;
        Check.AtLeast(_device, t, last, name,
            $"(B, NH, T, HS) = ({p.Batch}, {p.Heads}, {time}, {p.HeadSize}) at offset {heads.Offset} with strides " +
            $"({heads.BatchStride}, {heads.HeadStride}, {heads.RowStride})");
        return new HeadView
        {
            Data = t.View.SubView(heads.Offset, Math.Max(t.Count - heads.Offset, 1)),
            Batch = heads.BatchStride, Head = heads.HeadStride, Row = heads.RowStride,
        };
    }

    public void Dispose()
    {
        _noPadding.Dispose();
        _d?.Dispose();
        _d = null;
    }
}
