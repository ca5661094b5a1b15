using AttentionSharp.Autograd;
using AttentionSharp.Kernels;

namespace AttentionSharp;

/// <summary>Which algorithm computes attention; both honour the same contract.</summary>
public enum AttentionImplementation
{
    /// <summary>Flash, unless the weights are requested (then plain).</summary>
    Auto,

    /// <summary>Materialises the (Tq, Tk) weights: softmax(QKᵀ·scale + mask)·V; keeps them for the backward pass.</summary>
    Plain,

    /// <summary>
    /// Tiled with an online softmax; never holds the (Tq, Tk) weights (FlashAttention-2); keeps O and the row logsumexp.
    /// </summary>
    Flash,
}

/// <summary>The masks and knobs of scaled dot-product attention.</summary>
public sealed record AttentionOptions
{
    /// <summary>
    /// Query i may attend key j only when j ≤ i + (Tk − Tq): the usual causal mask when Tq = Tk, and the right one for
    /// decoding with a K/V cache (the new queries are the last Tq positions).
    /// </summary>
    public bool Causal { get; init; }

    /// <summary>
    /// Added to the scores before softmax (use −∞ to forbid); any shape that broadcasts to (B, NH, Tq, Tk). It is read in
    /// place through broadcast strides and receives no gradient, so it must not require one.
    /// </summary>
    public Tensor? AdditiveMask { get; init; }

    /// <summary>(B × Tk) flags, true where a key is padding and must be ignored.</summary>
    public ReadOnlyMemory<bool> KeyPadding { get; init; }

    /// <summary>
    /// (B) counts, empty for all: only the first QueryLengths[b] query rows of batch row b are computed; the rest give 0
    /// and pass no gradient (their output gradient is not read). For right-padded queries whose padded rows nobody
    /// reads, as packed sequences unpacked for attention: the rows computed are the same as without it, bit for bit.
    /// </summary>
    public ReadOnlyMemory<int> QueryLengths { get; init; }

    /// <summary>The factor on QKᵀ; default 1/√HS.</summary>
    public float? Scale { get; init; }

    /// <summary>
    /// Sliding window w (Longformer), 0 for none: query i at position p_i = i + (Tk − Tq) sees key j only when
    /// |p_i − j| &lt; w (with <see cref="Causal"/>: the last w keys, itself included). The flash path skips the tiles
    /// outside the band, so it costs O(T·w) time and O(T) memory.
    /// </summary>
    public int Window { get; init; }

    /// <summary>
    /// Positions of global tokens (Longformer), in [0, Tk): each attends to every key and is attended by every query,
    /// whatever the window. Needs a <see cref="Window"/>.
    /// </summary>
    public ReadOnlyMemory<int> GlobalTokens { get; init; }

    /// <summary>Dropout probability on the attention weights (training only).</summary>
    public float Dropout { get; init; }

    /// <summary>The generator dropout draws from; required when <see cref="Dropout"/> &gt; 0.</summary>
    public Generator? DropoutRng { get; init; }

    /// <summary>
    /// Where batch 0 sits in a larger batch whose mask is drawn in parts (data-parallel ranks); null takes
    /// <see cref="DropoutRng"/>'s <see cref="Generator.FirstRow"/> (0 without a generator).
    /// </summary>
    public int? DropoutFirstBatch { get; init; }

    public AttentionImplementation Implementation { get; init; } = AttentionImplementation.Auto;
}

