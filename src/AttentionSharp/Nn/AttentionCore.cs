// Sources: Vaswani et al., "Attention Is All You Need" (2017), §3.2; Su et al., "RoFormer" (2021); Press et al.,
// "ALiBi" (2022); Beltagy et al., "Longformer" (2020); Katharopoulos et al., "Transformers are RNNs" (2020).
namespace AttentionSharp.Nn;

/// <summary>
/// The attention every model shares, between its projections: split heads → positions inside attention (RoPE rotates
/// q and k, ALiBi biases the scores) → K/V cache → pattern (full, sliding window with global tokens, or linear) →
/// merge heads. Self-attention (bidirectional, or causal when the mask says so) and cross-attention over a memory.
/// It owns no parameters: the models keep their projections under their own checkpoint names and hand it Q, K and V.
/// Letters: B batch, T time, NH query heads, NKV key/value heads, HS head size.
/// </summary>
/// <remarks>
/// Self-attention from one fused projection runs the heads in place (<see cref="Tensor.PackedSelfAttention"/>)
/// whenever nothing needs the heads split: no cache, softmax attention, NKV = NH (rotary positions rotate the packed
/// query and key heads first).
/// Linear attention forms no scores, so it takes no ALiBi and cannot skip padding keys: a batch with padding is
/// refused.
/// </remarks>
public sealed class AttentionCore
{
    readonly RotaryEmbedding? _rotary;
    readonly float[]? _alibiSlopes;
    readonly Generator _dropoutRng;

    /// <summary>Attention shaped by <paramref name="config"/> (its Bias belongs to the projections).</summary>
    public AttentionCore(MultiHeadAttentionConfig config, Generator dropoutRng)
    {
        Config = config.Validate();
        _dropoutRng = dropoutRng;
        if (config.PositionalEncoding == PositionalEncodingKind.Rotary)
            _rotary = new RotaryEmbedding(config.HeadSize, config.RotaryBase);
        if (config.PositionalEncoding == PositionalEncodingKind.Alibi) _alibiSlopes = Alibi.Slopes(config.Heads);
    }

    public MultiHeadAttentionConfig Config { get; }

    int NH => Config.Heads;
    int NKV => Config.KeyValueHeads;
    int HS => Config.HeadSize;

    /// <summary>
    /// Self-attention from a fused projection <paramref name="qkv"/> (B, T, (NH + 2·NKV)·HS) holding [Q K V]
    /// → (B, T, NH·HS). With a cache, the T positions follow the cached ones (decode under GradMode.NoGrad()); with
    /// one cache per row, each row's follow its own.
    /// </summary>
    public Tensor SelfAttention(Tensor qkv, AttentionMask mask, LayerCache cache, bool training)
    {
        if (cache.Rows is not { } rows) return SelfAttention(qkv, mask, cache.Batch, training, wantWeights: false).Output;
        // Independent sequences, one cache each: every row attends over its own positions (T = 1 per row when decoding).
        if (rows.Count != qkv.Size(0))
            throw new ArgumentException($"Expected one cache per batch row ({qkv.Size(0)}); got {rows.Count}.", nameof(cache));
        var outputs = new Tensor[rows.Count];
        for (int b = 0; b < outputs.Length; b++)
            outputs[b] = SelfAttention(qkv.Narrow(0, b, 1), mask, rows[b], training, wantWeights: false).Output;
        return outputs.Length == 1 ? outputs[0] : Tensor.Cat(outputs, 0);                   // (B, T, NH·HS)
    }

    /// <summary>As the fused form, from separate projections q (B, T, NH·HS) and k, v (B, T, NKV·HS).</summary>
    public Tensor SelfAttention(Tensor q, Tensor k, Tensor v, AttentionMask mask, KvCacheLayer? cache, bool training) =>
        SelfHeads(q, k, v, mask, cache, training, wantWeights: false).Output;

    /// <summary>
    /// Cross-attention: queries q (B, Tq, NH·HS) over a memory whose key and value projections (B, Tm, NKV·HS) each
    /// <paramref name="projectMemory"/> forms; with a cache they are formed on the first call only and kept. Always
    /// full attention without positions (the memory's positions are another sequence's) → (B, Tq, NH·HS).
    /// </summary>
    public Tensor CrossAttention(Tensor q, Func<(Tensor K, Tensor V)> projectMemory, AttentionMask mask,
        KvCacheLayer? cache, bool training) =>
        CrossAttention(q, projectMemory, mask, cache, training, wantWeights: false).Output;

