using System.Text.Json.Nodes;
using AttentionSharp.Models;

namespace AttentionSharp.IO;

/// <summary>
/// BERT checkpoints in Hugging Face's BertForMaskedLM layout: a directory with config.json (BertConfig's fields) and
/// model.safetensors, as <c>BertForMaskedLM.save_pretrained</c> writes them — the encoder's parameters under "bert.",
/// the masked-LM head under "cls.predictions.", and the decoder tied to the word embeddings (its weight and bias are the
/// shared tensors bert.embeddings.word_embeddings.weight and cls.predictions.bias, so not stored twice). Our
/// <see cref="Bert"/> already names its parameters as HF does without the "bert." prefix, and HF's Linear weights are
/// (out, in) as ours: nothing is transposed.
/// </summary>
/// <remarks>
/// Export refuses what BertForMaskedLM cannot hold rather than dropping it: the spelling-feature table and the tagging
/// head of the POS tagger. Import reads that layout with or without the "bert." prefix, in fp32, fp16 or bf16, with
/// LayerNorm parameters named weight/bias or, as in checkpoints converted from TensorFlow, gamma/beta; it
/// accepts the tied decoder tensors when a file stores them (they must equal the tensors they are tied to), skips the
/// position_ids/token_type_ids buffers older files carry, and skips — and reports — BertForPreTraining's pooler and
/// next-sentence head, which take no part in the masked-LM logits. Any other tensor, a missing one or a shape the
/// config does not give is an error naming it.
/// </remarks>
public static class HuggingFaceBert
{
    const string Prefix = "bert.";
    const string DecoderWeight = "cls.predictions.decoder.weight";
    const string DecoderBias = "cls.predictions.decoder.bias";
    const string Bias = "cls.predictions.bias";
    const string WordEmbeddings = "embeddings.word_embeddings.weight";

    /// <summary>HF's name for one of our parameter names: the encoder under "bert.", the head ("cls.…") as it is.</summary>
    public static string HuggingFaceName(string name) => name.StartsWith("cls.", StringComparison.Ordinal) ? name : Prefix + name;

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="directory"/> as config.json and model.safetensors, with reference
    /// logits.
    /// </summary>
    public static void Export(Bert model, string directory)
    {
        var c = model.Config;
        if (c.FeatureVocabSize > 0)
            throw new ArgumentException("This BERT has spelling-feature embeddings " +
                                        $"(BertConfig.FeatureVocabSize = {c.FeatureVocabSize}), which BertForMaskedLM " +
                                        "has no place for; dropping them would change the model. " +
                                        "Export the mlm checkpoint it was trained from instead.");
        if (c.NumLabels > 0)
            throw new ArgumentException($"This BERT has a tagging head (BertConfig.NumLabels = {c.NumLabels}), " +
                                        "which BertForMaskedLM has no place for; dropping it would lose the tagger. " +
                                        "Export the mlm checkpoint it was trained from instead.");
        if (c.PositionalEncoding != Nn.PositionalEncodingKind.Learned || c.Attention.Kind != Nn.AttentionKind.Full)
            throw new ArgumentException("BertForMaskedLM has learned positions and full attention; this BERT uses " +
                                        $"{c.PositionalEncoding} positions and {c.Attention} attention, which it cannot " +
                                        "express (attn train --task mlm --positions learned trains one it can).");
        Directory.CreateDirectory(directory);
        var writer = new SafetensorsWriter();
        foreach (var (name, p) in model.NamedParameters()) writer.Add(HuggingFaceName(name), p.Shape, p.ToArray());
        writer.SetMetadata("format", "pt");
        writer.Save(Path.Combine(directory, HuggingFaceFiles.WeightsFile));
        HuggingFaceFiles.WriteJson(directory, ConfigJson(c), ReferenceJson(model));
    }