public sealed unsafe partial class Tensor
{
    /// <summary>
    /// Attention(Q, K, V) = softmax(QKᵀ·scale + mask)·V (Vaswani et al. 2017, eq. 1) for Q (B, NH, Tq, HS) and K, V
    /// (B, NKV, Tk, HS), where NKV divides NH (grouped-query attention: query head h reads K/V head h / (NH/NKV)).
    /// Returns (B, NH, Tq, HS), laid out as (B, Tq, NH, HS) so that merging the heads is a view. Q, K and V may be
    /// strided views (e.g. heads split by Reshape(B, T, NH, HS).Transpose(1, 2)); only a last dimension with non-unit
    /// stride is copied. A query row whose keys are all masked gives 0 (PyTorch
    /// gives NaN).
    /// </summary>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, AttentionOptions? options = null)
    {
        options ??= new AttentionOptions();
        if (AttentionSubscription.Current is not { } observer || options.Implementation == AttentionImplementation.Flash)
            return Attention(q, k, v, options, wantWeights: false).Output;
        var (output, weights) = Attention(q, k, v, options, wantWeights: true);   // a subscribed observer sees the weights
        observer.OnAttention(weights!);
        return output;
    }

    /// <summary>
    /// As <see cref="ScaledDotProductAttention"/>, also returning the (B, NH, Tq, Tk) attention weights (before dropout)
    /// from the plain path. The weights are for inspection: no gradient flows back through them.
    /// </summary>
    public static (Tensor Output, Tensor Weights) ScaledDotProductAttentionWithWeights(Tensor q, Tensor k, Tensor v,
        AttentionOptions? options = null)
    {
        var (o, w) = Attention(q, k, v, options ?? new AttentionOptions(), wantWeights: true);
        return (o, w!);
    }

    static (Tensor Output, Tensor? Weights) Attention(Tensor q, Tensor k, Tensor v, AttentionOptions options, bool wantWeights)
    {
        var (b, nh, tq, hs, nkv, tk) = CheckAttentionShapes(q, k, v, options);
        var call = AttentionCall.Prepare(options, wantWeights, b, nh, nkv, tq, tk, hs);
        // The kernels need unit stride along HS only; the usual head views (B, T, NH, HS) → (B, NH, T, HS) have it.
        q = UnitLastStride(q); k = UnitLastStride(k); v = UnitLastStride(v);
        var output = HeadsOf(b, tq, nh, hs); // (B, NH, Tq, HS), laid out (B, Tq, NH, HS)
        var saved = call.Flash ? Uninitialized([b, nh, tq]) : Uninitialized([b, nh, tq, tk]); // L (flash) or P (plain)
        call.Forward(Heads(q), Heads(k), Heads(v), Heads(output), saved.Pointer);
        var weights = wantWeights ? saved.Detach() : null;

        var result = Record(output, call.Flash ? "FlashAttention" : "Attention", [q, k, v], g =>
        {
            var dq = q.RequiresGrad ? GradHeads(q) : default;
            var dk = k.RequiresGrad ? GradHeads(k) : default;
            var dv = v.RequiresGrad ? GradHeads(v) : default;
            call.Backward(Heads(q), Heads(k), Heads(v), Heads(output), saved.Pointer, Heads(g), dq, dk, dv);
        });
        // Nothing will run backward: the saved state goes back to the pool now (a returned weight view keeps its storage).
        if (result.GradFn is null) saved.Dispose();
        return (result, weights);
    }

