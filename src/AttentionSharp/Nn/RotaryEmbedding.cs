// Source: Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding" (2021), eq. 34, in the half-split
// layout of GPT-NeoX and LLaMA (rotate_half), which pairs element i with element i + d/2 rather than 2i with 2i + 1.
namespace AttentionSharp.Nn;

/// <summary>
/// Rotary position embedding: each pair (x_i, x_{i+d/2}) of a query or key head is rotated by the angle p·θ_i, so that
/// q_m·k_n depends on the positions only through m − n. It has no parameters; it is differentiable (one fused op,
/// <see cref="Kernels.Rotary"/>, whose backward pass is the inverse rotation).
/// </summary>
public sealed class RotaryEmbedding
{
    public RotaryEmbedding(int headSize, float @base = 10000f)
    {
        if (headSize <= 0 || headSize % 2 != 0)
            throw new ArgumentException(
                "Rotary position embedding rotates pairs of elements, so the head size must be positive and even; " +
                $"got {headSize}.",
                nameof(headSize));
        if (!(@base > 1f)) throw new ArgumentOutOfRangeException(nameof(@base), @base, "The rotary base must be greater than 1.");
        HeadSize = headSize; Base = @base;
    }

    /// <summary>HS (d): the size of the vectors rotated.</summary>
    public int HeadSize { get; }

    /// <summary>The base b of the frequencies θ_i = b^(−2i/d) (10000 in RoFormer and LLaMA).</summary>
    public float Base { get; }

    /// <summary>
    /// Rotates x (B, H, T, HS) whose tokens sit at positions offset … offset + T − 1. For i &lt; d/2:
    /// out_i = x_i·cos(pθ_i) − x_{i+d/2}·sin(pθ_i),  out_{i+d/2} = x_{i+d/2}·cos(pθ_i) + x_i·sin(pθ_i).
    /// </summary>
    public Tensor Apply(Tensor x, int offset = 0)
    {
        if (x.Rank != 4 || x.Size(3) != HeadSize)
            throw new ArgumentException(
                $"Rotary embedding needs (B, H, T, HS = {HeadSize}) input; got {ShapeMath.Format(x.Shape)}.", nameof(x));
        var (cos, sin) = HalfTables(offset, x.Size(2));
        return Tensor.Rotary(x, 1, HeadSize, cos, sin);                                    // each (T, HS) row one head
    }

    /// <summary>
    /// Rotates the first <paramref name="heads"/> heads of each position of x (B, T, W), heads not yet split (a query or
    /// key projection, or a packed [Q K V] one whose query and key heads come first), tokens at positions offset …
    /// offset + T − 1; the columns after those heads pass through unchanged.
    /// </summary>
    public Tensor ApplyToHeads(Tensor x, int heads, int offset = 0)
    {
        if (x.Rank != 3 || heads <= 0 || (long)heads * HeadSize > x.Size(2))
            throw new ArgumentException(
                $"Rotary embedding of {heads} heads of {HeadSize} needs (B, T, W ≥ {(long)heads * HeadSize}) input; " +
                $"got {ShapeMath.Format(x.Shape)}.",
                nameof(x));
        var (cos, sin) = HalfTables(offset, x.Size(1));
        return Tensor.Rotary(x, heads, HeadSize, cos, sin);
    }

    /// <summary>The angles' cosines and sines for positions [First, First + Positions), each Positions × HS/2.</summary>
    sealed record AngleTables(float[] Cos, float[] Sin, int First, int Positions);

    AngleTables _tables = new([], [], 0, 0);

    /// <summary>Positions beyond this are not kept in the shared tables but formed for the call that needs them.</summary>
    const int MaxCachedPositions = 1 << 16;

    /// <summary>
    /// cos(p·θ_i) and sin(p·θ_i) for p = offset … offset + length − 1 and i &lt; d/2, each (length, HS/2): slices of
    /// tables computed once (angles in double) and grown when a later position needs them, up to
    /// <see cref="MaxCachedPositions"/>; positions past that are formed for the call alone. Safe to call from several
    /// threads.
    /// </summary>
    (ReadOnlyMemory<float> Cos, ReadOnlyMemory<float> Sin) HalfTables(int offset, int length)
    {
        if (offset < 0)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "The position offset must be non-negative.");
        int half = HeadSize / 2;
        long end = (long)offset + length;
        var tables = Volatile.Read(ref _tables);
        if (end > MaxCachedPositions) tables = Angles(offset, length);
        else if (tables.Positions < end)
        {
            tables = Angles(0, (int)Math.Min(MaxCachedPositions, Math.Max(Math.Max(end, 2L * tables.Positions), 64)));
            Volatile.Write(ref _tables, tables);
        }
        int start = (offset - tables.First) * half;
        return (tables.Cos.AsMemory(start, length * half), tables.Sin.AsMemory(start, length * half));
    }

    AngleTables Angles(int first, int positions)
    {
        int half = HeadSize / 2;
        var theta = new double[half];
        for (int i = 0; i < half; i++) theta[i] = Math.Pow(Base, -2.0 * i / HeadSize);            // θ_i = base^(−2i/d)
        var cos = new float[(long)positions * half]; var sin = new float[cos.Length];
        for (int p = 0; p < positions; p++)
            for (int i = 0; i < half; i++)
            {
                double angle = ((double)first + p) * theta[i];
                cos[(long)p * half + i] = (float)Math.Cos(angle);
                sin[(long)p * half + i] = (float)Math.Sin(angle);
            }
        return new AngleTables(cos, sin, first, positions);
    }
}