    /// <summary>
    /// BertConfig's fields for <paramref name="c"/>: "gelu" is the exact (erf) GELU, positions are "absolute" (learned),
    /// and HF's defaults stand where ours has no counterpart (initializer_range).
    /// </summary>
    public static JsonObject ConfigJson(BertConfig c) => new()
    {
        ["architectures"] = new JsonArray("BertForMaskedLM"),
        ["model_type"] = "bert",
        ["vocab_size"] = c.VocabSize,
        ["hidden_size"] = c.Width,
        ["num_hidden_layers"] = c.Layers,
        ["num_attention_heads"] = c.Heads,
        ["intermediate_size"] = c.IntermediateSize,
        ["hidden_act"] = "gelu",
        ["hidden_dropout_prob"] = c.Dropout,
        ["attention_probs_dropout_prob"] = c.AttentionDropout,
        ["max_position_embeddings"] = c.MaxPositions,
        ["type_vocab_size"] = c.TypeVocabSize,
        ["initializer_range"] = 0.02,
        ["layer_norm_eps"] = c.LayerNormEps,
        ["pad_token_id"] = c.PadTokenId,
        ["position_embedding_type"] = "absolute",
        ["is_decoder"] = false,
        ["add_cross_attention"] = false,
        ["tie_word_embeddings"] = true,
        ["classifier_dropout"] = null,
        ["torch_dtype"] = "float32",
    };

    /// <summary>
    /// {"ids", "token_type_ids", "attention_mask" (each T), "logits" (T·V)}: ids (7·t + 3) mod V for t &lt; min(16, positions)
    /// with the last one the pad id, segment 1 for the second half when the model has two segments, and the mask
    /// ids ≠ pad, which is the key padding our forward pass applies (HF takes it as the attention_mask input).
    /// </summary>
    public static JsonObject ReferenceJson(Bert model)
    {
        var c = model.Config;
        int t = Math.Min(16, c.MaxPositions);
        var ids = Enumerable.Range(0, t).Select(i => (int)((7L * i + 3) % c.VocabSize)).ToArray();
        if (t > 1) ids[^1] = c.PadTokenId;
        var segments = Enumerable.Range(0, t).Select(i => c.TypeVocabSize > 1 && i >= t / 2 ? 1 : 0).ToArray();
        var logits = HuggingFaceFiles.EvalLogits(model, () => model.MlmLogits(model.Forward(ids, 1, t, segments)));
        return new JsonObject
        {
            ["ids"] = HuggingFaceFiles.Array(ids),
            ["token_type_ids"] = HuggingFaceFiles.Array(segments),
            ["attention_mask"] = HuggingFaceFiles.Array(ids.Select(id => id == c.PadTokenId ? 0 : 1)),
            ["logits"] = HuggingFaceFiles.Array(logits),
        };
    }

    /// <summary>
    /// Reads a BertForMaskedLM directory (config.json, and model.safetensors or a sharded model.safetensors.index.json) into a
    /// new <see cref="Bert"/>.
    /// </summary>
    public static Bert Import(string directory) => Import(directory, out _);

