using System.CommandLine;
using System.Text.Json.Nodes;
using AttentionSharp.IO;

namespace AttentionSharp.Cli;

/// <summary>
/// `attn quantize`: writes an int8 copy of a GPT checkpoint (per-output-channel weights, docs/quantization.md) that
/// attn sample, eval and serve read like any other.
/// </summary>
static class QuantizeCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint")
        {
            Description = "GPT checkpoint or run directory (attn train --task gpt, or attn import of a GPT-2).", Required = true,
        };
        var output = new Option<string>("--out")
        {
            Description = "Run directory to write the int8 checkpoint into (as DIR/checkpoint).", Required = true,
        };
        var command = new Command("quantize", "Write an int8 copy of a GPT checkpoint: weights about a quarter of the size, " +
                                              "decoding faster where memory bandwidth bounds it.") { checkpoint, output };
        command.SetAction(r => CliErrors.Run(() =>
        {
            string source = Checkpoint.Resolve(r.GetValue(checkpoint)!), outDir = r.GetValue(output)!;
            var target = Path.Combine(outDir, Checkpoint.LatestSubdirectory);
            if (IsWithin(source, outDir))
                throw new ArgumentException($"--out {outDir} holds the checkpoint being quantized, which writing there would " +
                                            "overwrite; choose another directory.");
            if (Tasks.TaskRegistry.TaskOf(source) is { } task)
                throw new CheckpointException($"Checkpoint '{source}' is a {task} checkpoint; attn quantize writes int8 GPT " +
                                              "checkpoints (attn train --task gpt, or an imported GPT-2).");
            var contents = Checkpoint.ReadContents(source);
            var (model, _) = Training.Tasks.GptCheckpoint.Load(source);
            if (model.IsQuantized) throw new CheckpointException($"Checkpoint '{source}' is already int8.");
            long before = new FileInfo(Path.Combine(source, Checkpoint.WeightsFile)).Length;
            model.QuantizeInt8();
            var state = new JsonObject { ["quantized_from"] = Path.GetFullPath(source), ["quantization"] = "int8" };
            if (contents.State["step"] is { } step) state["step"] = step.DeepClone();
            Checkpoint.Save(target, model, new Checkpoint.Contents(contents.Config, contents.TokenizerJson, state, null));
            long after = new FileInfo(Path.Combine(target, Checkpoint.WeightsFile)).Length;
            Console.WriteLine($"Wrote {target}: int8 weights, {after / 1e6:F1} MB " +
                              $"({before / 1e6:F1} MB in fp32, {after / (double)before:P0}).");
            return 0;
        }));
        return command;
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="directory"/> or lies under it.</summary>
    static bool IsWithin(string path, string directory)
    {
        static string Full(string p) => Path.GetFullPath(p).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        return Full(path).StartsWith(Full(directory), StringComparison.Ordinal);
    }
}
