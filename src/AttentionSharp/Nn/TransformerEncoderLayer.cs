// Source: Vaswani et al., "Attention Is All You Need" (2017), §3.1 and §5.4; pre-LN as in Xiong et al., "On Layer
// Normalization in the Transformer Architecture" (2020). Parameter names as torch.nn.TransformerEncoderLayer's, with the
// feed-forward pair under "ffn." (ffn.linear1, ffn.linear2).
namespace AttentionSharp.Nn;

/// <summary>
/// One encoder layer: bidirectional self-attention, then the feed-forward block, each a residual branch with dropout.
/// Post-LN (the paper): x = LayerNorm(x + Sublayer(x)). Pre-LN (<see cref="TransformerConfig.NormFirst"/>):
/// x = x + Sublayer(LayerNorm(x)).
/// </summary>
public sealed class TransformerEncoderLayer : Module
{
    readonly Generator _dropoutRng;

    public TransformerEncoderLayer(TransformerConfig config, Generator rng, Generator? dropoutRng = null)
    {
        Config = config.Validate();
        _dropoutRng = RegisterGenerator("dropout", dropoutRng ?? new Generator(rng.NextUInt64()));
        SelfAttn = RegisterModule("self_attn", new MultiHeadAttention(config.Attention, rng, _dropoutRng));
        Ffn = RegisterModule("ffn",
            new FeedForward(config.Width, config.FeedForwardWidth, config.Activation, rng, config.Dropout, config.Bias,
                _dropoutRng));
        Norm1 = RegisterModule("norm1", new LayerNorm(config.Width, config.LayerNormEps, config.Bias));
        Norm2 = RegisterModule("norm2", new LayerNorm(config.Width, config.LayerNormEps, config.Bias));
    }

    public TransformerConfig Config { get; }
    public MultiHeadAttention SelfAttn { get; }
    public FeedForward Ffn { get; }
    public LayerNorm Norm1 { get; }
    public LayerNorm Norm2 { get; }

    /// <summary>
    /// (B, T, C) → (B, T, C); <paramref name="mask"/> carries key padding (torch's src_key_padding_mask) or an additive mask.
    /// </summary>
    public Tensor Forward(Tensor x, AttentionMask? mask = null)
    {
        // Each residual sum runs inside the branch's last product (without dropout), and pre-LN each norm inside its
        // first (Fusion.cs).
        float p = Training ? Config.Dropout : 0f;
        if (Config.NormFirst)
        {
            x = x + SelfAttn.SelfBranch(Norm1.Deferred(x), mask, null, p, _dropoutRng);      // x + Dropout(SelfAttention(LN(x)))
            return x + Ffn.ForwardBranch(Norm2.Deferred(x));                                   // x + FFN(LN(x))
        }
        x = Norm1.Forward(x + SelfAttn.SelfBranch(x, mask, null, p, _dropoutRng));           // LN(x + Dropout(SelfAttention(x)))
        return Norm2.Forward(x + Ffn.ForwardBranch(x));                                        // LN(x + FFN(x))
    }
}
