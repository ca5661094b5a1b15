using System.Text.Json.Nodes;
using AttentionSharp.Nn;

namespace AttentionSharp.Training;

/// <summary>
/// What a task plugs into <see cref="TrainingRun"/>: its model, batches and loss (<see cref="ILossSource"/>), its
/// validation metric, and what its checkpoints hold. The run owns everything else: the loop, the optimizer, the
/// schedule and time limit, checkpoints, the log, resuming, the NaN policy, Ctrl-C and data parallelism.
/// </summary>
public interface ITrainingTask : ILossSource
{
    /// <summary>The network being trained.</summary>
    Module Model { get; }

    /// <summary>The model's parameters with their weight-decay flag, in <see cref="Module.NamedParameters"/> order.</summary>
    IEnumerable<(Tensor Param, bool Decay)> ParameterGroups();

    /// <summary>The lines printed before training: the data, then the model ("Model: …").</summary>
    IReadOnlyList<string> Header { get; }

    /// <summary>What a batch row is, for the "Training:" line (e.g. "sentences", "32×128 tokens" is said as "128 tokens").</summary>
    string RowUnit { get; }

    /// <summary>What <see cref="ILossSource.Items"/> counts, for the rate (tok, words, images).</summary>
    string ItemUnit { get; }

    /// <summary>The title of the loss curve.</summary>
    string Title { get; }

    /// <summary>The checkpoint's config.json: what rebuilds the model (and names the task).</summary>
    JsonObject Config { get; }

    /// <summary>The checkpoint's tokenizer.json: the tokenizer or vocabulary.</summary>
    string TokenizerJson { get; }

    /// <summary>
    /// Scores the model on the validation split: with <paramref name="full"/> all of it, else the fixed sample of
    /// <see cref="TrainOptions.EvalSample"/> examples. A collective under data parallelism.
    /// </summary>
    Evaluation Evaluate(bool full);

    /// <summary>The task's own state for exact resumption (data order, masking and augmentation generators).</summary>
    JsonObject CaptureState();

    /// <summary>Restores what <see cref="CaptureState"/> captured.</summary>
    void RestoreState(JsonObject state);

    /// <summary>
    /// After training, with the best weights loaded: the task's closing figures (a test pass, samples), printed to
    /// <paramref name="output"/> and added to the log's last record. A collective under data parallelism; only rank 0
    /// prints.
    /// </summary>
    void Finish(TextWriter output, JsonObject record);

    /// <summary>Commands to try next, for the closing line (the run directory is given).</summary>
    string Try(string runDirectory);
}

/// <summary>
/// A validation pass: the loss, the figure the best checkpoint is chosen by (<see cref="Objective"/>, lower is better),
/// one line of text, and the fields for the log.
/// </summary>
public sealed record Evaluation(float Loss, double Objective, string Summary, JsonObject Record);
