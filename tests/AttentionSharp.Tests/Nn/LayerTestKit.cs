using AttentionSharp.Nn;

namespace AttentionSharp.Tests.Nn;

/// <summary>Small configurations and sequence manipulations shared by the layer tests.</summary>
internal static class LayerTestKit
{
    public static TransformerConfig Tiny(PositionalEncodingKind positions = PositionalEncodingKind.None) => new()
    {
        Layers = 2, Width = 16, Heads = 4, FeedForwardWidth = 32, Dropout = 0f, NormFirst = true, FinalNorm = true,
        Activation = FeedForwardActivation.Gelu, PositionalEncoding = positions, MaxLength = 32,
    };

    public static Tensor Random(ulong seed, params int[] shape) => Tensor.Uniform(new Generator(seed), -1f, 1f, shape);

    /// <summary>x (B, T, C) with its tokens reordered: result[:, t] = x[:, perm[t]].</summary>
    public static Tensor PermuteTokens(Tensor x, int[] perm)
    {
        int b = x.Size(0), t = x.Size(1), c = x.Size(2);
        var src = x.ToArray();
        var dst = new float[src.Length];
        for (int bi = 0; bi < b; bi++)
            for (int i = 0; i < t; i++)
                Array.Copy(src, (bi * t + perm[i]) * c, dst, (bi * t + i) * c, c);
        return Tensor.FromArray(dst, b, t, c);
    }

    /// <summary>The tokens t0 … t0 + length − 1 of x (B, T, C), as a dense copy.</summary>
    public static Tensor Tokens(Tensor x, int t0, int length) => x.Narrow(1, t0, length).Contiguous().Copy();

    public static double MaxDifference(Tensor a, Tensor b)
    {
        var x = a.ToArray(); var y = b.ToArray();
        Assert.Equal(x.Length, y.Length);
        double max = 0;
        for (int i = 0; i < x.Length; i++) max = Math.Max(max, Math.Abs(x[i] - y[i]));
        return max;
    }
}
