// Source: Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding" (2021), eq. 34, in the half-split
// layout of GPT-NeoX and LLaMA (rotate_half), which pairs element i with element i + d/2 rather than 2i with 2i + 1.
namespace AttentionSharp.Nn;

/// <summary>
/// Rotary position embedding: each pair (x_i, x_{i+d/2}) of a query or key head is rotated by the angle p·θ_i, so that
/// q_m·k_n depends on the positions only through m − n. It has no parameters; it is differentiable (built from
/// differentiable ops), and the gradient is the inverse rotation.
/// </summary>
public sealed class RotaryEmbedding
{
    public RotaryEmbedding(int headSize, float @base = 10000f)
    {
        if (headSize <= 0 || headSize % 2 != 0)
            throw new ArgumentException($"Rotary position embedding rotates pairs of elements, so the head size must be positive and even; got {headSize}.", nameof(headSize));
        if (!(@base > 1f)) throw new ArgumentOutOfRangeException(nameof(@base), @base, "The rotary base must be greater than 1.");
        HeadSize = headSize; Base = @base;
    }

    /// <summary>HS (d): the size of the vectors rotated.</summary>
    public int HeadSize { get; }

    /// <summary>The base b of the frequencies θ_i = b^(−2i/d) (10000 in RoFormer and LLaMA).</summary>
    public float Base { get; }

    /// <summary>
    /// cos(p·θ_{j mod d/2}) and sin(p·θ_{j mod d/2}) for p = offset … offset + length − 1 and j = 0 … d − 1, each
    /// (length, HS); angles in double.
    /// </summary>
    public (Tensor Cos, Tensor Sin) Tables(int offset, int length)
    {
        int half = HeadSize / 2;
        var cos = Tensor.Zeros(length, HeadSize); var sin = Tensor.Zeros(length, HeadSize);
        var c = cos.Data; var s = sin.Data;
        for (int p = 0; p < length; p++)
            for (int i = 0; i < half; i++)
            {
                // θ_i = base^(−2i/d)
                double angle = (offset + p) * Math.Pow(Base, -2.0 * i / HeadSize);
                c[p * HeadSize + i] = c[p * HeadSize + i + half] = (float)Math.Cos(angle);
                s[p * HeadSize + i] = s[p * HeadSize + i + half] = (float)Math.Sin(angle);
            }
        return (cos, sin);
    }

    /// <summary>
    /// Rotates x (B, H, T, HS) whose tokens sit at positions offset … offset + T − 1. For i &lt; d/2:
    /// out_i = x_i·cos(pθ_i) − x_{i+d/2}·sin(pθ_i),  out_{i+d/2} = x_{i+d/2}·cos(pθ_i) + x_i·sin(pθ_i).
    /// </summary>
    public Tensor Apply(Tensor x, int offset = 0)
    {
        if (x.Rank != 4 || x.Size(3) != HeadSize)
            throw new ArgumentException($"Rotary embedding needs (B, H, T, HS = {HeadSize}) input; got {ShapeMath.Format(x.Shape)}.", nameof(x));
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset), offset, "The position offset must be non-negative.");
        int half = HeadSize / 2;
        var (cos, sin) = Tables(offset, x.Size(2));                                        // (T, HS) each
        var x1 = x.Narrow(-1, 0, half);                                                    // (B, H, T, HS/2)
        var x2 = x.Narrow(-1, half, half);
        var rotated = Tensor.Cat([-x2, x1], -1);                                           // rotate_half(x): (−x₂, x₁)
        // RoPE(x, p) = x ⊙ cos(pθ) + rotate_half(x) ⊙ sin(pθ)
        return x * cos + rotated * sin;                                                    // (B, H, T, HS)
    }
}