    /// <summary>The fused self-attention, also returning the weights (B, NH, T, Tk) before dropout if asked.</summary>
    internal (Tensor Output, Tensor? Weights) SelfAttention(Tensor qkv, AttentionMask mask, KvCacheLayer? cache,
        bool training, bool wantWeights)
    {
        if (mask.Packing is { } packing)
        {
            // Packed sequences (1, N, ·): attend over each one's own positions in the padded form, then pack again.
            var (y, w) = SelfAttention(packing.Unpack(qkv), Unpacked(mask, packing, cache, packing), cache, training,
                wantWeights);
            return (packing.Pack(y), w);
        }
        int t = qkv.Size(1);
        bool packed = cache is null && Config.Attention.Kind != AttentionKind.Linear && NKV == NH;
        if (packed && !wantWeights)
        {
            // Training and whole-sequence evaluation: the heads are read in place from the fused projection, the query
            // and key heads rotated first (RoPE) where the model has rotary positions.
            if (_rotary is not null) qkv = _rotary.ApplyToHeads(qkv, NH + NKV);
            var options = Config.Attention.Restrict(Options(mask, t, t, training, positions: true), t);
            return (Tensor.PackedSelfAttention(qkv, NH, options), null);                     // (B, T, NH·HS)
        }
        var parts = qkv.Split([NH * HS, NKV * HS, NKV * HS], 2);        // (B, T, NH·HS), 2 × (B, T, NKV·HS)
        return SelfHeads(parts[0], parts[1], parts[2], mask, cache, training, wantWeights);
    }

    internal (Tensor Output, Tensor? Weights) SelfHeads(Tensor q, Tensor k, Tensor v, AttentionMask mask,
        KvCacheLayer? cache, bool training, bool wantWeights)
    {
        if (mask.Packing is { } packing)
        {
            var (heads, w) = SelfHeads(packing.Unpack(q), packing.Unpack(k), packing.Unpack(v),
                Unpacked(mask, packing, cache, packing), cache, training, wantWeights);
            return (packing.Pack(heads), w);
        }
        int b = q.Size(0), t = q.Size(1);
        var pattern = Config.Attention;
        int offset = cache?.Length ?? 0;
        if (_rotary is not null) { q = _rotary.ApplyToHeads(q, NH, offset); k = _rotary.ApplyToHeads(k, NKV, offset); }
        q = SplitHeads(q, NH);                                                                // (B, NH, T, HS)
        k = SplitHeads(k, NKV);                                                               // (B, NKV, T, HS)
        v = SplitHeads(v, NKV);
        Tensor y; Tensor? weights = null;
        if (cache is not null && mask.Causal && pattern.Kind == AttentionKind.Linear && !wantWeights)
            y = cache.AttendLinear(q, k, v);                                    // causal linear: the recurrent state
        else
        {
            // (B, NKV, T_so_far, HS), or a causal window's last keys
            if (cache is not null) (k, v) = cache.Append(k, v, mask.Causal ? pattern.CacheWindow : null);
            var options = Options(mask, t, k.Size(2), training, positions: true);
            (y, weights) = Attend(pattern, q, k, v, options, wantWeights);
        }                                                                                     // y: (B, NH, T, HS)
        return (MergeHeads(y, b, t), weights);
    }

    internal (Tensor Output, Tensor? Weights) CrossAttention(Tensor q, Func<(Tensor K, Tensor V)> projectMemory,
        AttentionMask mask, KvCacheLayer? cache, bool training, bool wantWeights)
    {
        if (mask.Packing is not null || mask.KeyPacking is not null)
        {
            // Packed queries and/or a packed memory: unpacked to (B, T, ·), the memory's padding masked, the output
            // packed like the queries.
            var queries = mask.Packing;
            var memory = mask.KeyPacking;
            if (queries is not null) q = queries.Unpack(q);
            var unpacked = Unpacked(mask, memory, cache, queries) with { Packing = null };
            var (heads, w) = CrossAttention(q, memory is null ? projectMemory : () =>
            {
                var (k, v) = projectMemory();
                return (memory.Unpack(k), memory.Unpack(v));
            }, unpacked, cache, training, wantWeights);
            return (queries?.Pack(heads) ?? heads, w);
        }
        int b = q.Size(0), tq = q.Size(1);
        q = SplitHeads(q, NH);                                                                // (B, NH, Tq, HS)
        Tensor k, v;
        if (cache?.MemoryKeys is { } cachedK && cache.MemoryValues is { } cachedV) (k, v) = (cachedK, cachedV);
        else
        {
            var (mk, mv) = projectMemory();
            if (mk.Size(0) != b)
                throw new ArgumentException(
                    $"Cross-attention needs the memory's batch to equal the queries'; got {mk.Size(0)} and {b}.");
            k = SplitHeads(mk, NKV);                                                          // (B, NKV, Tm, HS)
            v = SplitHeads(mv, NKV);
            cache?.SetMemory(k, v);
        }
        var options = Options(mask, tq, k.Size(2), training, positions: false);
        var (y, weights) = Attend(AttentionPattern.Full, q, k, v, options, wantWeights);
        return (MergeHeads(y, b, tq), weights);
    }

