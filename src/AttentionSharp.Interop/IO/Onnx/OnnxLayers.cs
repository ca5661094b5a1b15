using AttentionSharp.Nn;

namespace AttentionSharp.IO.Onnx;

/// <summary>
/// The layers our models are made of, each written as a few standard ONNX operators (opset 17) into an
/// <see cref="OnnxGraph"/>: parameters become initializers named as in <see cref="Module.NamedParameters"/>, except
/// that Linear weights are stored transposed, (in, out), under "NAME.T" so that y = x·Wᵀ + b is one MatMul and one Add.
/// Activations are (B, T, C) with B and T symbolic.
/// </summary>
internal sealed class OnnxLayers(OnnxGraph graph)
{
    public OnnxGraph Graph { get; } = graph;

    /// <summary>An initializer holding <paramref name="t"/>'s values with its shape.</summary>
    public string Parameter(string name, Tensor t) =>
        Graph.Initializer(name, t.ToArray(), t.Shape.ToArray().Select(d => (long)d).ToArray());

    /// <summary>y = x·Wᵀ + b for a Linear with weight (out, in) named <paramref name="name"/>.weight.</summary>
    public string Linear(string x, Linear layer, string name)
    {
        int rows = layer.OutFeatures, cols = layer.InFeatures;
        var w = layer.Weight.ToArray();
        var wt = new float[w.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) wt[j * rows + i] = w[i * cols + j];
        var y = Graph.Node("MatMul", [x, Graph.Initializer(name + ".weight.T", wt, cols, rows)]);
        return layer.Bias is null ? y : Graph.Node("Add", [y, Parameter(name + ".bias", layer.Bias)]);
    }

    /// <summary>LayerNorm over the last axis: (x − mean)/√(var + eps)·γ + β, biased variance as ours.</summary>
    public string LayerNorm(string x, Nn.LayerNorm layer, string name)
    {
        string[] inputs = layer.Bias is null
            ? [x, Parameter(name + ".weight", layer.Weight)]
            : [x, Parameter(name + ".weight", layer.Weight), Parameter(name + ".bias", layer.Bias)];
        return Graph.Node("LayerNormalization", inputs, ("axis", -1), ("epsilon", layer.Eps));
    }

    /// <summary>GELU, tanh form: ½x(1 + tanh(√(2/π)(x + 0.044715x³))); erf form: ½x(1 + erf(x/√2)).</summary>
    public string Gelu(string x, Kernels.GeluApproximation approximation)
    {
        string inner;
        if (approximation == Kernels.GeluApproximation.Tanh)
        {
            var cube = Graph.Node("Mul", [Graph.Node("Mul", [x, x]), x]);
            var u = Graph.Node("Add", [x, Graph.Node("Mul", [cube, Graph.Scalar("gelu_cubic", 0.044715f)])]);
            inner = Graph.Node("Tanh", [Graph.Node("Mul", [u, Graph.Scalar("gelu_sqrt_2_over_pi", MathF.Sqrt(2f / MathF.PI))])]);
        }
        else inner = Graph.Node("Erf", [Graph.Node("Mul", [x, Graph.Scalar("gelu_inv_sqrt2", 1f / MathF.Sqrt(2f))])]);
        var half = Graph.Node("Mul", [x, Graph.Scalar("gelu_half", 0.5f)]);
        return Graph.Node("Mul", [half, Graph.Node("Add", [inner, Graph.Scalar("gelu_one", 1f)])]);
    }

    /// <summary>
    /// Multi-head attention from a fused (B, T, 3C) projection: split into Q, K, V, then <see cref="Attention"/>.
    /// </summary>
    public string FusedAttention(string qkv, int width, int heads, string? mask)
    {
        var parts = Graph.NodeMulti("Split", [qkv, Graph.Int64s("qkv_split", width, width, width)], 3, ("axis", 2));
        return Attention(parts[0], parts[1], parts[2], width, heads, mask);
    }

    /// <summary>
    /// Multi-head attention of (B, T, C) queries, keys and values: heads (B, NH, T, HS), softmax(QKᵀ/√d_k + M)·V, heads
    /// merged back to (B, T, C). <paramref name="mask"/> is added to the scores, broadcasting to (B, NH, T, T) (a causal
    /// (T, T) matrix or a (B, 1, 1, T) padding row); null for none.
    /// </summary>
    public string Attention(string query, string key, string value, int width, int heads, string? mask)
    {
        int hs = width / heads;
        var headShape = Graph.Int64s("head_shape", 0, 0, heads, hs);                                  // (B, T, NH, HS)
        var q = Graph.Node("Transpose", [Graph.Node("Reshape", [query, headShape])], ("perm", new long[] { 0, 2, 1, 3 })); // (B, NH, T, HS)
        var kT = Graph.Node("Transpose", [Graph.Node("Reshape", [key, headShape])], ("perm", new long[] { 0, 2, 3, 1 })); // (B, NH, HS, T)
        var v = Graph.Node("Transpose", [Graph.Node("Reshape", [value, headShape])], ("perm", new long[] { 0, 2, 1, 3 }));
        var scores = Graph.Node("Mul", [Graph.Node("MatMul", [q, kT]), Graph.Scalar("inv_sqrt_dk", 1f / MathF.Sqrt(hs))]); // (B, NH, T, T)
        if (mask is not null) scores = Graph.Node("Add", [scores, mask]);
        var weights = Graph.Node("Softmax", [scores], ("axis", -1));
        var y = Graph.Node("Transpose", [Graph.Node("MatMul", [weights, v])], ("perm", new long[] { 0, 2, 1, 3 })); // (B, T, NH, HS)
        return Graph.Node("Reshape", [y, Graph.Int64s("merge_shape", 0, 0, width)]);                // (B, T, C)
    }

    /// <summary>The key-padding mask (B, 1, 1, T): −∞ where the (B, T) ids equal <paramref name="padId"/>, 0 elsewhere.</summary>
    public string PaddingMask(string ids, int padId)
    {
        var isPad = Graph.Node("Equal", [ids, Graph.Initializer(Graph.Fresh("pad_id"), [(long)padId])]);
        var additive = Graph.Node("Where", [isPad, Graph.Scalar("minus_inf", float.NegativeInfinity), Graph.Scalar("zero", 0f)]);
        return Graph.Node("Unsqueeze", [additive, Graph.Int64s("axes", 1, 2)]);
    }

    /// <summary>The sequence length T of a (B, T) input as a one-element int64 tensor.</summary>
    public string SequenceLength(string ids) =>
        Graph.Node("Slice", [Graph.Node("Shape", [ids]), Graph.Int64s("one", 1), Graph.Int64s("two", 2)]);

    /// <summary>Positions 0 … T−1 as int64, for gathering position embeddings.</summary>
    public string Positions(string length) =>
        Graph.Node("Range", [Graph.Initializer(Graph.Fresh("zero"), [0L]), Graph.Node("Squeeze", [length]), Graph.Initializer(Graph.Fresh("step"), [1L])]);

    /// <summary>
    /// The causal mask M (T, T): 0 on and below the diagonal, −∞ above, cut from a (context, context) constant so the
    /// sequence axis stays dynamic.
    /// </summary>
    public string CausalMask(int context, string length)
    {
        var m = new float[context * context];
        for (int i = 0; i < context; i++)
            for (int j = i + 1; j < context; j++) m[i * context + j] = float.NegativeInfinity;
        var full = Graph.Initializer("causal_mask", m, context, context);
        var ends = Graph.Node("Concat", [length, length], ("axis", 0));
        return Graph.Node("Slice", [full, Graph.Int64s("zeros", 0, 0), ends]);
    }
}
