using System.Text.Json.Nodes;
using AttentionSharp.IO;
using AttentionSharp.Models;

namespace AttentionSharp.Training;

/// <summary>
/// Everything beyond the weights that exact resumption needs: the step, the schedule's length, the optimizer's moments,
/// and the states of the data and dropout generators. With them, N steps + resume + N steps equals 2N steps bit for bit.
/// </summary>
public static class TrainerState
{
    public static JsonObject Capture(Gpt model, LanguageModelTrainer trainer, Generator dataRng, float bestValidLoss, TrainOptions options) => new()
    {
        ["step"] = trainer.Step,
        ["schedule_steps"] = trainer.Schedule.TotalSteps,
        ["optimizer_steps"] = trainer.Optimizer.StepCount,
        ["best_val_loss"] = float.IsFinite(bestValidLoss) ? bestValidLoss : null,
        ["data_rng"] = Words(dataRng.GetState()),
        ["dropout_rng"] = Words(model.DropoutGenerator.GetState()),
        ["seed"] = options.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    static JsonArray Words(ulong[] state) => [.. state.Select(w => (JsonNode)w.ToString(System.Globalization.CultureInfo.InvariantCulture))];

    static ulong[] ReadWords(JsonObject state, string name)
    {
        if (state[name] is not JsonArray array) throw new CheckpointException($"The trainer state has no '{name}'.");
        return [.. array.Select(n => ulong.TryParse(n?.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture, out var v)
            ? v : throw new CheckpointException($"The trainer state's '{name}' holds a value that is not a 64-bit word."))];
    }

    static int ReadInt(JsonObject state, string name) =>
        state[name] is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw new CheckpointException($"The trainer state's '{name}' is missing or not an integer.");

    /// <summary>The AdamW moments by parameter name.</summary>
    public static IReadOnlyList<(string Name, float[] M, float[] V)> Moments(Gpt model, LanguageModelTrainer trainer) =>
        [.. model.NamedParameters().Select((p, i) => { var (m, v) = trainer.Optimizer.Moments(i); return (p.Name, m, v); })];

    public static void Restore(JsonObject state, Checkpoint.Contents contents, Gpt model, LanguageModelTrainer trainer, Generator dataRng, ref float bestValidLoss)
    {
        trainer.Step = ReadInt(state, "step");
        trainer.Schedule = trainer.Schedule with { TotalSteps = ReadInt(state, "schedule_steps") };
        trainer.Optimizer.RestoreStep(ReadInt(state, "optimizer_steps"));
        if (state["best_val_loss"] is JsonValue b && b.TryGetValue<float>(out var best)) bestValidLoss = best;
        dataRng.SetState(ReadWords(state, "data_rng"));
        model.DropoutGenerator.SetState(ReadWords(state, "dropout_rng"));
        if (contents.OptimizerMoments is not { } moments) throw new CheckpointException("The checkpoint has no optimizer state (optimizer.safetensors), so training cannot resume exactly.");
        var byName = moments.ToDictionary(m => m.Name);
        int i = 0;
        foreach (var (name, p) in model.NamedParameters())
        {
            if (!byName.TryGetValue(name, out var saved) || saved.M.Length != p.Count || saved.V.Length != p.Count)
                throw new CheckpointException($"The optimizer state does not match parameter '{name}'.");
            var (m, v) = trainer.Optimizer.Moments(i++);
            saved.M.CopyTo(m, 0);
            saved.V.CopyTo(v, 0);
        }
    }
}
