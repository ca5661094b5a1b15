namespace AttentionSharp.Visualization;

/// <summary>
/// Attention rollout (Abnar and Zuidema 2020): how much each input token flows into each position through all layers.
/// Each layer's map is the mean over heads with the residual connection added as identity, A_l = ½·mean_h(W_l) + ½·I
/// (rows still sum to 1), and the rollout is the product A_L ⋯ A_1. For a ViT, row 0 (the class token) over the patches
/// is where the classifier looked.
/// </summary>
public static class AttentionRollout
{
    /// <summary>The (T × T) rollout of self-attention layers over the same T tokens.</summary>
    public static double[,] Compute(IReadOnlyList<AttentionLayerView> layers)
    {
        if (layers.Count == 0) throw new ArgumentException("Attention rollout needs at least one layer.", nameof(layers));
        int t = layers[0].QueryTokens.Count;
        var rollout = Identity(t);
        foreach (var layer in layers)
        {
            if (layer.QueryTokens.Count != t || layer.KeyTokens.Count != t)
                throw new ArgumentException($"Attention rollout needs self-attention over {t} tokens; '{layer.Name}' is {layer.QueryTokens.Count}×{layer.KeyTokens.Count}.", nameof(layers));
            var a = new double[t, t];
            foreach (var head in layer.Heads)
                for (int i = 0; i < t; i++)
                    for (int j = 0; j < t; j++) a[i, j] += head[i, j];
            for (int i = 0; i < t; i++)
                for (int j = 0; j < t; j++) a[i, j] = 0.5 * a[i, j] / layer.HeadCount + (i == j ? 0.5 : 0.0);
            rollout = Multiply(a, rollout);   // A_l · (A_{l−1} ⋯ A_1)
        }
        return rollout;
    }

    /// <summary>
    /// Row 0 of the rollout over the patch tokens 1…N as a (GridHeight, GridWidth) map, scaled so its largest value is 1.
    /// </summary>
    public static float[,] ClassTokenMap(AttentionView view)
    {
        var image = view.Image ?? throw new ArgumentException("The class-token rollout map is for image models; this view has no image.", nameof(view));
        var rollout = Compute(view.Layers);
        int gh = image.GridHeight, gw = image.GridWidth;
        if (rollout.GetLength(0) != gh * gw + 1)
            throw new ArgumentException($"The view has {rollout.GetLength(0)} tokens; a {gh}×{gw} patch grid and a class token make {gh * gw + 1}.", nameof(view));
        var map = new float[gh, gw];
        double max = 0;
        for (int n = 0; n < gh * gw; n++) max = Math.Max(max, rollout[0, n + 1]);
        for (int n = 0; n < gh * gw; n++) map[n / gw, n % gw] = max > 0 ? (float)(rollout[0, n + 1] / max) : 0f;
        return map;
    }

    static double[,] Identity(int n)
    {
        var m = new double[n, n];
        for (int i = 0; i < n; i++) m[i, i] = 1;
        return m;
    }

    static double[,] Multiply(double[,] a, double[,] b)
    {
        int n = a.GetLength(0), k = a.GetLength(1), m = b.GetLength(1);
        var c = new double[n, m];
        for (int i = 0; i < n; i++)
            for (int p = 0; p < k; p++)
            {
                double aip = a[i, p];
                if (aip == 0) continue;
                for (int j = 0; j < m; j++) c[i, j] += aip * b[p, j];
            }
        return c;
    }
}
