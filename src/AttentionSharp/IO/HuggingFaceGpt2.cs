using System.Text.Json;
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
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";

    /// <summary>
    /// Written beside an export: the logits this library computes for a fixed run of token ids, so the exported file can
    /// be checked in any framework (scripts/check_hf_export.py rebuilds GPT-2 in plain PyTorch and compares).
    /// </summary>
    public const string ReferenceFile = "attn_reference_logits.json";

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
        AtomicWrite(Path.Combine(directory, ConfigFile), ConfigJson(c).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicWrite(Path.Combine(directory, ReferenceFile), ReferenceJson(model).ToJsonString());
    }

    /// <summary>{"ids": [...], "logits": [T·V values]} for ids (7·t + 3) mod V, t &lt; min(16, context).</summary>
    public static JsonObject ReferenceJson(Gpt model)
    {
        int t = Math.Min(16, model.Config.ContextLength), v = model.Config.VocabSize;
        var ids = Enumerable.Range(0, t).Select(i => (int)((7L * i + 3) % v)).ToArray();
        bool training = model.Training;
        model.Eval();
        float[] logits;
        using (Autograd.GradMode.NoGrad())
        using (var output = model.Forward(ids, 1, t)) logits = output.ToArray();
        model.Train(training);
        return new JsonObject
        {
            ["ids"] = new JsonArray(ids.Select(i => (JsonNode)JsonValue.Create(i)).ToArray()),
            ["logits"] = new JsonArray(logits.Select(x => (JsonNode)JsonValue.Create(x)).ToArray()),
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

    /// <summary>Reads a GPT-2 directory (config.json and model.safetensors) into a new <see cref="Gpt"/>.</summary>
    public static Gpt Import(string directory)
    {
        var configPath = Path.Combine(directory, ConfigFile);
        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(configPath)) throw new CheckpointException($"'{directory}' has no {ConfigFile}: not a Hugging Face model directory.");
        if (!File.Exists(weightsPath)) throw new CheckpointException($"'{directory}' has no {WeightsFile} (only safetensors weights are read, not pytorch_model.bin).");
        var config = ReadConfig(configPath);
        var model = new Gpt(config, new Generator(0));
        var file = SafetensorsFile.Read(weightsPath);
        var expected = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        var state = new Dictionary<string, Tensor>();
        try
        {
            foreach (var e in file.Entries)
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
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new CheckpointException($"{path} is not a JSON object."); }
        catch (JsonException e) { throw new CheckpointException($"{path} is not valid JSON: {e.Message}"); }
        // Typed reads of optional fields: absent or null gives the default, a value of the wrong JSON type is named.
        T? Field<T>(string key) where T : struct => json[key] switch
        {
            null => null,
            JsonValue v when v.GetValueKind() == JsonValueKind.Null => null,
            JsonValue v when v.TryGetValue<T>(out var x) => x,
            var other => throw new CheckpointException($"{path}: '{key}' should be {(typeof(T) == typeof(bool) ? "true or false" : "a number")}; it is {other.ToJsonString()}."),
        };
        string? Text(string key) => json[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<string>(out var x) => x,
            var other => throw new CheckpointException($"{path}: '{key}' should be a string; it is {other.ToJsonString()}."),
        };
        string? type = Text("model_type");
        if (type != "gpt2") throw new CheckpointException($"{path}: model_type is '{type ?? "missing"}'; only gpt2 can be imported.");
        int Int(string key, int? fallback = null) => json[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i
            : fallback ?? throw new CheckpointException($"{path}: '{key}' is missing or not an integer.");
        // GPT2Config's defaults where a field is absent.
        int width = Int("n_embd", 768);
        if (Field<int>("n_inner") is { } inner && inner != 4 * width)
            throw new CheckpointException($"{path}: n_inner = {inner} but only the GPT-2 feed-forward width 4·n_embd = {4 * width} is supported.");
        string activation = Text("activation_function") ?? "gelu_new";
        if (activation is not ("gelu_new" or "gelu_pytorch_tanh"))
            throw new CheckpointException($"{path}: activation_function '{activation}' is not supported; GPT-2's is gelu_new (GELU, tanh form).");
        double eps = Field<double>("layer_norm_epsilon") ?? 1e-5;
        if (Math.Abs(eps - 1e-5) > 1e-12) throw new CheckpointException($"{path}: layer_norm_epsilon = {eps}; only 1e-5 is supported.");
        foreach (var flag in new[] { "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn" })
            if (Field<bool>(flag) == true) throw new CheckpointException($"{path}: {flag} = true is not supported.");
        if (Field<bool>("scale_attn_weights") == false) throw new CheckpointException($"{path}: scale_attn_weights = false is not supported.");
        if (Field<bool>("tie_word_embeddings") == false) throw new CheckpointException($"{path}: tie_word_embeddings = false is not supported.");
        try
        {
            return new GptConfig
            {
                VocabSize = Int("vocab_size", 50257), ContextLength = Int("n_positions", 1024), Layers = Int("n_layer", 12),
                Heads = Int("n_head", 12), Width = width, Dropout = 0f, Bias = true, PositionalEncoding = Nn.PositionalEncodingKind.Learned,
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

    static void AtomicWrite(string path, string text)
    {
        var temp = path + $".tmp-{Environment.ProcessId}";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}
