using System.Text.Json.Nodes;
using AttentionSharp.Models;

namespace AttentionSharp.IO;

/// <summary>
/// GPT checkpoints in Hugging Face's GPT-2 layout: a directory with config.json (GPT2Config's fields) and
/// model.safetensors, as <c>GPT2LMHeadModel.save_pretrained</c> writes them — parameter names under "transformer.",
/// the language-model head tied to wte (so not stored), and the four projection matrices stored as HF's Conv1D keeps
/// them, (in, out), the transpose of our torch.nn.Linear (out, in). Import reads that layout with or without the
/// "transformer." prefix, in fp32, fp16 or bf16, and ignores the attention-mask buffers older files carry.
/// </summary>
public static class HuggingFaceGpt2
{
    public const string ConfigFile = HuggingFaceFiles.ConfigFile;
    public const string WeightsFile = HuggingFaceFiles.WeightsFile;

    /// <summary>The logits this library computes for a fixed run of token ids, beside an export (<see cref="HuggingFaceFiles.ReferenceFile"/>).</summary>
    public const string ReferenceFile = HuggingFaceFiles.ReferenceFile;

    /// <summary>The parameters HF stores as Conv1D (in, out): transposed on the way out and back in.</summary>
    static bool IsConv1D(string name) =>
        name.EndsWith(".attn.c_attn.weight", StringComparison.Ordinal) || name.EndsWith(".attn.c_proj.weight", StringComparison.Ordinal) ||
        name.EndsWith(".mlp.c_fc.weight", StringComparison.Ordinal) || name.EndsWith(".mlp.c_proj.weight", StringComparison.Ordinal);

    /// <summary>Writes <paramref name="model"/> to <paramref name="directory"/> as config.json and model.safetensors.</summary>
    public static void Export(Gpt model, string directory)
    {
        var c = model.Config;
        if (c.PositionalEncoding != Nn.PositionalEncodingKind.Learned)
            throw new ArgumentException($"GPT-2 has learned positions only; this model uses {c.PositionalEncoding} positions and has no GPT-2 equivalent.");
        if (!c.Bias) throw new ArgumentException("GPT-2 has biases in every Linear and LayerNorm; this model was built without them.");
        Directory.CreateDirectory(directory);
        var writer = new SafetensorsWriter();
        foreach (var (name, p) in model.NamedParameters())
        {
            var values = p.ToArray();
            if (IsConv1D(name))
            {
                int rows = p.Size(0), cols = p.Size(1);
                writer.Add("transformer." + name, [cols, rows], Transpose(values, rows, cols));
            }
            else writer.Add("transformer." + name, p.Shape, values);
        }
        writer.SetMetadata("format", "pt");
        writer.Save(Path.Combine(directory, WeightsFile));
        HuggingFaceFiles.WriteJson(directory, ConfigJson(c), ReferenceJson(model));
    }

    /// <summary>{"ids": [...], "logits": [T·V values]} for ids (7·t + 3) mod V, t &lt; min(16, context).</summary>
    public static JsonObject ReferenceJson(Gpt model)
    {
        int t = Math.Min(16, model.Config.ContextLength), v = model.Config.VocabSize;
        var ids = Enumerable.Range(0, t).Select(i => (int)((7L * i + 3) % v)).ToArray();
        var logits = HuggingFaceFiles.EvalLogits(model, () => model.Forward(ids, 1, t));
        return new JsonObject
        {
            ["ids"] = HuggingFaceFiles.Array(ids),
            ["logits"] = HuggingFaceFiles.Array(logits),
        };
    }

    /// <summary>GPT2Config's fields for <paramref name="c"/> (HF's defaults where ours has no counterpart).</summary>
    public static JsonObject ConfigJson(GptConfig c) => new()
    {
        ["architectures"] = new JsonArray("GPT2LMHeadModel"),
        ["model_type"] = "gpt2",
        ["vocab_size"] = c.VocabSize,
        ["n_positions"] = c.ContextLength,
        ["n_ctx"] = c.ContextLength,
        ["n_embd"] = c.Width,
        ["n_layer"] = c.Layers,
        ["n_head"] = c.Heads,
        ["n_inner"] = null,
        ["activation_function"] = "gelu_new",
        ["resid_pdrop"] = c.Dropout,
        ["embd_pdrop"] = c.Dropout,
        ["attn_pdrop"] = c.Dropout,
        ["layer_norm_epsilon"] = 1e-5,
        ["initializer_range"] = 0.02,
        ["scale_attn_weights"] = true,
        ["scale_attn_by_inverse_layer_idx"] = false,
        ["reorder_and_upcast_attn"] = false,
        ["tie_word_embeddings"] = true,
        ["bos_token_id"] = c.VocabSize - 1,
        ["eos_token_id"] = c.VocabSize - 1,
        ["torch_dtype"] = "float32",
    };

