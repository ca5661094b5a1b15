using System.Text.Json.Nodes;

namespace AttentionSharp.Cli.Tasks;

/// <summary>The options of <c>attn train</c> that every task reads (each task ignores what it has no use for).</summary>
sealed record TaskOptions
{
    public string? Data { get; init; }
    public required string Out { get; init; }
    public string? Cache { get; init; }
    /// <summary>transformer, lstm, gru or rnn.</summary>
    public string Model { get; init; } = "transformer";
    public int Steps { get; init; }
    public double? Minutes { get; init; }
    public ulong Seed { get; init; }
    public int Layers { get; init; }
    public int Heads { get; init; }
    public int Width { get; init; }
    public float Dropout { get; init; }
    public int Batch { get; init; }
    public float LearningRate { get; init; }
    public int Warmup { get; init; }
    public float WeightDecay { get; init; }
    public int EvalInterval { get; init; }
    /// <summary>The options given on the command line (with their dashes, e.g. "--lr"); the others take the task's defaults.</summary>
    public IReadOnlySet<string> Given { get; init; } = new HashSet<string>(StringComparer.Ordinal);
    /// <summary>--init: a checkpoint whose weights start the model (pos: an mlm checkpoint), or null.</summary>
    public string? Init { get; init; }
    /// <summary>--resume: a run or checkpoint directory to continue training from, or null.</summary>
    public string? Resume { get; init; }
    /// <summary>For sequence-to-sequence tasks: a recurrent model without attention (the fixed-size bottleneck).</summary>
    public bool NoAttention { get; init; }
}

/// <summary>
/// The tasks `attn train --task NAME` and `attn eval` know besides the GPT language model. A task's checkpoint has a
/// "task" field in its config.json, which is how `attn eval` finds the evaluator.
/// </summary>
static class TaskRegistry
{
    /// <summary>Trainers by task name; each returns the process exit code.</summary>
    public static readonly Dictionary<string, Func<TaskOptions, int>> Train = new(StringComparer.Ordinal)
    {
        ["pos"] = PosTask.Train,
        ["fashion"] = FashionTask.Train,
        [MlmTask.Name] = MlmTask.Train,
        ["g2p"] = G2pTask.Train,
    };

    /// <summary>Evaluators by task name: (checkpoint directory, data file or null, JSON output path or null, cache) → exit code.</summary>
    public static readonly Dictionary<string, Func<string, string?, string?, string?, int>> Eval = new(StringComparer.Ordinal)
    {
        ["pos"] = PosTask.Evaluate,
        ["fashion"] = FashionTask.Evaluate,
        [MlmTask.Name] = MlmTask.Evaluate,
        ["g2p"] = G2pTask.Evaluate,
    };

    /// <summary>
    /// Predictors by task name, for `attn predict`: (checkpoint directory, the input as the user gave it, cache) → exit code.
    /// The input is what the task reads: a sentence to tag, a word to pronounce, an image file to classify.
    /// </summary>
    public static readonly Dictionary<string, Func<string, string, string?, int>> Predict = new(StringComparer.Ordinal)
    {
        ["pos"] = PosTask.Predict,
        ["fashion"] = FashionTask.Predict,
        ["g2p"] = G2pTask.Predict,
    };

    /// <summary>Attention views by task name, for `attn viz`: (checkpoint directory, input, cache) → what to draw.</summary>
    public static readonly Dictionary<string, Func<string, VizInput, string?, Visualization.AttentionView>> Viz = new(StringComparer.Ordinal)
    {
        ["pos"] = PosTask.Visualize,
        ["fashion"] = FashionTask.Visualize,
        ["g2p"] = G2pTask.Visualize,
    };

    /// <summary>The "task" field of a checkpoint's config.json, or null (a GPT language model has none).</summary>
    public static string? TaskOf(string checkpointDir)
    {
        var path = Path.Combine(IO.Checkpoint.Resolve(checkpointDir), IO.Checkpoint.ConfigFile);
        if (!File.Exists(path)) return null;
        try { return (JsonNode.Parse(File.ReadAllText(path)) as JsonObject)?["task"]?.GetValue<string>(); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException) { return null; }
    }
}
