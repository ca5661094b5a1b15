using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Nn;

namespace AttentionSharp.IO;

/// <summary>
/// A training checkpoint: a directory holding the weights (model.safetensors, by parameter name), the optimizer's moments
/// (optimizer.safetensors), and JSON files for the model configuration, the tokenizer and the trainer's state. It is
/// written into a temporary sibling directory and then renamed into place, so a crash never leaves half a checkpoint.
/// </summary>
public static class Checkpoint
{
    public const string WeightsFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string ConfigFile = "config.json";
    public const string TokenizerFile = "tokenizer.json";
    public const string StateFile = "trainer_state.json";

    /// <summary>The subdirectory of a training run's output directory with the latest state (what --resume continues).</summary>
    public const string LatestSubdirectory = "checkpoint";

    /// <summary>The subdirectory of a training run's output directory with the weights that scored best on validation.</summary>
    public const string BestSubdirectory = "best";

    /// <summary>
    /// Accepts a checkpoint directory or a training run's output directory, which holds <see cref="BestSubdirectory"/>
    /// and <see cref="LatestSubdirectory"/>; <paramref name="preferBest"/> picks between them.
    /// </summary>
    public static string Resolve(string directory, bool preferBest = true)
    {
        RecoverInterruptedReplace(directory);
        if (File.Exists(Path.Combine(directory, ConfigFile))) return directory;
        string[] order = preferBest ? [BestSubdirectory, LatestSubdirectory] : [LatestSubdirectory, BestSubdirectory];
        foreach (var sub in order)
        {
            RecoverInterruptedReplace(Path.Combine(directory, sub));
            if (File.Exists(Path.Combine(directory, sub, ConfigFile))) return Path.Combine(directory, sub);
        }
        return directory;
    }

    /// <summary>
    /// A process killed inside <see cref="Replace"/>, between moving the old checkpoint aside and moving the new one in,
    /// leaves no <paramref name="target"/> but a complete "TARGET.old-…" beside it: that previous checkpoint is moved back.
    /// </summary>
    static void RecoverInterruptedReplace(string target)
    {
        var full = Path.GetFullPath(target);
        var parent = Path.GetDirectoryName(full);
        if (Directory.Exists(full) || parent is null || !Directory.Exists(parent)) return;
        var old = Directory.GetDirectories(parent, Path.GetFileName(full) + ".old-*")
            .Where(d => File.Exists(Path.Combine(d, ConfigFile)) && File.Exists(Path.Combine(d, WeightsFile))
                        && File.Exists(Path.Combine(d, StateFile)))
            .OrderByDescending(Directory.GetLastWriteTimeUtc).FirstOrDefault();
        if (old is not null) Directory.Move(old, full);
    }

    /// <summary>
    /// The prefix of the weight average's tensors in <see cref="OptimizerFile"/> (the parameter's name follows).
    /// </summary>
    const string AveragePrefix = "ema.";

    /// <summary>What a checkpoint holds besides the weights.</summary>
    public sealed record Contents(JsonObject Config, string TokenizerJson, JsonObject State,
        IReadOnlyList<(string Name, float[] M, float[] V)>? OptimizerMoments)
    {
        /// <summary>The moving average of the weights (--ema), by parameter name, kept beside the moments; or null.</summary>
        public IReadOnlyList<(string Name, float[] Values)>? WeightAverage { get; init; }
    }

