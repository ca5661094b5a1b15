namespace AttentionSharp;

/// <summary>Which algorithm computes attention; both honour the same contract.</summary>
public enum AttentionImplementation
{
    /// <summary>The fastest path that can give what was asked (weights requested → plain).</summary>
    Auto,

    /// <summary>Materialises the (Tq, Tk) weights: softmax(QKᵀ·scale + mask)·V.</summary>
    Plain,

    /// <summary>Tiled with an online softmax; never holds the (Tq, Tk) weights (FlashAttention-2).</summary>
    Flash,
}

/// <summary>The masks and knobs of scaled dot-product attention.</summary>
public sealed record AttentionOptions
{
    /// <summary>
    /// Query i may attend key j only when j ≤ i + (Tk − Tq): the usual causal mask when Tq = Tk, and the right one for
    /// decoding with a K/V cache (the new queries are the last Tq positions).
    /// </summary>
    public bool Causal { get; init; }

    /// <summary>Added to the scores before softmax (use −∞ to forbid); any shape that broadcasts to (B, NH, Tq, Tk).</summary>
    public Tensor? AdditiveMask { get; init; }

    /// <summary>(B × Tk) flags, true where a key is padding and must be ignored.</summary>
    public ReadOnlyMemory<bool> KeyPadding { get; init; }

    /// <summary>The factor on QKᵀ; default 1/√HS.</summary>
    public float? Scale { get; init; }

    /// <summary>Dropout probability on the attention weights (training only).</summary>
    public float Dropout { get; init; }

    /// <summary>The generator dropout draws from; required when <see cref="Dropout"/> &gt; 0.</summary>
    public Generator? DropoutRng { get; init; }

    public AttentionImplementation Implementation { get; init; } = AttentionImplementation.Auto;
}

public sealed unsafe partial class Tensor
{
    /// <summary>
    /// Attention(Q, K, V) = softmax(QKᵀ·scale + mask)·V (Vaswani et al. 2017, eq. 1) for Q (B, NH, Tq, HS) and K, V
    /// (B, NKV, Tk, HS), where NKV divides NH (grouped-query attention: query head h reads K/V head h / (NH/NKV)).
    /// Returns (B, NH, Tq, HS).
    /// </summary>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, AttentionOptions? options = null) =>
        Attention(q, k, v, options ?? new AttentionOptions(), wantWeights: false).Output;

    /// <summary>As <see cref="ScaledDotProductAttention"/>, also returning the (B, NH, Tq, Tk) attention weights (plain path).</summary>
    public static (Tensor Output, Tensor Weights) ScaledDotProductAttentionWithWeights(Tensor q, Tensor k, Tensor v, AttentionOptions? options = null)
    {
        var (o, w) = Attention(q, k, v, options ?? new AttentionOptions(), wantWeights: true);
        return (o, w!);
    }

    static (Tensor Output, Tensor? Weights) Attention(Tensor q, Tensor k, Tensor v, AttentionOptions options, bool wantWeights)
    {
        var (b, nh, tq, hs, nkv, tk) = CheckAttentionShapes(q, k, v, options);
        float scale = options.Scale ?? 1f / MathF.Sqrt(hs);
        if (nkv != nh) { k = RepeatHeads(k, nh / nkv); v = RepeatHeads(v, nh / nkv); }

        var scores = q.MatMul(k.Transpose(-2, -1)) * scale;                               // (B, NH, Tq, Tk)
        if (options.AdditiveMask is { } additive) scores = scores + additive;
        if (options.Causal || !options.KeyPadding.IsEmpty) scores = scores + BuiltMask(b, tq, tk, options);
        var weights = scores.Softmax(-1);
        var dropped = options.Dropout > 0
            ? weights.Dropout(options.Dropout, training: true, options.DropoutRng ?? throw new ArgumentException("Attention dropout needs a DropoutRng."))
            : weights;
        return (dropped.MatMul(v), wantWeights ? weights : null);                        // (B, NH, Tq, HS)
    }

    static (int B, int NH, int Tq, int HS, int NKV, int Tk) CheckAttentionShapes(Tensor q, Tensor k, Tensor v, AttentionOptions options)
    {
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            throw new ArgumentException($"Attention needs (B, NH, T, HS) tensors; got q {ShapeMath.Format(q.Shape)}, k {ShapeMath.Format(k.Shape)}, v {ShapeMath.Format(v.Shape)}.");
        int b = q._shape[0], nh = q._shape[1], tq = q._shape[2], hs = q._shape[3];
        int nkv = k._shape[1], tk = k._shape[2];
        if (k._shape[0] != b || v._shape[0] != b || k._shape[3] != hs || !ShapeMath.SameShape(k.Shape, v.Shape))
            throw new ArgumentException($"Attention: k and v must be (B={b}, NKV, Tk, HS={hs}) and equal; got k {ShapeMath.Format(k.Shape)}, v {ShapeMath.Format(v.Shape)}.");
        if (nkv <= 0 || nh % nkv != 0)
            throw new ArgumentException($"Attention: the number of key/value heads ({nkv}) must divide the number of query heads ({nh}).");
        if (!options.KeyPadding.IsEmpty && options.KeyPadding.Length != b * tk)
            throw new ArgumentException($"Attention: the key-padding mask has {options.KeyPadding.Length} flags; (B={b}) × (Tk={tk}) = {b * tk} are needed.");
        if (options.AdditiveMask is { } m)
        {
            int[] target = [b, nh, tq, tk];
            bool fits = m.Rank <= 4;
            for (int i = 0; fits && i < m.Rank; i++) fits = m._shape[^(i + 1)] == 1 || m._shape[^(i + 1)] == target[^(i + 1)];
            if (!fits)
                throw new ArgumentException($"Attention: the additive mask {ShapeMath.Format(m.Shape)} does not broadcast to (B, NH, Tq, Tk) = ({b}, {nh}, {tq}, {tk}).");
        }
        return (b, nh, tq, hs, nkv, tk);
    }

    /// <summary>(B, NKV, T, HS) → (B, NKV·r, T, HS), each K/V head repeated r times in place.</summary>
    static Tensor RepeatHeads(Tensor x, int r)
    {
        int b = x._shape[0], nkv = x._shape[1], t = x._shape[2], hs = x._shape[3];
        var u = x.Unsqueeze(2);                                                            // (B, NKV, 1, T, HS)
        var copies = new Tensor[r];
        Array.Fill(copies, u);
        return Cat(copies, 2).Reshape(b, nkv * r, t, hs);
    }

    /// <summary>The causal and key-padding masks as one additive (B, 1, Tq, Tk) tensor of 0 and −∞.</summary>
    static Tensor BuiltMask(int b, int tq, int tk, AttentionOptions options)
    {
        var mask = Zeros(b, 1, tq, tk);
        var d = mask.Data;
        var pad = options.KeyPadding.Span;
        for (int bi = 0; bi < b; bi++)
            for (int i = 0; i < tq; i++)
                for (int j = 0; j < tk; j++)
                {
                    bool blocked = (options.Causal && j > i + (tk - tq)) || (!pad.IsEmpty && pad[bi * tk + j]);
                    if (blocked) d[(bi * tq + i) * tk + j] = float.NegativeInfinity;
                }
        return mask;
    }
}
