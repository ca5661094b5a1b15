using System.Globalization;
using System.Text.Json.Nodes;
using AttentionSharp.IO;
using AttentionSharp.Nn;

namespace AttentionSharp.Training;

/// <summary>
/// A training run's state beyond the weights (trainer_state.json and the optimizer's moments): with it, N steps, a
/// checkpoint, a new process resuming from it and N more steps equal 2N steps bit for bit.
/// </summary>
public static class TrainingState
{
    /// <summary>
    /// Everything beyond the weights and moments that exact resumption needs: the step, the schedule's length, the
    /// optimizer's step count, the best objective so far, every generator of the model (dropout) and the task's state.
    /// </summary>
    public static JsonObject Capture(Trainer trainer, Module model, JsonObject taskState, double bestObjective,
        TrainOptions options) => new()
        {
            ["step"] = trainer.Step,
            ["schedule_steps"] = trainer.Schedule.TotalSteps,
            ["optimizer_steps"] = trainer.Optimizer.StepCount,
            ["best_objective"] = double.IsFinite(bestObjective) ? bestObjective : null,
            ["seed"] = options.Seed.ToString(CultureInfo.InvariantCulture),
            ["options"] = options.ToJson(),
            ["generators"] = new JsonObject(model.NamedGenerators()
                .Select(g => KeyValuePair.Create(g.Name, (JsonNode?)GeneratorState.ToJson(g.Generator)))),
            ["task"] = taskState,
            ["ema_updates"] = trainer.Average?.Updates,
            ["ema_in_weights"] = trainer.Average?.Swapped,
        };

    /// <summary>Restores what <see cref="Capture"/> wrote; returns the best objective so far and the task's state.</summary>
    public static (double BestObjective, JsonObject TaskState) Restore(Checkpoint.Contents contents, Trainer trainer,
        Module model)
    {
        var state = contents.State;
        trainer.Step = ReadInt(state, "step");
        trainer.Schedule = trainer.Schedule with { TotalSteps = ReadInt(state, "schedule_steps") };
        trainer.Optimizer.RestoreStep(ReadInt(state, "optimizer_steps"));
        if (state["generators"] is not JsonObject generators)
            throw new CheckpointException("The trainer state has no 'generators', so training cannot resume exactly " +
                                          "(a checkpoint written by an older version: start a new run).");
        foreach (var (name, generator) in model.NamedGenerators())
            generator.SetState(GeneratorState.FromJson(generators[name], $"generators.{name}"));
        var taskState = state["task"] as JsonObject ?? throw new CheckpointException("The trainer state has no 'task' object.");
        if (contents.OptimizerMoments is not { } moments)
            throw new CheckpointException("The checkpoint has no optimizer state (optimizer.safetensors), so training " +
                                          "cannot resume exactly.");
        var byName = moments.ToDictionary(m => m.Name);
        int i = 0;
        foreach (var (name, p) in model.NamedParameters())
        {
            if (!byName.TryGetValue(name, out var saved) || saved.M.Length != p.Count || saved.V.Length != p.Count)
                throw new CheckpointException($"The optimizer state does not match parameter '{name}'.");
            trainer.Optimizer.SetMoments(i++, saved.M, saved.V);
        }
        if (trainer.Average is { } average && contents.WeightAverage is { } kept)
        {
            var values = kept.ToDictionary(a => a.Name, a => a.Values);
            var ordered = model.NamedParameters()
                .Select(p => values.TryGetValue(p.Name, out var v) && v.Length == p.Parameter.Count ? v
                    : throw new CheckpointException($"The checkpoint's weight average does not match parameter '{p.Name}'."))
                .ToList();
            average.Restore(ordered, ReadInt(state, "ema_updates"), state["ema_in_weights"]?.GetValue<bool>() ?? false);
        }
        else if (trainer.Average is { } fresh)   // --ema added on resuming a run that kept no average: it starts here
            fresh.Restore([.. model.NamedParameters().Select(p => p.Parameter.Data.ToArray())], 0, inWeights: false);
        return (state["best_objective"] is JsonValue b && b.TryGetValue<double>(out var best) ? best : double.PositiveInfinity,
            taskState);
    }

    static int ReadInt(JsonObject state, string name) =>
        state[name] is JsonValue v && v.TryGetValue<int>(out var i)
            ? i : throw new CheckpointException($"The trainer state's '{name}' is missing or not an integer.");
}
