using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.IO.Onnx;

/// <summary>
/// Exports a <see cref="Gpt"/> as an ONNX model (opset 17): input "input_ids" int64 (batch, sequence), output "logits"
/// float (batch, sequence, V), both axes dynamic up to the model's context. The graph is the model's inference forward:
/// embeddings (+ learned or sinusoidal positions), L pre-LN blocks with causal attention, ln_f, and the head tied to wte
/// (wte is stored once and transposed inside the graph). Dropout is absent, as in evaluation.
/// </summary>
public static class GptOnnx
{
    public const string InputName = "input_ids";
    public const string OutputName = "logits";

    /// <summary>
    /// Builds the graph of <paramref name="model"/> and writes it to <paramref name="path"/>; the weights go to a sidecar
    /// file as <paramref name="externalData"/> says (<see cref="OnnxGraph.Save"/>). Returns the sidecar's path, or null.
    /// </summary>
    public static string? Export(Gpt model, string path, OnnxExternalData externalData = OnnxExternalData.Automatic) => Build(model).Save(path, typeof(GptOnnx).Assembly.GetName().Version?.ToString() ?? "0",
        $"GPT: {model.Config.Layers} layers, {model.Config.Heads} heads, width {model.Config.Width}, vocabulary {model.Config.VocabSize}, context {model.Config.ContextLength}.", externalData);

    /// <summary>The ONNX graph of <paramref name="model"/>'s forward pass.</summary>
    public static OnnxGraph Build(Gpt model)
    {
        var c = model.Config;
        if (c.PositionalEncoding is PositionalEncodingKind.Rotary or PositionalEncodingKind.Alibi)
            throw new ArgumentException($"ONNX export handles learned, sinusoidal or no positions; this model uses {c.PositionalEncoding}.");
        if (c.Attention.Kind != AttentionKind.Full)
            throw new ArgumentException($"ONNX export handles full causal attention; this model uses {c.Attention} attention.");
        var g = new OnnxGraph("gpt");
        var layers = new OnnxLayers(g);
        g.Input(InputName, OnnxGraph.ElementType.Int64, "batch", "sequence");
        var length = layers.SequenceLength(InputName);
        var x = g.Node("Gather", [layers.Parameter("wte.weight", model.Wte.Weight), InputName], ("axis", 0)); // (B, T, C)
        Tensor? table = model.Wpe?.Weight;
        if (c.PositionalEncoding == PositionalEncodingKind.Sinusoidal) table = new SinusoidalPositionalEncoding(c.Width).Table(0, c.ContextLength);
        if (table is not null)
        {
            var name = model.Wpe is null ? "sinusoids" : "wpe.weight";
            x = g.Node("Add", [x, g.Node("Gather", [layers.Parameter(name, table), layers.Positions(length)], ("axis", 0))]); // + (T, C)
            if (model.Wpe is null) table.Dispose();
        }
        var mask = layers.CausalMask(c.ContextLength, length);                                                   // (T, T)
        for (int i = 0; i < model.Blocks.Count; i++)
        {
            var b = model.Blocks[i];
            string p = $"h.{i}.";
            // x = x + c_proj(attention(c_attn(ln_1(x))))
            var qkv = layers.Linear(layers.LayerNorm(x, b.Ln1, p + "ln_1"), b.Attn.CAttn, p + "attn.c_attn");      // (B, T, 3C)
            var attn = layers.Linear(layers.FusedAttention(qkv, c.Width, c.Heads, mask), b.Attn.CProj, p + "attn.c_proj");
            x = g.Node("Add", [x, attn]);
            // x = x + c_proj(GELU(c_fc(ln_2(x))))
            var hidden = layers.Gelu(layers.Linear(layers.LayerNorm(x, b.Ln2, p + "ln_2"), b.Mlp.CFc, p + "mlp.c_fc"), Kernels.GeluApproximation.Tanh);
            x = g.Node("Add", [x, layers.Linear(hidden, b.Mlp.CProj, p + "mlp.c_proj")]);
        }
        x = layers.LayerNorm(x, model.LnF, "ln_f");
        var head = g.Node("Transpose", ["wte.weight"], ("perm", new long[] { 1, 0 }));                            // (C, V)
        g.NodeNamed("MatMul", [x, head], [OutputName]);                                                          // (B, T, V)
        g.Output(OutputName, OnnxGraph.ElementType.Float, "batch", "sequence", c.VocabSize);
        return g;
    }
}