    /// <summary>Reads a GPT-2 directory (config.json, and model.safetensors or a sharded model.safetensors.index.json) into a new <see cref="Gpt"/>.</summary>
    public static Gpt Import(string directory)
    {
        var (configPath, weightsPath) = HuggingFaceFiles.Paths(directory);
        var config = ReadConfig(configPath);
        var model = new Gpt(config, new Generator(0));
        var entries = HuggingFaceFiles.ReadWeights(weightsPath);
        var expected = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        var state = new Dictionary<string, Tensor>();
        try
        {
            foreach (var e in entries)
            {
                string name = e.Name.StartsWith("transformer.", StringComparison.Ordinal) ? e.Name["transformer.".Length..] : e.Name;
                if (name.EndsWith(".attn.bias", StringComparison.Ordinal) || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal)) continue; // mask buffers
                if (name == "lm_head.weight") { state["lm_head.weight"] = Tensor.FromArray(e.ToFloat32(), e.ShapeToArray()); continue; }
                if (!expected.TryGetValue(name, out var target))
                    throw new CheckpointException($"{weightsPath}: '{e.Name}' is not a GPT-2 parameter of this configuration.");
                var shape = e.ShapeToArray();
                var values = e.ToFloat32();
                if (IsConv1D(name))
                {
                    if (shape.Length != 2) throw new CheckpointException($"{weightsPath}: '{e.Name}' should be a matrix; its shape is [{string.Join(", ", shape)}].");
                    values = Transpose(values, shape[0], shape[1]);
                    shape = [shape[1], shape[0]];
                }
                if (!shape.SequenceEqual(target.Shape.ToArray()))
                    throw new CheckpointException($"{weightsPath}: '{e.Name}' has shape [{string.Join(", ", shape)}]; the config asks for [{string.Join(", ", target.Shape.ToArray())}].");
                state[name] = Tensor.FromArray(values, shape);
            }
            if (state.Remove("lm_head.weight", out var head))
            {
                using (head)
                    if (!state.TryGetValue("wte.weight", out var wte) || !head.ToArray().SequenceEqual(wte.ToArray()))
                        throw new CheckpointException($"{weightsPath}: lm_head.weight differs from wte.weight; only GPT-2's tied head is supported.");
            }
            var missing = expected.Keys.Where(k => !state.ContainsKey(k)).ToList();
            if (missing.Count > 0) throw new CheckpointException($"{weightsPath} lacks {missing.Count} GPT-2 parameters, e.g. '{missing[0]}'.");
            model.LoadStateDict(state);
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
        return model;
    }

    static GptConfig ReadConfig(string path)
    {
        var json = HuggingFaceConfig.Read(path);
        json.RequireModelType("gpt2");
        // GPT2Config's defaults where a field is absent; a field present with the wrong type or out of range is an error.
        int width = json.Int("n_embd", 768, 1);
        if (json.OptionalInt("n_inner", 1) is { } inner && inner != 4 * width)
            throw new CheckpointException($"{path}: n_inner = {inner} but only the GPT-2 feed-forward width 4·n_embd = {4 * width} is supported.");
        json.OneOf("activation_function", "gelu_new", ["gelu_new", "gelu_pytorch_tanh"], "GPT-2's is gelu_new (GELU, tanh form).");
        double eps = json.Number("layer_norm_epsilon", 1e-5, 0, double.PositiveInfinity, minExclusive: true);
        if (Math.Abs(eps - 1e-5) > 1e-12) throw new CheckpointException($"{path}: layer_norm_epsilon = {eps}; only 1e-5 is supported.");
        foreach (var dropout in new[] { "resid_pdrop", "embd_pdrop", "attn_pdrop" }) json.Number(dropout, 0.1, 0, 1);   // checked, unused: import is for inference
        foreach (var flag in new[] { "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn" })
            if (json.Bool(flag, false)) throw new CheckpointException($"{path}: {flag} = true is not supported.");
        if (!json.Bool("scale_attn_weights", true)) throw new CheckpointException($"{path}: scale_attn_weights = false is not supported.");
        if (!json.Bool("tie_word_embeddings", true)) throw new CheckpointException($"{path}: tie_word_embeddings = false is not supported.");
        int positions = json.Int("n_positions", 1024, 1);
        json.Int("n_ctx", positions, 1);
        try
        {
            return new GptConfig
            {
                VocabSize = json.Int("vocab_size", 50257, 1), ContextLength = positions, Layers = json.Int("n_layer", 12, 1),
                Heads = json.Int("n_head", 12, 1), Width = width, Dropout = 0f, Bias = true, PositionalEncoding = Nn.PositionalEncodingKind.Learned,
            }.Validate();
        }
        catch (ArgumentException e) { throw new CheckpointException($"{path}: {e.Message}"); }
    }

    static float[] Transpose(float[] values, int rows, int cols)
    {
        var t = new float[values.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) t[j * rows + i] = values[i * cols + j];
        return t;
    }
}
