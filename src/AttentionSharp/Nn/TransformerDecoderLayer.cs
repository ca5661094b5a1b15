// Source: Vaswani et al., "Attention Is All You Need" (2017), §3.1. Parameter names as torch.nn.TransformerDecoderLayer's
// (self_attn, multihead_attn, norm1–3), with the feed-forward pair under "ffn.".
namespace AttentionSharp.Nn;

/// <summary>
/// One decoder layer: causal self-attention, cross-attention over the encoder's output (the memory), then the
/// feed-forward block; each a residual branch with dropout, normalised after (post-LN) or before (pre-LN).
/// </summary>
public sealed class TransformerDecoderLayer : Module
{
    readonly Generator _dropoutRng;

    public TransformerDecoderLayer(TransformerConfig config, Generator rng, Generator? dropoutRng = null)
    {
        Config = config.Validate();
        _dropoutRng = RegisterGenerator("dropout", dropoutRng ?? new Generator(rng.NextUInt64()));
        SelfAttn = RegisterModule("self_attn", new MultiHeadAttention(config.Attention, rng, _dropoutRng));
        CrossAttn = RegisterModule("multihead_attn",
            new MultiHeadAttention(config.Attention with { PositionalEncoding = PositionalEncodingKind.None }, rng, _dropoutRng));
        Ffn = RegisterModule("ffn",
            new FeedForward(config.Width, config.FeedForwardWidth, config.Activation, rng, config.Dropout, config.Bias,
                _dropoutRng));
        Norm1 = RegisterModule("norm1", new LayerNorm(config.Width, config.LayerNormEps, config.Bias));
        Norm2 = RegisterModule("norm2", new LayerNorm(config.Width, config.LayerNormEps, config.Bias));
        Norm3 = RegisterModule("norm3", new LayerNorm(config.Width, config.LayerNormEps, config.Bias));
    }

    public TransformerConfig Config { get; }
    public MultiHeadAttention SelfAttn { get; }
    public MultiHeadAttention CrossAttn { get; }
    public FeedForward Ffn { get; }
    public LayerNorm Norm1 { get; }
    public LayerNorm Norm2 { get; }
    public LayerNorm Norm3 { get; }

    /// <summary>
    /// x (B, T, C) attends causally to itself and fully to <paramref name="memory"/> (B, Tm, C) → (B, T, C).
    /// <paramref name="selfMask"/> adds key padding or an additive mask to the always-causal self-attention;
    /// <paramref name="memoryMask"/> masks the memory (torch's memory_key_padding_mask). With a cache, x holds only the
    /// new positions, and the memory's keys and values are computed on the first step only.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor memory, AttentionMask? selfMask = null, AttentionMask? memoryMask = null,
        KvCacheLayer? cache = null)
    {
        var causal = (selfMask ?? AttentionMask.None) with { Causal = true };
        // Each residual sum runs inside the branch's last product (without dropout), and pre-LN each norm inside its
        // first (Fusion.cs).
        float p = Training ? Config.Dropout : 0f;
        if (Config.NormFirst)
        {
            // x + Dropout(SelfAttention(LN(x))), x + Dropout(CrossAttention(LN(x), memory)), x + FFN(LN(x))
            x = x + SelfAttn.SelfBranch(Norm1.Deferred(x), causal, cache, p, _dropoutRng);
            x = x + CrossAttn.CrossBranch(Norm2.Deferred(x), memory, memoryMask, cache, p, _dropoutRng);
            return x + Ffn.ForwardBranch(Norm3.Deferred(x));
        }
        // LN(x + Dropout(SelfAttention(x))), LN(x + Dropout(CrossAttention(x, memory))), LN(x + FFN(x))
        x = Norm1.Forward(x + SelfAttn.SelfBranch(x, causal, cache, p, _dropoutRng));
        x = Norm2.Forward(x + CrossAttn.CrossBranch(x, memory, memoryMask, cache, p, _dropoutRng));
        return Norm3.Forward(x + Ffn.ForwardBranch(x));
    }
}