    /// <summary>
    /// Causal or full self-attention straight from a fused projection: <paramref name="qkv"/> is (B, T, 3·C) holding
    /// [Q K V] along its last dimension (GPT-2's c_attn output), C = heads·HS; returns (B, T, C), the heads concatenated.
    /// The same as splitting Q, K and V into heads, <see cref="ScaledDotProductAttention"/> and merging the heads, but
    /// the kernels read the heads in place and the backward pass writes dQ, dK and dV straight into the gradient of
    /// <paramref name="qkv"/>: no view operations, no copies, no intermediate gradients. A subscribed attention observer (or
    /// the plain implementation) takes the split path, which forms the weights.
    /// </summary>
    public static Tensor PackedSelfAttention(Tensor qkv, int heads, AttentionOptions? options = null)
    {
        options ??= new AttentionOptions();
        if (qkv.Rank != 3 || heads < 1 || qkv._shape[2] % (3 * heads) != 0)
            throw new ArgumentException($"Packed self-attention needs (B, T, 3·heads·HS) with heads ≥ 1; got " +
                $"{ShapeMath.Format(qkv.Shape)} for {heads} heads.", nameof(qkv));
        int b = qkv._shape[0], t = qkv._shape[1], c = qkv._shape[2] / 3, hs = c / heads;
        if (qkv._memory is not null) return DevicePackedSelfAttention(qkv, b, t, heads, hs, options);
        if (AttentionSubscription.Current is not null || options.Implementation == AttentionImplementation.Plain)
        {
            var parts = qkv.Split([c, c, c], 2);
            var y = ScaledDotProductAttention(parts[0].Reshape(b, t, heads, hs).Transpose(1, 2),
                parts[1].Reshape(b, t, heads, hs).Transpose(1, 2), parts[2].Reshape(b, t, heads, hs).Transpose(1, 2), options);
            return y.Transpose(1, 2).Reshape(b, t, c);
        }
        var dense = qkv.Contiguous();
        // (B, NH, T, HS) views of Q, K and V inside a (B, T, 3C) buffer: rows 3C apart, heads HS apart.
        HeadTensor Part(float* data, int which) => new(data + which * c, (long)t * 3 * c, hs, 3 * c);
        var call = AttentionCall.Prepare(options with { Implementation = AttentionImplementation.Flash },
            false, b, heads, heads, t, t, hs);
        var output = Uninitialized([b, t, c]);
        var lse = Uninitialized([b, heads, t]);
        var o = new HeadTensor(output.Pointer, (long)t * c, hs, c);
        call.Forward(Part(dense.Pointer, 0), Part(dense.Pointer, 1), Part(dense.Pointer, 2), o, lse.Pointer);
        var result = Record(output, "FlashAttention", [dense], g =>
        {
            // Q, K and V's parts of the gradient cover the whole (B, T, 3C) buffer, so a new one is only written.
            dense.GradBufferToSet(out bool set);
            float* grad = dense.Grad!.Pointer;
            call.Backward(Part(dense.Pointer, 0), Part(dense.Pointer, 1), Part(dense.Pointer, 2), o, lse.Pointer,
                new HeadTensor(g.Pointer, (long)t * c, hs, c), Part(grad, 0), Part(grad, 1), Part(grad, 2), clear: set);
        });
        if (result.GradFn is null) lse.Dispose();
        return result;
    }

    /// <summary>One attention call's problem, masks and algorithm, ready to run forward and backward over head views.</summary>
    sealed class AttentionCall
    {
        AttentionProblem _problem;
        bool[] _padding = [], _global = [];
        int[] _queryLengths = [];
        Tensor? _mask;

        public bool Flash { get; private init; }

