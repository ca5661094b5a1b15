namespace AttentionSharp.Nn;

/// <summary>How a model tells positions apart; attention itself is blind to order.</summary>
public enum PositionalEncodingKind
{
    /// <summary>No positions: self-attention is then permutation-equivariant (a bag of tokens).</summary>
    None,

    /// <summary>Fixed sines and cosines added to the embeddings (Vaswani et al. 2017, §3.5).</summary>
    Sinusoidal,

    /// <summary>A learned table of absolute positions added to the embeddings (GPT-2, BERT).</summary>
    Learned,

    /// <summary>Rotary embedding: q and k rotated by position inside attention (Su et al. 2021, RoFormer).</summary>
    Rotary,

    /// <summary>Attention with linear biases: −m·distance added to the scores (Press et al. 2022, ALiBi).</summary>
    Alibi,
}

/// <summary>
/// An encoding added to the embeddings before the first layer: (B, T, C) → (B, T, C). Rotary and ALiBi act inside
/// attention instead (see <see cref="RotaryEmbedding"/> and <see cref="Alibi"/>), so they have no module here.
/// </summary>
public abstract class PositionalEncoding : Module
{
    /// <summary>
    /// x + PE(offset … offset + T − 1); <paramref name="offset"/> is the position of x's first token (non-zero when
    /// decoding with a cache).
    /// </summary>
    public abstract Tensor Forward(Tensor x, int offset = 0);

    /// <summary>
    /// The module a model adds to its embeddings for <paramref name="kind"/>, or null when positions act inside
    /// attention or not at all.
    /// </summary>
    public static PositionalEncoding? Create(PositionalEncodingKind kind, int width, int maxLength, Generator rng) => kind switch
    {
        PositionalEncodingKind.Sinusoidal => new SinusoidalPositionalEncoding(width),
        PositionalEncodingKind.Learned => new LearnedPositionalEncoding(maxLength, width, rng),
        PositionalEncodingKind.None or PositionalEncodingKind.Rotary or PositionalEncodingKind.Alibi => null,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown positional encoding."),
    };

    /// <summary>Checks that x is (B, T, width) and returns T.</summary>
    protected static int CheckInput(Tensor x, int width, int offset)
    {
        if (x.Rank != 3 || x.Size(2) != width)
            throw new ArgumentException($"A positional encoding of width {width} needs (B, T, {width}) input; got " +
                $"{ShapeMath.Format(x.Shape)}.", nameof(x));
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset), offset,
            "The position offset must be non-negative.");
        return x.Size(1);
    }
}

/// <summary>
/// The fixed encoding of the original Transformer. Nothing is learned; any position can be encoded, so there is no length
/// limit. For an odd width the last column is a sine.
/// </summary>
public sealed class SinusoidalPositionalEncoding : PositionalEncoding
{
    public SinusoidalPositionalEncoding(int width)
    {
        if (width <= 0) throw new ArgumentException($"SinusoidalPositionalEncoding needs a positive width; got {width}.",
            nameof(width));
        Width = width;
    }

    public int Width { get; }

    /// <summary>
    /// PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model)), for pos = offset …
    /// offset + length − 1. Returns (length, C); angles are computed in double so large positions keep their precision.
    /// </summary>
    public Tensor Table(int offset, int length)
    {
        var table = Tensor.Zeros(length, Width);
        var d = table.Data;
        for (int p = 0; p < length; p++)
            for (int j = 0; j < Width; j++)
            {
                int twoI = j - (j & 1);
                double angle = (offset + p) / Math.Pow(10000.0, (double)twoI / Width);
                d[p * Width + j] = (float)((j & 1) == 0 ? Math.Sin(angle) : Math.Cos(angle));
            }
        return table;
    }

    public override Tensor Forward(Tensor x, int offset = 0)
    {
        int t = CheckInput(x, Width, offset);
        return x + Table(offset, t).To(x.Device);                                       // (B, T, C) + (T, C)
    }
}

/// <summary>
/// A learned table of <c>maxLength</c> absolute positions (parameter "weight", (maxLength, C), N(0, 0.02) as GPT-2's
/// wpe).
/// </summary>
public sealed class LearnedPositionalEncoding : PositionalEncoding
{
    public LearnedPositionalEncoding(int maxLength, int width, Generator rng)
    {
        if (maxLength <= 0 || width <= 0)
            throw new ArgumentException($"LearnedPositionalEncoding needs positive sizes; got maxLength = {maxLength}, " +
                $"width = {width}.");
        MaxLength = maxLength; Width = width;
        Weight = RegisterParameter("weight", Tensor.Normal(rng, 0f, 0.02f, maxLength, width));
    }

    public int MaxLength { get; }
    public int Width { get; }
    public Tensor Weight { get; }   // (maxLength, C)

    public override Tensor Forward(Tensor x, int offset = 0)
    {
        int t = CheckInput(x, Width, offset);
        if (offset + t > MaxLength)
            throw new ArgumentException($"The sequence reaches position {offset + t - 1}, but the learned position table " +
                $"has only {MaxLength} rows (positions 0 … {MaxLength - 1}).", nameof(x));
        var positions = new int[t];
        for (int i = 0; i < t; i++) positions[i] = offset + i;
        return x + Tensor.Embedding(Weight, positions, t);                              // (B, T, C) + (T, C)
    }
}
