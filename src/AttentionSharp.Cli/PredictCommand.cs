using System.CommandLine;

namespace AttentionSharp.Cli;

/// <summary>
/// `attn predict`: run a task's checkpoint on one input — tag a sentence, pronounce a word, classify an image file,
/// fill in the masked words of a sentence.
/// The checkpoint's config.json names its task; a GPT language model is sampled with `attn sample` instead.
/// </summary>
static class PredictCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint")
        {
            Description = "Checkpoint or run directory written by attn train --task.", Required = true,
        };
        var input = new Option<string>("--input")
        {
            Description = "What to predict on: a sentence (pos), a word (g2p), an image file (fashion), a sentence with " +
                          "[MASK] where a word is missing (mlm).",
            Required = true,
        };
        var cache = new Option<string?>("--cache") { Description = "Data cache directory." };
        var (beam, lengthPenalty) = DecodingOptions.Create();
        var command = new Command("predict",
            "Run a task checkpoint on one input: tag a sentence, pronounce a word, classify an image, fill in masked words.")
        {
            checkpoint, input, cache, beam, lengthPenalty,
        };
        command.SetAction(r => CliErrors.Run(() =>
        {
            var dir = r.GetValue(checkpoint)!;
            var taskName = Tasks.TaskRegistry.TaskOf(dir)
                ?? throw new IO.CheckpointException(
                    $"Checkpoint '{dir}' has no task in its config.json; for a language model use attn sample.");
            if (DecodingOptions.Read(r, beam, lengthPenalty, taskName, dir) is var (width, alpha))
                return Tasks.G2pTask.Predict(dir, r.GetValue(input)!, width, alpha);
            return Tasks.TaskRegistry.Predict.TryGetValue(taskName, out var predict)
                ? predict(dir, r.GetValue(input)!, r.GetValue(cache))
                : throw new IO.CheckpointException(
                    $"Checkpoint '{dir}' is for task '{taskName}', which attn predict does not know.");
        }));
        return command;
    }
}