        public static AttentionCall Prepare(AttentionOptions options, bool wantWeights,
            int b, int nh, int nkv, int tq, int tk, int hs)
        {
            var implementation = options.Implementation switch
            {
                AttentionImplementation.Auto => wantWeights ? AttentionImplementation.Plain : AttentionImplementation.Flash,
                AttentionImplementation.Flash when wantWeights =>
                    throw new ArgumentException("Attention weights come from the plain path; " +
                        "use AttentionImplementation.Auto or Plain to get them."),
                var chosen => chosen,
            };
            if (options.AdditiveMask is { RequiresGrad: true } && GradMode.IsEnabled)
                throw new ArgumentException("Attention: the additive mask receives no gradient; " +
                    "pass a tensor that does not require one (or Detach() it).");
            if (options.Dropout > 0 && options.DropoutRng is null)
                throw new ArgumentException("Attention dropout needs a DropoutRng.");
            // The per-batch arrays are read by index in the kernels (every call, the fused path's too); their values'
            // ranges are the problem's to check (AttentionProblem.Validate).
            if (!options.KeyPadding.IsEmpty && options.KeyPadding.Length != b * tk)
                throw new ArgumentException($"Attention: the key-padding mask has {options.KeyPadding.Length} flags; " +
                    $"(B={b}) × (Tk={tk}) = {b * tk} are needed.");
            if (!options.QueryLengths.IsEmpty && options.QueryLengths.Length != b)
                throw new ArgumentException($"Attention: QueryLengths has {options.QueryLengths.Length} counts; " +
                    $"one per batch row (B={b}) is needed.");
            Kernels.Dropout.CheckProbability(options.Dropout);
            return new AttentionCall
            {
                Flash = implementation == AttentionImplementation.Flash,
                _mask = options.AdditiveMask,
                _padding = options.KeyPadding.IsEmpty ? [] : options.KeyPadding.ToArray(),
                _queryLengths = options.QueryLengths.IsEmpty ? [] : options.QueryLengths.ToArray(),
                _global = GlobalFlags(options, tk),
                _problem = new AttentionProblem
                {
                    Batch = b, Heads = nh, KvHeads = nkv, QueryLength = tq, KeyLength = tk, HeadSize = hs,
                    Scale = options.Scale ?? 1f / MathF.Sqrt(hs), Causal = options.Causal, Window = options.Window,
                    Dropout = options.Dropout, DropoutSeed = options.Dropout > 0 ? options.DropoutRng!.NextUInt64() : 0,
                    DropoutFirstBatch = options.DropoutFirstBatch ?? options.DropoutRng?.FirstRow ?? 0,
                },
            };
        }

        /// <summary>o and the saved state: the row logsumexp (flash) or the weights P (plain).</summary>
        public void Forward(HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* saved)
        {
            fixed (bool* pad = _padding, glob = _global)
            fixed (int* lengths = _queryLengths)
            {
                var p = WithMasks(pad, glob, lengths);
                if (Flash) AttentionFlash.Forward(in p, q, k, v, o, saved);
                else AttentionPlain.Forward(in p, q, k, v, o, saved);
            }
        }

        /// <summary>
        /// dq, dk, dv += the gradients given dO (a null one is skipped); with <paramref name="clear"/> (flash only) they
        /// are set instead, their old contents never read.
        /// </summary>
        public void Backward(HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* saved, HeadTensor dO,
            HeadTensor dq, HeadTensor dk, HeadTensor dv, bool clear = false)
        {
            if (clear && !Flash) throw new InvalidOperationException("Only flash attention sets its gradients.");
            fixed (bool* pad = _padding, glob = _global)
            fixed (int* lengths = _queryLengths)
            {
                var p = WithMasks(pad, glob, lengths);
                if (Flash) AttentionFlash.Backward(in p, q, k, v, o, saved, dO, dq, dk, dv, clear);
                else AttentionPlain.Backward(in p, q, k, v, saved, dO, dq, dk, dv);
            }
        }

        /// <summary>
        /// The problem with the key-padding and global-token flags and the query lengths (null when their arrays are
        /// empty) and the additive mask's broadcast strides (0 along size-1 dimensions).
        /// </summary>
        AttentionProblem WithMasks(bool* padding, bool* global, int* queryLengths)
        {
            var p = _problem with
            {
                KeyPadding = _padding.Length == 0 ? null : padding,
                Global = _global.Length == 0 ? null : global,
                QueryLengths = _queryLengths.Length == 0 ? null : queryLengths,
            };
            if (_mask is not { } mask) return p;
            Span<long> strides = stackalloc long[4];
            int[] sizes = [p.Batch, p.Heads, p.QueryLength, p.KeyLength];
            for (int d = 0; d < 4; d++)
            {
                int md = d - (4 - mask.Rank);
                strides[d] = md < 0 || mask._shape[md] == 1 || sizes[d] == 1 ? 0 : mask._strides[md];
            }
#pragma warning disable format
            return p with
            {
                Additive = mask.Pointer, AdditiveStrideB = strides[0], AdditiveStrideH = strides[1],
                AdditiveStrideQ = strides[2], AdditiveStrideK = strides[3],
            };
#pragma warning restore format
        }
    }

