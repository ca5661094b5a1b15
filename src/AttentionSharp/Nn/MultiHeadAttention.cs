// Source: Vaswani et al., "Attention Is All You Need" (2017), §3.2.2; parameter layout of torch.nn.MultiheadAttention;
// grouped-query attention from Ainslie et al., "GQA" (2023).
namespace AttentionSharp.Nn;

/// <summary>
/// MultiHead(Q, K, V) = Concat(head_1, …, head_h)·W^O with head_i = Attention(Q·W_i^Q, K·W_i^K, V·W_i^V).
/// Self-attention projects x to Q, K, V with one fused matrix; cross-attention takes queries from x and keys and values
/// from a memory, projected with the query rows and the key/value rows of the same matrix. With NKV &lt; NH key/value
/// heads (grouped-query attention) the fused matrix has (NH + 2·NKV)·HS rows.
/// </summary>
/// <remarks>
/// Parameter names and layouts equal torch.nn.MultiheadAttention's: in_proj_weight ((NH + 2·NKV)·HS, C) holding W^Q,
/// W^K, W^V stacked by rows, in_proj_bias, out_proj.weight (C, C), out_proj.bias; so its state dict loads as it is.
/// Rotary and ALiBi positions apply to self-attention only (a memory's positions are another sequence's). Between the
/// projections it is the shared <see cref="AttentionCore"/>.
/// </remarks>
public sealed class MultiHeadAttention : Module
{
    readonly AttentionCore _core;

    public MultiHeadAttention(MultiHeadAttentionConfig config, Generator rng, Generator? dropoutRng = null)
    {
        Config = config.Validate();
        _core = new AttentionCore(config, RegisterGenerator("dropout", dropoutRng ?? new Generator(rng.NextUInt64())));
        int c = config.Width, hs = config.HeadSize, qkvRows = (config.Heads + 2 * config.KeyValueHeads) * hs;
        // Initialised as torch.nn.MultiheadAttention: Xavier-uniform W^{Q,K,V}, bound √(6 / (fan_in + fan_out)); zero biases.
        float bound = MathF.Sqrt(6f / (c + qkvRows));
        InProjWeight = RegisterParameter("in_proj_weight", Tensor.Uniform(rng, -bound, bound, qkvRows, c));
        if (config.Bias) InProjBias = RegisterParameter("in_proj_bias", Tensor.Zeros(qkvRows));
        OutProj = RegisterModule("out_proj", new Linear(c, c, rng, config.Bias));
        OutProj.Bias?.Fill_(0f);
    }

    public MultiHeadAttentionConfig Config { get; }

    /// <summary>[W^Q; W^K; W^V], ((NH + 2·NKV)·HS, C).</summary>
    public Tensor InProjWeight { get; }

    /// <summary>[b^Q; b^K; b^V], ((NH + 2·NKV)·HS), or null without biases.</summary>
    public Tensor? InProjBias { get; }

    /// <summary>W^O: (C, C).</summary>
    public Linear OutProj { get; }

    /// <summary>Self-attention over x (B, T, C) → (B, T, C). With a cache, x holds only the new positions.</summary>
    public Tensor Forward(Tensor x, AttentionMask? mask = null, KvCacheLayer? cache = null) =>
        OutProj.Forward(Heads(x, null, mask ?? AttentionMask.None, cache, wantWeights: false).Output);

    /// <summary>Cross-attention: queries from x (B, Tq, C), keys and values from memory (B, Tk, C) → (B, Tq, C).</summary>
    public Tensor Forward(Tensor x, Tensor memory, AttentionMask? mask = null, KvCacheLayer? cache = null) =>
        OutProj.Forward(Heads(x, memory, mask ?? AttentionMask.None, cache, wantWeights: false).Output);

    /// <summary>
    /// Self-attention as a residual branch, Dropout(MultiHead(x)), not yet added: a pre-LN block's
    /// <c>x + mha.SelfBranch(ln.Deferred(x), …)</c> normalises inside the [Q K V] product and adds inside W^O's
    /// (<see cref="LinearInput"/>, <see cref="Branch"/>). Pass dropout 0 outside training.
    /// </summary>
    public Branch SelfBranch(LinearInput x, AttentionMask? mask, KvCacheLayer? cache, float dropout, Generator? dropoutRng) =>
        Branch.Projection(OutProj, Heads(x, null, mask ?? AttentionMask.None, cache, wantWeights: false).Output, dropout,
            dropoutRng);

