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
/// Rotary and ALiBi positions apply to self-attention only (a memory's positions are another sequence's).
/// </remarks>
public sealed class MultiHeadAttention : Module
{
    readonly Generator _dropoutRng;
    readonly RotaryEmbedding? _rotary;
    readonly float[]? _alibiSlopes;

    public MultiHeadAttention(MultiHeadAttentionConfig config, Generator rng, Generator? dropoutRng = null)
    {
        Config = config.Validate();
        _dropoutRng = RegisterGenerator("dropout", dropoutRng ?? new Generator(rng.NextUInt64()));
        int c = config.Width, hs = config.HeadSize, qkvRows = (config.Heads + 2 * config.KeyValueHeads) * hs;
        // Initialised as torch.nn.MultiheadAttention: Xavier-uniform W^{Q,K,V}, bound √(6 / (fan_in + fan_out)); zero biases.
        float bound = MathF.Sqrt(6f / (c + qkvRows));
        InProjWeight = RegisterParameter("in_proj_weight", Tensor.Uniform(rng, -bound, bound, qkvRows, c));
        if (config.Bias) InProjBias = RegisterParameter("in_proj_bias", Tensor.Zeros(qkvRows));
        OutProj = RegisterModule("out_proj", new Linear(c, c, rng, config.Bias));
        OutProj.Bias?.Fill_(0f);
        if (config.PositionalEncoding == PositionalEncodingKind.Rotary) _rotary = new RotaryEmbedding(hs, config.RotaryBase);
        if (config.PositionalEncoding == PositionalEncodingKind.Alibi) _alibiSlopes = Alibi.Slopes(config.Heads);
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
        Attend(x, null, mask ?? AttentionMask.None, cache, wantWeights: false).Output;

    /// <summary>Cross-attention: queries from x (B, Tq, C), keys and values from memory (B, Tk, C) → (B, Tq, C).</summary>
    public Tensor Forward(Tensor x, Tensor memory, AttentionMask? mask = null, KvCacheLayer? cache = null) =>
        Attend(x, memory, mask ?? AttentionMask.None, cache, wantWeights: false).Output;

    /// <summary>
    /// As <see cref="Forward(Tensor, AttentionMask?, KvCacheLayer?)"/> (or the cross form when <paramref name="memory"/> is
    /// given), also returning the attention weights per head (B, NH, Tq, Tk), before dropout, for visualisation.
    /// </summary>
    public (Tensor Output, Tensor Weights) ForwardWithWeights(Tensor x, Tensor? memory = null, AttentionMask? mask = null, KvCacheLayer? cache = null)
    {
        var (output, weights) = Attend(x, memory, mask ?? AttentionMask.None, cache, wantWeights: true);
        return (output, weights!);
    }

    (Tensor Output, Tensor? Weights) Attend(Tensor x, Tensor? memory, AttentionMask mask, KvCacheLayer? cache, bool wantWeights)
    {
        int c = Config.Width, nh = Config.Heads, nkv = Config.KeyValueHeads, hs = Config.HeadSize;
        CheckInput(x, "x", c);
        int b = x.Size(0), tq = x.Size(1);
        Tensor q, k, v;
        Tensor? additive = mask.Additive;
        // Causal linear self-attention decodes through the cache's recurrent state instead of its keys.
        bool recurrent = memory is null && cache is not null && mask.Causal && Config.Attention.Kind == AttentionKind.Linear;
        if (memory is null)
        {
            // [Q K V] = x·[W^Q; W^K; W^V]ᵀ + [b^Q; b^K; b^V]: one fused projection
            var qkv = Tensor.Linear(x, InProjWeight, InProjBias).Split([nh * hs, nkv * hs, nkv * hs], 2);
            q = SplitHeads(qkv[0], nh);                                                        // (B, NH, T, HS)
            k = SplitHeads(qkv[1], nkv);                                                       // (B, NKV, T, HS)
            v = SplitHeads(qkv[2], nkv);
            int offset = cache?.Length ?? 0;
            if (_rotary is not null) { q = _rotary.Apply(q, offset); k = _rotary.Apply(k, offset); }
            if (cache is not null && !recurrent) (k, v) = cache.Append(k, v, mask.Causal ? Config.Attention.CacheWindow : null); // (B, NKV, T_so_far, HS)
            if (_alibiSlopes is not null)
            {
                var bias = Alibi.Bias(_alibiSlopes, tq, k.Size(2));                            // (1, NH, Tq, Tk)
                additive = additive is null ? bias : additive + bias;
            }
        }
        else
        {
            CheckInput(memory, "memory", c);
            if (memory.Size(0) != b)
                throw new ArgumentException($"Cross-attention needs the memory's batch to equal x's; got x {ShapeMath.Format(x.Shape)}, memory {ShapeMath.Format(memory.Shape)}.", nameof(memory));
            // Q = x·W^Qᵀ + b^Q;  [K V] = memory·[W^K; W^V]ᵀ + [b^K; b^V]
            q = SplitHeads(Tensor.Linear(x, InProjWeight.Narrow(0, 0, nh * hs), InProjBias?.Narrow(0, 0, nh * hs)), nh);
            if (cache?.MemoryKeys is { } cachedK && cache.MemoryValues is { } cachedV) (k, v) = (cachedK, cachedV);
            else
            {
                int rows = 2 * nkv * hs;
                var kv = Tensor.Linear(memory, InProjWeight.Narrow(0, nh * hs, rows), InProjBias?.Narrow(0, nh * hs, rows)).Split([nkv * hs, nkv * hs], 2);
                k = SplitHeads(kv[0], nkv);                                                    // (B, NKV, Tk, HS)
                v = SplitHeads(kv[1], nkv);
                cache?.SetMemory(k, v);
            }
        }

        var options = new AttentionOptions
        {
            Causal = mask.Causal, KeyPadding = mask.KeyPadding, AdditiveMask = additive,
            Dropout = Training ? Config.Dropout : 0f, DropoutRng = _dropoutRng,
        };
        // Self-attention computes the configured pattern; cross-attention is always full.
        var pattern = memory is null ? Config.Attention : AttentionPattern.Full;
        Tensor y; Tensor? weights = null;
        if (wantWeights)
        {
            if (pattern.Kind == AttentionKind.Linear) throw new InvalidOperationException("Linear attention forms no attention weights to return.");
            (y, weights) = Tensor.ScaledDotProductAttentionWithWeights(q, k, v, pattern.Restrict(options, k.Size(2)));
        }
        else if (recurrent) y = cache!.AttendLinear(q, k, v);                                  // (B, NH, Tq, HS)
        else y = pattern.Attend(q, k, v, options);
        y = y.Transpose(1, 2).Reshape(b, tq, nh * hs);                                         // Concat(head_1, …, head_h): (B, Tq, C)
        return (OutProj.Forward(y), weights);                                                  // ·W^O
    }

    /// <summary>(B, T, heads·HS) → (B, heads, T, HS).</summary>
    Tensor SplitHeads(Tensor t, int heads) => t.Reshape(t.Size(0), t.Size(1), heads, Config.HeadSize).Transpose(1, 2);

    static void CheckInput(Tensor t, string name, int width)
    {
        if (t.Rank != 3 || t.Size(2) != width)
            throw new ArgumentException($"Multi-head attention of width {width} needs {name} shaped (B, T, {width}); got {ShapeMath.Format(t.Shape)}.", name);
    }
}