    /// <summary>
    /// Writes <paramref name="model"/> and <paramref name="contents"/> to <paramref name="directory"/>, replacing it
    /// atomically.
    /// </summary>
    public static void Save(string directory, Module model, Contents contents)
    {
        var full = Path.GetFullPath(directory);
        var parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{directory}' has no parent directory.");
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            StateDictFile.Save(model, Path.Combine(temp, WeightsFile));
            if (contents.OptimizerMoments is { } moments)
            {
                var opt = new SafetensorsWriter();
                foreach (var (name, m, v) in moments)
                {
                    opt.Add("exp_avg." + name, [m.Length], m);
                    opt.Add("exp_avg_sq." + name, [v.Length], v);
                }
                foreach (var (name, values) in contents.WeightAverage ?? [])
                    opt.Add(AveragePrefix + name, [values.Length], values);
                opt.Save(Path.Combine(temp, OptimizerFile));
            }
            var options = new JsonSerializerOptions { WriteIndented = true };
            File.WriteAllText(Path.Combine(temp, ConfigFile), contents.Config.ToJsonString(options));
            File.WriteAllText(Path.Combine(temp, TokenizerFile), contents.TokenizerJson);
            File.WriteAllText(Path.Combine(temp, StateFile), contents.State.ToJsonString(options));
            Replace(temp, full);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>
    /// Swaps the finished temporary directory in for the target: the old one is renamed aside first, then removed.
    /// </summary>
    static void Replace(string temp, string target)
    {
        string? old = null;
        if (Directory.Exists(target))
        {
            old = target + $".old-{Guid.NewGuid():N}";
            Directory.Move(target, old);
        }
        Directory.Move(temp, target);
        if (old is not null) TryDelete(old);
    }

    static void TryDelete(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Reads the JSON parts of a checkpoint, naming the missing or broken file when something is wrong, and with
    /// <paramref name="optimizer"/> the optimizer's moments and the weight average (what a resumed run restores). Without
    /// it <see cref="Contents.OptimizerMoments"/> and <see cref="Contents.WeightAverage"/> are null and the optimizer file
    /// is not read: it holds two floats for every weight (and a third with --ema), which whoever only evaluates, samples
    /// or converts the model has no use for.
    /// </summary>
    public static Contents ReadContents(string directory, bool preferBest = true, bool optimizer = false)
    {
        directory = Resolve(directory, preferBest);
        if (!Directory.Exists(directory)) throw new CheckpointException($"Checkpoint directory '{directory}' does not exist.");
        foreach (var f in new[] { WeightsFile, ConfigFile, TokenizerFile, StateFile })
            if (!File.Exists(Path.Combine(directory, f)))
                throw new CheckpointException($"Checkpoint '{directory}' is incomplete: {f} is missing.");
        var config = ReadObject(directory, ConfigFile);
        var state = ReadObject(directory, StateFile);
        var tokenizer = File.ReadAllText(Path.Combine(directory, TokenizerFile));
        List<(string, float[], float[])>? moments = null;
        List<(string, float[])>? average = null;
        var optPath = Path.Combine(directory, OptimizerFile);
        if (optimizer && File.Exists(optPath))
        {
            var file = SafetensorsFile.Read(optPath);
            moments = [];
            foreach (var e in file.Entries.Where(e => e.Name.StartsWith("exp_avg.", StringComparison.Ordinal)))
            {
                var name = e.Name["exp_avg.".Length..];
                moments.Add((name, e.ToFloat32(), file.ReadFloat32("exp_avg_sq." + name)));
            }
            average = ReadAverage(file);
        }
        return new Contents(config, tokenizer, state, moments) { WeightAverage = average };
    }

    /// <summary>A JSON object file of a checkpoint, naming the file when it is broken.</summary>
    static JsonObject ReadObject(string directory, string file)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(Path.Combine(directory, file))) as JsonObject
                ?? throw new CheckpointException($"{file} in checkpoint '{directory}' is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{file} in checkpoint '{directory}' is not valid JSON: {e.Message}");
        }
    }

    /// <summary>The weight average kept in an optimizer file, by parameter name; null when it keeps none.</summary>
    static List<(string Name, float[] Values)>? ReadAverage(SafetensorsFile file)
    {
        var averaged = file.Entries.Where(e => e.Name.StartsWith(AveragePrefix, StringComparison.Ordinal)).ToList();
        return averaged.Count == 0 ? null : [.. averaged.Select(e => (e.Name[AveragePrefix.Length..], e.ToFloat32()))];
    }

    /// <summary>
    /// Loads the weights into <paramref name="model"/>, which must have exactly the checkpoint's parameters and shapes:
    /// the weights its run validated. A run with a weight average (--ema) validates the average, which a best checkpoint
    /// holds as its weights and a latest checkpoint beside them, in <see cref="OptimizerFile"/>: from a latest checkpoint
    /// the average is loaded, unless <paramref name="trained"/> asks for the trained weights (what a resumed run
    /// continues from).
    /// </summary>
    public static void LoadWeights(string directory, Module model, bool preferBest = true, bool trained = false)
    {
        directory = Resolve(directory, preferBest);
        try { StateDictFile.Load(model, Path.Combine(directory, WeightsFile)); }
        catch (ArgumentException e)
        {
            throw new CheckpointException($"Checkpoint '{directory}' does not fit this model: {e.Message}");
        }
        if (!trained) LoadAverage(directory, model);
    }

    /// <summary>
    /// The checkpoint's weights that <paramref name="include"/> accepts, by name, with their shapes: those
    /// <see cref="LoadWeights"/> would load (from a latest checkpoint with a weight average, the average). For a model
    /// built from part of a checkpoint, such as a tagger starting from a pre-trained encoder.
    /// </summary>
    public static Dictionary<string, (float[] Values, int[] Shape)> ReadWeights(string directory, Func<string, bool> include,
        bool preferBest = true)
    {
        directory = Resolve(directory, preferBest);
        var path = Path.Combine(directory, WeightsFile);
        if (!File.Exists(path))
            throw new CheckpointException($"Checkpoint '{directory}' is incomplete: {WeightsFile} is missing.");
        var weights = SafetensorsFile.Read(path, include).Entries
            .ToDictionary(e => e.Name, e => (Values: e.ToFloat32(), Shape: e.ShapeToArray()), StringComparer.Ordinal);
        if (ReadAverageApart(directory, weights.ContainsKey) is { } average)
            foreach (var name in weights.Keys.ToList())
            {
                if (!average.TryGetValue(name, out var values) || values.Length != weights[name].Values.Length)
                    throw new CheckpointException(
                        $"The weight average in checkpoint '{directory}' does not match parameter '{name}'.");
                weights[name] = (values, weights[name].Shape);
            }
        return weights;
    }

    /// <summary>
    /// Puts a latest checkpoint's weight average (if it keeps one outside its weights) in <paramref name="model"/>.
    /// </summary>
    static void LoadAverage(string directory, Module model)
    {
        if (ReadAverageApart(directory, _ => true) is not { } average) return;
        foreach (var (name, parameter) in model.NamedParameters())
        {
            if (!average.TryGetValue(name, out var values) || values.Length != parameter.Count)
                throw new CheckpointException(
                    $"The weight average in checkpoint '{directory}' does not match parameter '{name}'.");
            values.CopyTo(parameter.Data);
        }
    }

    /// <summary>
    /// The weight average of the parameters <paramref name="include"/> accepts, by name, where a latest checkpoint keeps
    /// it beside the trained weights (in <see cref="OptimizerFile"/>); null where the checkpoint keeps none apart (a
    /// best checkpoint holds the average as its weights). Only the average's tensors are read, not the moments.
    /// </summary>
    static Dictionary<string, float[]>? ReadAverageApart(string directory, Func<string, bool> include)
    {
        var optimizerPath = Path.Combine(directory, OptimizerFile);
        if (!File.Exists(Path.Combine(directory, StateFile)) || !File.Exists(optimizerPath)) return null;
        var state = ReadObject(directory, StateFile);
        if (state["ema_in_weights"] is not JsonValue kept || !kept.TryGetValue<bool>(out bool inWeights) || inWeights)
            return null;
        var file = SafetensorsFile.Read(optimizerPath,
            n => n.StartsWith(AveragePrefix, StringComparison.Ordinal) && include(n[AveragePrefix.Length..]));
        return ReadAverage(file)?.ToDictionary(a => a.Name, a => a.Values, StringComparer.Ordinal) ?? [];
    }
}
