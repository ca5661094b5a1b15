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

    /// <summary>The index of a sharded checkpoint: each tensor's name → the shard file holding it, beside the index.</summary>
    public const string WeightsIndexFile = "model.safetensors.index.json";

    /// <summary>PyTorch's pickled weights, which this library does not read.</summary>
    public const string PickleFile = "pytorch_model.bin";

    /// <summary>
    /// config.json and the weights of <paramref name="directory"/>: model.safetensors, or the index of a sharded
    /// checkpoint (model.safetensors.index.json) when there is no single file; <see cref="ReadWeights"/> reads either.
    /// A directory with only pytorch_model.bin is refused with the command that converts it.
    /// </summary>
    internal static (string Config, string Weights) Paths(string directory)
    {
        var configPath = Path.Combine(directory, ConfigFile);
        if (!File.Exists(configPath)) throw new CheckpointException($"'{directory}' has no {ConfigFile}: not a Hugging Face model directory.");
        foreach (var name in new[] { WeightsFile, WeightsIndexFile })
            if (File.Exists(Path.Combine(directory, name))) return (configPath, Path.Combine(directory, name));
        if (File.Exists(Path.Combine(directory, PickleFile)) || File.Exists(Path.Combine(directory, PickleFile + ".index.json")))
        {
            string auto = HuggingFaceConfig.ModelTypeOf(configPath) switch
            {
                "gpt2" => "AutoModelForCausalLM",
                "bert" => "AutoModelForMaskedLM",
                _ => "AutoModel",
            };
            throw new CheckpointException($"'{directory}' holds its weights only as {PickleFile}, a Python pickle this library does not read; " +
                                          $"convert it to safetensors with python -c \"from transformers import {auto}; {auto}.from_pretrained('{directory}')" +
                                          ".save_pretrained('OUT', safe_serialization=True)\" and import OUT.");
        }
        throw new CheckpointException($"'{directory}' has no {WeightsFile} or {WeightsIndexFile}: no weights to import.");
    }

    /// <summary>
    /// The tensors of <paramref name="weightsPath"/>: a safetensors file, or a sharded checkpoint's index, whose
    /// "weight_map" names for each tensor the shard (a file beside the index) that holds it.
    /// </summary>
    internal static IReadOnlyList<SafetensorsEntry> ReadWeights(string weightsPath)
    {
        if (!weightsPath.EndsWith(".index.json", StringComparison.Ordinal)) return SafetensorsFile.Read(weightsPath).Entries;
        JsonObject? map;
        try { map = (JsonNode.Parse(File.ReadAllText(weightsPath)) as JsonObject)?["weight_map"] as JsonObject; }
        catch (JsonException e) { throw new CheckpointException($"{weightsPath} is not valid JSON: {e.Message}"); }
        if (map is null || map.Count == 0)
            throw new CheckpointException($"{weightsPath}: 'weight_map' should be an object mapping each tensor's name to its shard file; it is missing or empty.");
        var directory = Path.GetDirectoryName(weightsPath) ?? ".";
        var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var entries = new List<SafetensorsEntry>(map.Count);
        foreach (var (name, node) in map)
        {
            if (node is not JsonValue v || !v.TryGetValue<string>(out var shard) || shard.Length == 0 || shard != Path.GetFileName(shard))
                throw new CheckpointException($"{weightsPath}: the shard of '{name}' should be a file name beside the index; it is {node?.ToJsonString() ?? "null"}.");
            if (!shards.TryGetValue(shard, out var file))
            {
                var shardPath = Path.Combine(directory, shard);
                if (!File.Exists(shardPath)) throw new CheckpointException($"{weightsPath} puts '{name}' in {shard}, which is not in '{directory}'.");
                shards[shard] = file = SafetensorsFile.Read(shardPath);
            }
            entries.Add(file.TryGetEntry(name, out var entry) ? entry
                : throw new CheckpointException($"{weightsPath} puts '{name}' in {shard}, which does not hold it."));
        }
        return entries;
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
