using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttentionSharp.IO;

/// <summary>
/// What the Hugging Face exporters (<see cref="HuggingFaceGpt2"/>, <see cref="HuggingFaceBert"/>) share: the file names
/// of a model directory as <c>save_pretrained</c> writes it, the reference logits written beside an export, and writing
/// each file through a temporary name so that a crash never leaves half a file.
/// </summary>
public static class HuggingFaceFiles
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";

    /// <summary>
    /// Written beside an export: the logits this library computes for a fixed run of token ids, so the exported file can
    /// be checked in any framework (scripts/check_hf_export.py rebuilds the model in plain PyTorch and compares).
    /// </summary>
    public const string ReferenceFile = "attn_reference_logits.json";

    /// <summary>The model_type of <paramref name="directory"/>'s config.json ("gpt2", "bert", …), or null when it names none.</summary>
    public static string? ModelType(string directory)
    {
        var (configPath, _) = Paths(directory);
        return HuggingFaceConfig.ModelTypeOf(configPath);
    }

    /// <summary>config.json and model.safetensors of <paramref name="directory"/>, which must both exist.</summary>
    internal static (string Config, string Weights) Paths(string directory)
    {
        var configPath = Path.Combine(directory, ConfigFile);
        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(configPath)) throw new CheckpointException($"'{directory}' has no {ConfigFile}: not a Hugging Face model directory.");
        if (!File.Exists(weightsPath)) throw new CheckpointException($"'{directory}' has no {WeightsFile} (only safetensors weights are read, not pytorch_model.bin).");
        return (configPath, weightsPath);
    }

    /// <summary>Writes config.json, indented, and the reference logits into <paramref name="directory"/>.</summary>
    internal static void WriteJson(string directory, JsonObject config, JsonObject reference)
    {
        AtomicWrite(Path.Combine(directory, ConfigFile), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicWrite(Path.Combine(directory, ReferenceFile), reference.ToJsonString());
    }

    /// <summary>The logits <paramref name="forward"/> computes with <paramref name="model"/> in evaluation mode, without a tape; the mode is restored.</summary>
    internal static float[] EvalLogits(Nn.Module model, Func<Tensor> forward)
    {
        bool training = model.Training;
        model.Eval();
        try
        {
            using (Autograd.GradMode.NoGrad())
            using (var output = forward()) return output.ToArray();
        }
        finally { model.Train(training); }
    }

    /// <summary>A JSON array of numbers.</summary>
    internal static JsonArray Array<T>(IEnumerable<T> values) => new(values.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray());

    static void AtomicWrite(string path, string text)
    {
        var temp = path + $".tmp-{Environment.ProcessId}";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}
