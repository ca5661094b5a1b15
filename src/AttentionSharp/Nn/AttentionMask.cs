namespace AttentionSharp.Nn;

/// <summary>
/// What one attention call may not look at, or is biased against; passed through to
/// <see cref="Tensor.ScaledDotProductAttention"/>.
/// </summary>
public sealed record AttentionMask
{
    /// <summary>
    /// Query i sees key j only when j ≤ i + (Tk − Tq) (bottom-right aligned, so a cached decoding step sees everything
    /// so far).
    /// </summary>
    public bool Causal { get; init; }

    /// <summary>(B × Tk) flags, true where a key is padding (torch's key_padding_mask); empty for none.</summary>
    public ReadOnlyMemory<bool> KeyPadding { get; init; }

    /// <summary>
    /// Added to the scores (−∞ forbids); any shape that broadcasts to (B, NH, Tq, Tk) (torch's float attn_mask).
    /// </summary>
    public Tensor? Additive { get; init; }

    /// <summary>
    /// The queries' sequences when they are packed into one row, (1, N, ·) (<see cref="SequencePacking"/>): attention
    /// unpacks them to (B, T, ·), masks the padding and packs its output; null when each row is a sequence. In
    /// self-attention the keys are the same sequences.
    /// </summary>
    public SequencePacking? Packing { get; init; }

    /// <summary>Cross-attention: the memory's sequences when the memory is packed too; null when it is (B, Tm, C).</summary>
    public SequencePacking? KeyPacking { get; init; }

    /// <summary>
    /// The query rows each batch row needs (<see cref="AttentionOptions.QueryLengths"/>); set where packed queries are
    /// unpacked, whose padded rows the packing drops again.
    /// </summary>
    internal ReadOnlyMemory<int> QueryLengths { get; init; }

    /// <summary>No mask: every query sees every key.</summary>
    public static AttentionMask None { get; } = new();

    /// <summary>The causal mask alone.</summary>
    public static AttentionMask CausalOnly { get; } = new() { Causal = true };
}