    /// <summary>
    /// A fresh (B, NH, T, HS) tensor laid out as (B, T, NH, HS) — the layout PyTorch's fused kernels return — so that
    /// concatenating the heads back into (B, T, NH·HS) is a view, not a copy.
    /// </summary>
    static Tensor HeadsOf(int b, int t, int nh, int hs) =>
        new(StoragePool.Rent(b * t * nh * hs), 0, [b, nh, t, hs], [t * nh * hs, hs, nh * hs, 1]);

    static Tensor UnitLastStride(Tensor x) => x._strides[3] == 1 || x._shape[3] == 1 ? x : x.Contiguous();

    /// <summary>The (B, H, T, HS) view of a tensor for the kernels (its last stride is 1).</summary>
    static HeadTensor Heads(Tensor x) => new(x.Pointer, x._strides[0], x._strides[1], x._strides[2]);

    /// <summary>The gradient buffer of an input, dense in its shape.</summary>
    static HeadTensor GradHeads(Tensor x)
    {
        x.GradBuffer();
        return HeadTensor.Dense(x.Grad!.Pointer, x._shape[1], x._shape[2], x._shape[3]);
    }

    /// <summary>(Tk) flags, true at the global positions; empty for none.</summary>
    static bool[] GlobalFlags(AttentionOptions options, int tk)
    {
        if (options.Window < 0)
            throw new ArgumentException($"Attention: the window must be positive, or 0 for none; got {options.Window}.");
        if (options.GlobalTokens.IsEmpty) return [];
        if (options.Window == 0)
            throw new ArgumentException(
                "Attention: global tokens belong to a sliding window; set AttentionOptions.Window too.");
        var flags = new bool[tk];
        foreach (int position in options.GlobalTokens.Span)
        {
            if (position < 0 || position >= tk)
                throw new ArgumentException(
                    $"Attention: global token position {position} is outside the {tk} key positions [0, {tk}).");
            flags[position] = true;
        }
        return flags;
    }

    static (int B, int NH, int Tq, int HS, int NKV, int Tk) CheckAttentionShapes(Tensor q, Tensor k, Tensor v,
        AttentionOptions options)
    {
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            throw new ArgumentException($"Attention needs (B, NH, T, HS) tensors; got q {ShapeMath.Format(q.Shape)}, " +
                $"k {ShapeMath.Format(k.Shape)}, v {ShapeMath.Format(v.Shape)}.");
        int b = q._shape[0], nh = q._shape[1], tq = q._shape[2], hs = q._shape[3];
        int nkv = k._shape[1], tk = k._shape[2];
        if (k._shape[0] != b || v._shape[0] != b || k._shape[3] != hs || !ShapeMath.SameShape(k.Shape, v.Shape))
            throw new ArgumentException($"Attention: k and v must be (B={b}, NKV, Tk, HS={hs}) and equal; " +
                $"got k {ShapeMath.Format(k.Shape)}, v {ShapeMath.Format(v.Shape)}.");
        if (nkv <= 0 || nh % nkv != 0)
            throw new ArgumentException(
                $"Attention: the number of key/value heads ({nkv}) must divide the number of query heads ({nh}).");
        if (options.AdditiveMask is { } m)
        {
            int[] target = [b, nh, tq, tk];
            bool fits = m.Rank <= 4;
            for (int i = 0; fits && i < m.Rank; i++) fits = m._shape[^(i + 1)] == 1 || m._shape[^(i + 1)] == target[^(i + 1)];
            if (!fits)
                throw new ArgumentException($"Attention: the additive mask {ShapeMath.Format(m.Shape)} does not broadcast to " +
                    $"(B, NH, Tq, Tk) = ({b}, {nh}, {tq}, {tk}).");
        }
        return (b, nh, tq, hs, nkv, tk);
    }
}
