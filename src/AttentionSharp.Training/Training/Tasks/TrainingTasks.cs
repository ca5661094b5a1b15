using System.Text.Json.Nodes;
using AttentionSharp.Distributed;
using AttentionSharp.IO;

namespace AttentionSharp.Training.Tasks;

/// <summary>The tasks a <see cref="TrainingRun"/> can train, by the name in <see cref="TrainOptions.Task"/>.</summary>
public static class TrainingTasks
{
    /// <summary>
    /// The task <paramref name="options"/> names, with its data read and its model built — from the checkpoint being
    /// resumed when <paramref name="resumed"/> is given, whose task and network must be the ones asked for.
    /// </summary>
    public static ITrainingTask Create(TrainOptions options, Checkpoint.Contents? resumed, ICommunicator communicator,
        TextWriter output)
    {
        if (resumed is not null)
        {
            var task = TaskOf(resumed.Config);
            if (task != options.Task)
                throw new ArgumentException($"--resume '{options.Resume}' holds a {task} checkpoint, not --task {options.Task}.");
            RefuseEnsemble(resumed.Config, options.Resume!);
            var model = resumed.Config["model"]?.GetValue<string>() ?? "transformer";
            if (model != options.Model)
                throw new ArgumentException($"--resume '{options.Resume}' holds a {model} model, not --model {options.Model}.");
        }
        return options.Task switch
        {
            "gpt" => new LanguageModelTask(options, resumed, communicator, output),
            "pos" or "mlm" => new TaggingTask(options, resumed, communicator, output),
            "fashion" => new ImageTask(options, resumed, communicator, output),
            "g2p" => new PronunciationTask(options, resumed, communicator, output),
            var other => throw new ArgumentException(
                $"--task '{other}' is unknown; available: {string.Join(", ", TaskPresets.Tasks)}."),
        };
    }

    /// <summary>
    /// Refuses to resume an ensemble's checkpoint (<paramref name="config"/> of <paramref name="resume"/>), naming what
    /// to resume instead.
    /// </summary>
    public static void RefuseEnsemble(JsonObject config, string resume)
    {
        if (config["model"] is JsonValue v && v.TryGetValue<string>(out var model) && model == Seq2SeqNetwork.EnsembleModel)
            throw new ArgumentException($"--resume '{resume}' is an ensemble's checkpoint: its models decode together and " +
                                        "train no further. Continue an unfinished ensemble with --resume on its run " +
                                        $"directory (the one holding {EnsembleRun.ManifestFile}).");
    }

    /// <summary>
    /// The closing figures of an ensemble run (<see cref="EnsembleRun"/>): the task of <paramref name="options"/> scoring
    /// the best checkpoints of <paramref name="memberDirs"/> decoding together.
    /// </summary>
    public static ITrainingTask Ensemble(TrainOptions options, IReadOnlyList<string> memberDirs, ICommunicator communicator,
        TextWriter output) => options.Task switch
        {
            "g2p" => new PronunciationTask(options, null, communicator, output, Seq2SeqNetwork.LoadEnsemble(memberDirs).Network),
            var other => throw new ArgumentException($"--ensemble is not available for --task {other}."),
        };

    /// <summary>
    /// The task of a checkpoint's config.json: its "task" field; a language model's has none (model_type gpt2), nor does
    /// a ViT's written before the recurrent baselines (model_type vit).
    /// </summary>
    public static string TaskOf(JsonObject config) =>
        config["task"] is JsonValue v && v.TryGetValue<string>(out var name) ? name
        : (config["model_type"] as JsonValue)?.ToString() switch
        {
            "gpt2" => "gpt",
            "vit" => "fashion",
            var other => other ?? "unknown",
        };

    /// <summary>The "task" field of a checkpoint's config.json, or null when it has none or cannot be read.</summary>
    public static string? TaskOf(string checkpointDir)
    {
        var path = Path.Combine(Checkpoint.Resolve(checkpointDir), Checkpoint.ConfigFile);
        if (!File.Exists(path)) return null;
        try { return (JsonNode.Parse(File.ReadAllText(path)) as JsonObject)?["task"]?.GetValue<string>(); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }
}
