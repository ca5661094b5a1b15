using AttentionSharp.Models;

namespace AttentionSharp.IO.Onnx;

/// <summary>
/// Exports a <see cref="Bert"/> with its masked-language-model head as an ONNX model (opset 17): inputs "input_ids" and
/// "token_type_ids", int64 (batch, sequence); output "logits", float (batch, sequence, V). Keys holding the pad id are
/// masked out of attention as in <see cref="Bert.Forward"/>; the decoder is tied to the word embeddings.
/// </summary>
public static class BertOnnx
{
    public const string InputName = "input_ids";
    public const string SegmentInputName = "token_type_ids";
    public const string OutputName = "logits";

    /// <summary>
    /// Builds the graph of <paramref name="model"/> and writes it to <paramref name="path"/>; the weights go to a sidecar
    /// file as <paramref name="externalData"/> says (<see cref="OnnxGraph.Save"/>). Returns the sidecar's path, or null.
    /// </summary>
    public static string? Export(Bert model, string path, OnnxExternalData externalData = OnnxExternalData.Automatic) =>
        Build(model).Save(path, typeof(BertOnnx).Assembly.GetName().Version?.ToString() ?? "0",
            $"BERT (masked LM): {model.Config.Layers} layers, {model.Config.Heads} heads, width {model.Config.Width}, " +
            $"vocabulary {model.Config.VocabSize}.", externalData);

    /// <summary>The ONNX graph of MlmLogits(Forward(ids, segments)).</summary>
    public static OnnxGraph Build(Bert model)
    {
        var c = model.Config;
        if (c.FeatureVocabSize > 0)
            throw new ArgumentException("ONNX export covers BERT's masked-LM path; this BERT also reads spelling features " +
                                        $"(BertConfig.FeatureVocabSize = {c.FeatureVocabSize}), " +
                                        "which the graph would leave out.");
        if (model.PositionEmbeddings is null || c.Attention.Kind != Nn.AttentionKind.Full)
            throw new ArgumentException($"ONNX export covers BERT with learned positions and full attention; this BERT uses " +
                                        $"{c.PositionalEncoding} positions and {c.Attention} attention (attn train --task mlm " +
                                        "--positions learned trains one it covers).");
        var g = new OnnxGraph("bert");
        var layers = new OnnxLayers(g);
        g.Input(InputName, OnnxGraph.ElementType.Int64, "batch", "sequence");
        g.Input(SegmentInputName, OnnxGraph.ElementType.Int64, "batch", "sequence");
        var positions = layers.Positions(layers.SequenceLength(InputName));
        // E = E_token + E_position + E_segment, then LayerNorm
        var x = g.Node("Add", [
            g.Node("Add", [
                g.Node("Gather", [layers.Parameter("embeddings.word_embeddings.weight", model.WordEmbeddings.Weight),
                    InputName], ("axis", 0)),   // (B, T, C)
                g.Node("Gather", [layers.Parameter("embeddings.position_embeddings.weight", model.PositionEmbeddings.Weight),
                    positions], ("axis", 0))]), // + (T, C)
            g.Node("Gather", [layers.Parameter("embeddings.token_type_embeddings.weight", model.TokenTypeEmbeddings.Weight),
                SegmentInputName], ("axis", 0))]);
        x = layers.LayerNorm(x, model.EmbeddingNorm, "embeddings.LayerNorm");
        var mask = layers.PaddingMask(InputName, c.PadTokenId);                                                   // (B, 1, 1, T)
        for (int i = 0; i < model.Layers.Count; i++)
        {
            var l = model.Layers[i];
            string p = $"encoder.layer.{i}.";
            // x = LN(x + MultiHead(x)·W^O)
            var attention = layers.Attention(layers.Linear(x, l.Query, p + "attention.self.query"),
                layers.Linear(x, l.Key, p + "attention.self.key"),
                layers.Linear(x, l.Value, p + "attention.self.value"), c.Width, c.Heads, mask);
            x = layers.LayerNorm(g.Node("Add", [x, layers.Linear(attention, l.AttentionOut, p + "attention.output.dense")]),
                l.AttentionNorm, p + "attention.output.LayerNorm");
            // x = LN(x + W₂·GELU(W₁·x))
            var hidden = layers.Gelu(layers.Linear(x, l.Intermediate, p + "intermediate.dense"), Kernels.GeluApproximation.None);
            x = layers.LayerNorm(g.Node("Add", [x, layers.Linear(hidden, l.Output, p + "output.dense")]),
                l.OutputNorm, p + "output.LayerNorm");
        }
        // logits = LayerNorm(GELU(dense(h)))·Eᵀ + b
        var h = layers.LayerNorm(
            layers.Gelu(layers.Linear(x, model.MlmDense, "cls.predictions.transform.dense"), Kernels.GeluApproximation.None),
            model.MlmNorm, "cls.predictions.transform.LayerNorm");
        var decoder = g.Node("Transpose", ["embeddings.word_embeddings.weight"], ("perm", new long[] { 1, 0 }));  // (C, V)
        g.NodeNamed("Add", [g.Node("MatMul", [h, decoder]), layers.Parameter("cls.predictions.bias", model.MlmBias)],
            [OutputName]); // (B, T, V)
        g.Output(OutputName, OnnxGraph.ElementType.Float, "batch", "sequence", c.VocabSize);
        return g;
    }
}
