using System.Text.Json.Nodes;

namespace AttentionSharp.Cli.Tasks;

/// <summary>
/// What `attn eval`, `attn predict` and `attn viz` do with a task checkpoint (`attn train` runs the library's tasks). A
/// task's checkpoint has a "task" field in its config.json, which is how `attn eval` finds the evaluator.
/// </summary>
static class TaskRegistry
{
    /// <summary>
    /// Evaluators by task name: (checkpoint directory, data file or null, JSON output path or null, cache) → exit code.
    /// g2p and fashion checkpoints take options of their own (the beam; the test views and split), so `attn eval` calls
    /// those tasks' evaluators itself.
    /// </summary>
    public static readonly Dictionary<string, Func<string, string?, string?, string?, int>> Eval = new(StringComparer.Ordinal)
    {
        ["pos"] = PosTask.Evaluate,
        [MlmTask.Name] = MlmTask.Evaluate,
    };

    /// <summary>
    /// Predictors by task name, for `attn predict`: (checkpoint directory, the input as the user gave it, cache) → exit code.
    /// The input is what the task reads: a sentence to tag, a word to pronounce, an image file to classify, a sentence
    /// with masked words to fill in.
    /// </summary>
    public static readonly Dictionary<string, Func<string, string, string?, int>> Predict = new(StringComparer.Ordinal)
    {
        ["pos"] = PosTask.Predict,
        ["fashion"] = FashionTask.Predict,
        ["g2p"] = G2pTask.Predict,
        [MlmTask.Name] = MlmTask.Predict,
    };

    /// <summary>Attention views by task name, for `attn viz`: (checkpoint directory, input, cache) → what to draw.</summary>
    public static readonly Dictionary<string, Func<string, VizInput, string?, Visualization.AttentionView>> Viz =
        new(StringComparer.Ordinal)
        {
            ["pos"] = PosTask.Visualize,
            ["fashion"] = FashionTask.Visualize,
            ["g2p"] = G2pTask.Visualize,
            [MlmTask.Name] = MlmTask.Visualize,
        };

    /// <summary>The "task" field of a checkpoint's config.json, or null (a GPT language model has none).</summary>
    public static string? TaskOf(string checkpointDir) => Training.Tasks.TrainingTasks.TaskOf(checkpointDir);
}
