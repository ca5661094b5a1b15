namespace AttentionSharp.Nn;

/// <summary>The shape of one multi-head attention layer.</summary>
public sealed record MultiHeadAttentionConfig
{
    /// <summary>C (d_model): the width of the inputs and of the output.</summary>
    public int Width { get; init; } = 512;

    /// <summary>NH (h): query heads; each has HS = d_k = C / NH dimensions.</summary>
    public int Heads { get; init; } = 8;

    /// <summary>NKV: key/value heads; null means NH (multi-head), 1 is multi-query, values between are grouped-query attention.</summary>
    public int? KvHeads { get; init; }

    /// <summary>Dropout probability on the attention weights during training.</summary>
    public float Dropout { get; init; }

    /// <summary>Whether the input and output projections have biases (torch.nn.MultiheadAttention: yes).</summary>
    public bool Bias { get; init; } = true;

    /// <summary>Rotary rotates q and k and Alibi biases the scores of self-attention; the other kinds act on embeddings and leave attention alone.</summary>
    public PositionalEncodingKind PositionalEncoding { get; init; }

    /// <summary>The base of the rotary frequencies θ_i = base^(−2i/HS).</summary>
    public float RotaryBase { get; init; } = 10000f;

    /// <summary>What self-attention computes: full, a sliding window with global tokens, or linear (cross-attention stays full).</summary>
    public AttentionPattern Attention { get; init; } = AttentionPattern.Full;

    /// <summary>HS (d_k = C / NH).</summary>
    public int HeadSize => Width / Heads;

    /// <summary>NKV resolved: <see cref="KvHeads"/> or <see cref="Heads"/>.</summary>
    public int KeyValueHeads => KvHeads ?? Heads;

    /// <summary>The attention of the base Transformer (Vaswani et al. 2017): d_model = 512, h = 8.</summary>
    public static MultiHeadAttentionConfig Base => new();

    /// <summary>Throws with the field, its value and the rule when the configuration cannot work.</summary>
    public MultiHeadAttentionConfig Validate()
    {
        ValidateShape(nameof(MultiHeadAttentionConfig), Width, Heads, KvHeads, PositionalEncoding, RotaryBase);
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"MultiHeadAttentionConfig.Dropout must be in [0, 1); got {Dropout}.");
        Attention.Validate(nameof(MultiHeadAttentionConfig), int.MaxValue);
        if (Attention.Kind == AttentionKind.Linear && PositionalEncoding == PositionalEncodingKind.Alibi)
            throw new ArgumentException("MultiHeadAttentionConfig: linear attention forms no scores for ALiBi to bias; use rotary or another PositionalEncoding.");
        return this;
    }

    /// <summary>The rules on widths and heads, shared with <see cref="TransformerConfig"/> (messages name <paramref name="record"/>'s fields).</summary>
    internal static void ValidateShape(string record, int width, int heads, int? kvHeads, PositionalEncodingKind positions, float rotaryBase)
    {
        if (heads <= 0) throw new ArgumentException($"{record}.Heads must be positive; got {heads}.");
        if (width <= 0 || width % heads != 0)
            throw new ArgumentException($"{record}.Width ({width}) must be a positive multiple of {record}.Heads ({heads}) so that every head gets Width / Heads dimensions.");
        if (kvHeads is { } nkv && (nkv <= 0 || heads % nkv != 0))
            throw new ArgumentException($"{record}.KvHeads ({nkv}) must be positive and divide {record}.Heads ({heads}): each key/value head serves Heads / KvHeads query heads.");
        if (!Enum.IsDefined(positions)) throw new ArgumentException($"{record}.PositionalEncoding has the unknown value {(int)positions}.");
        if (positions == PositionalEncodingKind.Rotary && (width / heads) % 2 != 0)
            throw new ArgumentException($"{record}.PositionalEncoding is Rotary, which rotates pairs, but the head size Width / Heads = {width} / {heads} = {width / heads} is odd.");
        if (positions == PositionalEncodingKind.Rotary && !(rotaryBase > 1f))
            throw new ArgumentException($"{record}.RotaryBase must be greater than 1; got {rotaryBase}.");
    }
}