    /// <summary>
    /// As <see cref="Import(string)"/>; <paramref name="skipped"/> names the pooler and next-sentence tensors left out.
    /// </summary>
    public static Bert Import(string directory, out IReadOnlyList<string> skipped)
    {
        var (configPath, weightsPath) = HuggingFaceFiles.Paths(directory);
        var model = new Bert(ReadConfig(configPath), new Generator(0));
        var entries = HuggingFaceFiles.ReadWeights(weightsPath);
        var expected = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        var state = new Dictionary<string, Tensor>();
        var tied = new Dictionary<string, SafetensorsEntry>();
        var left = new List<string>();
        try
        {
            foreach (var e in entries)
            {
                string name = e.Name.StartsWith(Prefix, StringComparison.Ordinal) ? e.Name[Prefix.Length..] : e.Name;
                // The LayerNorm names of checkpoints converted from TensorFlow, which transformers renames on load too.
                if (name.EndsWith(".LayerNorm.gamma", StringComparison.Ordinal)) name = name[..^"gamma".Length] + "weight";
                else if (name.EndsWith(".LayerNorm.beta", StringComparison.Ordinal)) name = name[..^"beta".Length] + "bias";
                if (name is "embeddings.position_ids" or "embeddings.token_type_ids") continue;   // buffers, not parameters
                if (name.StartsWith("pooler.", StringComparison.Ordinal)
                    || name.StartsWith("cls.seq_relationship.", StringComparison.Ordinal))
                {
                    left.Add(e.Name);
                    continue;
                }
                if (name is DecoderWeight or DecoderBias) { tied[name] = e; continue; }
                if (!expected.TryGetValue(name, out var target))
                {
                    var near = NameSuggestions.Closest(name, expected.Keys, 1)
                        .Select(n => $"; the nearest BertForMaskedLM name is '{HuggingFaceName(n)}'").FirstOrDefault();
                    throw new CheckpointException($"{weightsPath}: '{e.Name}' is not a BertForMaskedLM parameter " +
                        $"of this configuration{near}.");
                }
                state[name] = Read(e, target, weightsPath);
            }
            if (!state.ContainsKey(Bias) && tied.TryGetValue(DecoderBias, out var decoderBias))
            {
                state[Bias] = Read(decoderBias, expected[Bias], weightsPath);
                tied.Remove(DecoderBias);
            }
            var missing = expected.Keys.Where(k => !state.ContainsKey(k)).Select(HuggingFaceName).ToList();
            if (missing.Count > 0)
                throw new CheckpointException($"{weightsPath} lacks {missing.Count} BertForMaskedLM " +
                                              $"tensor{(missing.Count == 1 ? "" : "s")}: " +
                                              string.Join(", ", missing.Take(5).Select(m => $"'{m}'"))
                                              + (missing.Count > 5 ? ", …" : "") + ".");
            foreach (var (name, entry) in tied)
            {
                var partner = name == DecoderWeight ? WordEmbeddings : Bias;
                using var values = Read(entry, expected[partner], weightsPath);
                if (!values.ToArray().SequenceEqual(state[partner].ToArray()))
                    throw new CheckpointException($"{weightsPath}: '{entry.Name}' differs from '{HuggingFaceName(partner)}'; " +
                        "only BertForMaskedLM's tied decoder is supported.");
            }
            model.LoadStateDict(state);
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
        skipped = left;
        return model;
    }

    static Tensor Read(SafetensorsEntry e, Tensor target, string path)
    {
        var shape = e.ShapeToArray();
        if (!shape.SequenceEqual(target.Shape.ToArray()))
            throw new CheckpointException($"{path}: '{e.Name}' has shape [{string.Join(", ", shape)}]; " +
                $"the config asks for [{string.Join(", ", target.Shape.ToArray())}].");
        return Tensor.FromArray(e.ToFloat32(), shape);
    }

    static BertConfig ReadConfig(string path)
    {
        var json = HuggingFaceConfig.Read(path);
        json.RequireModelType("bert");
        // The shape of the model must be written down; the rest takes BertConfig's defaults in transformers.
        json.OneOf("hidden_act", "gelu", ["gelu"], "this BERT uses the exact (erf) GELU, which Hugging Face calls 'gelu'.");
        json.OneOf("position_embedding_type", "absolute", ["absolute"], "this BERT has learned absolute positions only.");
        foreach (var flag in new[] { "is_decoder", "add_cross_attention" })
            if (json.Bool(flag, false))
                throw new CheckpointException($"{path}: {flag} = true is not supported; " +
                    "this BERT is an encoder without cross-attention.");
        if (!json.Bool("tie_word_embeddings", true))
            throw new CheckpointException($"{path}: tie_word_embeddings = false is not supported; " +
                "the masked-LM decoder must be the word embeddings.");
        try
        {
            return new BertConfig
            {
                VocabSize = json.Int("vocab_size", null, 1), Width = json.Int("hidden_size", null, 1),
                Layers = json.Int("num_hidden_layers", null, 1),
                Heads = json.Int("num_attention_heads", null, 1), IntermediateSize = json.Int("intermediate_size", null, 1),
                MaxPositions = json.Int("max_position_embeddings", null, 1), TypeVocabSize = json.Int("type_vocab_size", 2, 1),
                Dropout = (float)json.Number("hidden_dropout_prob", 0.1, 0, 1),
                AttentionDropout = (float)json.Number("attention_probs_dropout_prob", 0.1, 0, 1),
                LayerNormEps = (float)json.Number("layer_norm_eps", 1e-12, 0, 1, minExclusive: true),
                PadTokenId = json.Int("pad_token_id", 0, 0),
            }.Validate();
        }
        catch (ArgumentException e) { throw new CheckpointException($"{path}: {e.Message}"); }
    }
}
