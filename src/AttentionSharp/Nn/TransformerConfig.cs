namespace AttentionSharp.Nn;

/// <summary>The shape of a stack of Transformer encoder or decoder layers.</summary>
public sealed record TransformerConfig
{
    /// <summary>L (N in the paper): the number of layers in the stack.</summary>
    public int Layers { get; init; } = 6;

    /// <summary>C (d_model): the width of the residual stream.</summary>
    public int Width { get; init; } = 512;

    /// <summary>NH (h): attention heads; HS = d_k = C / NH.</summary>
    public int Heads { get; init; } = 8;

    /// <summary>NKV: key/value heads of self- and cross-attention; null means NH, fewer gives grouped-query attention.</summary>
    public int? KvHeads { get; init; }

    /// <summary>d_ff: the hidden width of the feed-forward blocks.</summary>
    public int FeedForwardWidth { get; init; } = 2048;

    /// <summary>The feed-forward non-linearity.</summary>
    public FeedForwardActivation Activation { get; init; } = FeedForwardActivation.Relu;

    /// <summary>
    /// Dropout probability on the input sums, residual branches and feed-forward hidden units, and on the attention
    /// weights unless <see cref="AttentionDropout"/> is set (training only).
    /// </summary>
    public float Dropout { get; init; } = 0.1f;

    /// <summary>
    /// Dropout probability on the attention weights alone (training only); null means <see cref="Dropout"/>'s. The
    /// input sums, residual branches and feed-forward hidden units keep <see cref="Dropout"/>.
    /// </summary>
    public float? AttentionDropout { get; init; }

    /// <summary>
    /// Pre-LN (x + f(LN(x)), torch's norm_first=True) when true; post-LN (LN(x + f(x)), the paper's) when false.
    /// </summary>
    public bool NormFirst { get; init; }

    /// <summary>Whether the stack ends with a LayerNorm (needed after pre-LN layers, whose output is not normalised).</summary>
    public bool FinalNorm { get; init; }

    /// <summary>The ε inside LayerNorm's square root.</summary>
    public float LayerNormEps { get; init; } = 1e-5f;

    /// <summary>Whether Linear and LayerNorm layers have biases.</summary>
    public bool Bias { get; init; } = true;

    /// <summary>
    /// How positions are encoded: added to the input (Sinusoidal, Learned) or inside self-attention (Rotary, Alibi).
    /// </summary>
    public PositionalEncodingKind PositionalEncoding { get; init; } = PositionalEncodingKind.Sinusoidal;

    /// <summary>The longest sequence: the number of rows of a learned position table.</summary>
    public int MaxLength { get; init; } = 512;

    /// <summary>The base of the rotary frequencies θ_i = base^(−2i/HS).</summary>
    public float RotaryBase { get; init; } = 10000f;

    /// <summary>
    /// What self-attention computes: full (the paper), a sliding window with global tokens (bidirectional in an encoder,
    /// causal in a decoder), or linear. Cross-attention stays full.
    /// </summary>
    public AttentionPattern AttentionPattern { get; init; } = AttentionPattern.Full;

    /// <summary>
    /// The base model of Vaswani et al. (2017), Table 3: N = 6, d_model = 512, h = 8, d_ff = 2048, P_drop = 0.1, post-LN,
    /// sinusoidal positions.
    /// </summary>
    public static TransformerConfig Base => new();

    /// <summary>The big model of Vaswani et al. (2017), Table 3: d_model = 1024, h = 16, d_ff = 4096, P_drop = 0.3.</summary>
    public static TransformerConfig Big => new() { Width = 1024, Heads = 16, FeedForwardWidth = 4096, Dropout = 0.3f };

    /// <summary>A modern small stack that trains on two CPU cores: pre-LN with a final norm, GELU, rotary positions.</summary>
    public static TransformerConfig Small => new()
    {
        Layers = 4, Width = 128, Heads = 4, FeedForwardWidth = 512, Activation = FeedForwardActivation.Gelu,
        NormFirst = true, FinalNorm = true, PositionalEncoding = PositionalEncodingKind.Rotary, Dropout = 0f,
    };

    /// <summary>The configuration of each layer's attention.</summary>
    public MultiHeadAttentionConfig Attention => new()
    {
        Width = Width, Heads = Heads, KvHeads = KvHeads, Dropout = AttentionDropout ?? Dropout, Bias = Bias,
        PositionalEncoding = PositionalEncoding, RotaryBase = RotaryBase, Attention = AttentionPattern,
    };

    /// <summary>Throws with the field, its value and the rule when the configuration cannot work.</summary>
    public TransformerConfig Validate()
    {
        if (Layers <= 0) throw new ArgumentException($"TransformerConfig.Layers must be positive; got {Layers}.");
        MultiHeadAttentionConfig.ValidateShape(nameof(TransformerConfig), Width, Heads, KvHeads, PositionalEncoding, RotaryBase);
        if (FeedForwardWidth <= 0)
            throw new ArgumentException($"TransformerConfig.FeedForwardWidth must be positive; got {FeedForwardWidth}.");
        if (!Enum.IsDefined(Activation))
            throw new ArgumentException($"TransformerConfig.Activation has the unknown value {(int)Activation}.");
        if (!(Dropout >= 0 && Dropout < 1))
            throw new ArgumentException($"TransformerConfig.Dropout must be in [0, 1); got {Dropout}.");
        if (AttentionDropout is { } a && !(a >= 0 && a < 1))
            throw new ArgumentException($"TransformerConfig.AttentionDropout must be in [0, 1); got {a}.");
        if (!(LayerNormEps > 0))
            throw new ArgumentException($"TransformerConfig.LayerNormEps must be positive; got {LayerNormEps}.");
        if (MaxLength <= 0) throw new ArgumentException($"TransformerConfig.MaxLength must be positive; got {MaxLength}.");
        ValidatePattern(nameof(TransformerConfig), AttentionPattern, PositionalEncoding, MaxLength);
        return this;
    }

    /// <summary>The rules on an attention pattern and the positions beside it, shared by the configs built on this one.</summary>
    internal static void ValidatePattern(string record, AttentionPattern pattern, PositionalEncodingKind positions, int maxLength)
    {
        pattern.Validate(record, maxLength);
        if (pattern.Kind == AttentionKind.Linear && positions == PositionalEncodingKind.Alibi)
            throw new ArgumentException($"{record}: linear attention forms no scores for ALiBi to bias; " +
                                        "use learned, sinusoidal, rotary or no positions with it.");
    }
}