    /// <summary>
    /// The mask of packed sequences' unpacked form: no packing, the keys' padding (of <paramref name="keys"/>, when
    /// they are packed) masked, and only the queries' own rows computed (of <paramref name="queries"/>, when packed:
    /// the padded rows, which packing the output drops, are skipped). Packing is for whole sequences, so there is no
    /// cache, and key padding comes from it.
    /// </summary>
    static AttentionMask Unpacked(AttentionMask mask, SequencePacking? keys, KvCacheLayer? cache, SequencePacking? queries)
    {
        if (cache is not null)
            throw new ArgumentException("Packed sequences are for whole-sequence passes; decoding with a K/V cache " +
                                        "takes (B, T, C) rows.");
        if (queries is not null) mask = mask with { QueryLengths = queries.QueryLengths };
        if (keys is null) return mask with { KeyPacking = null };
        if (!mask.KeyPadding.IsEmpty)
            throw new ArgumentException("Packed keys carry their own padding; pass no KeyPadding with them.");
        return mask with { Packing = null, KeyPacking = null, KeyPadding = keys.Padding };
    }

    /// <summary>Attention(Q, K, V) = softmax(QKᵀ/√d_k + M)·V as the pattern computes it (or linear attention).</summary>
    static (Tensor Output, Tensor? Weights) Attend(AttentionPattern pattern, Tensor q, Tensor k, Tensor v,
        AttentionOptions options, bool wantWeights)
    {
        if (!wantWeights) return (pattern.Attend(q, k, v, options), null);
        if (pattern.Kind == AttentionKind.Linear)
            throw new InvalidOperationException("Linear attention forms no attention weights to return.");
        var (y, w) = Tensor.ScaledDotProductAttentionWithWeights(q, k, v, pattern.Restrict(options, k.Size(2)));
        return (y, w);
    }

    /// <summary>
    /// The masks of one call: the caller's causal flag, key padding and additive mask, plus ALiBi's bias −m_h·|i − j|
    /// over the Tk keys (self-attention only), and attention dropout in training.
    /// </summary>
    AttentionOptions Options(AttentionMask mask, int queries, int keys, bool training, bool positions)
    {
        var additive = mask.Additive;
        if (positions && _alibiSlopes is not null)
        {
            var bias = Alibi.Bias(_alibiSlopes, queries, keys);                               // (1, NH, Tq, Tk)
            additive = additive is null ? bias : additive + bias;
        }
        var padding = mask.KeyPadding;
        if (Config.Attention.Kind == AttentionKind.Linear && positions && !padding.IsEmpty)
        {
            if (padding.Span.Contains(true))
                throw new ArgumentException("Linear attention forms no weights, so it cannot skip padding keys; this " +
                    "batch has padding. Use sequences of one length, or full or sliding-window attention.");
            padding = default;                                                                // nothing to skip
        }
        return new AttentionOptions
        {
            Causal = mask.Causal, KeyPadding = padding, AdditiveMask = additive, QueryLengths = mask.QueryLengths,
            Dropout = training ? Config.Dropout : 0f, DropoutRng = _dropoutRng,
        };
    }

    /// <summary>(B, T, heads·HS) → (B, heads, T, HS).</summary>
    Tensor SplitHeads(Tensor x, int heads)
    {
        if (x.Rank != 3 || x.Size(2) != heads * HS)
            throw new ArgumentException(
                $"Attention needs projections shaped (B, T, {heads}·{HS}); got {ShapeMath.Format(x.Shape)}.");
        return x.Reshape(x.Size(0), x.Size(1), heads, HS).Transpose(1, 2);
    }

    /// <summary>Concat(head_1, …, head_h): (B, NH, T, HS) → (B, T, NH·HS).</summary>
    Tensor MergeHeads(Tensor y, int b, int t) => y.Transpose(1, 2).Reshape(b, t, NH * HS);
}