    /// <summary>
    /// Cross-attention as a residual branch (see <see cref="SelfBranch"/>): queries from x, keys and values from memory.
    /// </summary>
    public Branch CrossBranch(LinearInput x, Tensor memory, AttentionMask? mask, KvCacheLayer? cache, float dropout,
        Generator? dropoutRng) =>
        Branch.Projection(OutProj, Heads(x, memory, mask ?? AttentionMask.None, cache, wantWeights: false).Output, dropout,
            dropoutRng);

    /// <summary>
    /// As <see cref="Forward(Tensor, AttentionMask?, KvCacheLayer?)"/> (or the cross form when <paramref name="memory"/> is
    /// given), also returning the attention weights per head (B, NH, Tq, Tk), before dropout, for visualisation.
    /// </summary>
    public (Tensor Output, Tensor Weights) ForwardWithWeights(Tensor x, Tensor? memory = null, AttentionMask? mask = null,
        KvCacheLayer? cache = null)
    {
        var (heads, weights) = Heads(x, memory, mask ?? AttentionMask.None, cache, wantWeights: true);
        return (OutProj.Forward(heads), weights!);
    }

    /// <summary>The heads merged, before W^O: (B, Tq, C), and the weights when asked.</summary>
    (Tensor Output, Tensor? Weights) Heads(LinearInput x, Tensor? memory, AttentionMask mask, KvCacheLayer? cache,
        bool wantWeights)
    {
        int c = Config.Width, nh = Config.Heads, nkv = Config.KeyValueHeads, hs = Config.HeadSize;
        CheckInput(x.X, "x", c);
        (Tensor Output, Tensor? Weights) y;
        if (memory is null)
        {
            // [Q K V] = x·[W^Q; W^K; W^V]ᵀ + [b^Q; b^K; b^V]: one fused projection
            var qkv = x.Through(InProjWeight, InProjBias);                                     // (B, T, (NH + 2·NKV)·HS)
            y = _core.SelfAttention(qkv, mask, cache, Training, wantWeights);                  // (B, T, C)
        }
        else
        {
            CheckInput(memory, "memory", c);
            // Packed sequences count as their packing's batch.
            if ((mask.KeyPacking?.Batch ?? memory.Size(0)) != (mask.Packing?.Batch ?? x.X.Size(0)))
                throw new ArgumentException("Cross-attention needs the memory's batch to equal x's; " +
                    $"got x {ShapeMath.Format(x.X.Shape)}, memory {ShapeMath.Format(memory.Shape)}.", nameof(memory));
            // Q = x·W^Qᵀ + b^Q;  [K V] = memory·[W^K; W^V]ᵀ + [b^K; b^V]
            var q = x.Through(InProjWeight.Narrow(0, 0, nh * hs), InProjBias?.Narrow(0, 0, nh * hs));          // (B, Tq, C)
            (Tensor, Tensor) MemoryKeysValues()
            {
                int rows = 2 * nkv * hs;
                var kv = Tensor.Linear(memory, InProjWeight.Narrow(0, nh * hs, rows), InProjBias?.Narrow(0, nh * hs, rows));
                var parts = kv.Split([nkv * hs, nkv * hs], 2);                                 // 2 × (B, Tm, NKV·HS)
                return (parts[0], parts[1]);
            }
            y = _core.CrossAttention(q, MemoryKeysValues, mask, cache, Training, wantWeights);  // (B, Tq, C)
        }
        return y;
    }

    static void CheckInput(Tensor t, string name, int width)
    {
        if (t.Rank != 3 || t.Size(2) != width)
            throw new ArgumentException(
                $"Multi-head attention of width {width} needs {name} shaped (B, T, {width}); got {ShapeMath.Format(t.Shape)}.",
                name);
    }
}
