using System.CommandLine;
using AttentionSharp.Data;
using AttentionSharp.Generation;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Cli;

/// <summary>
/// `attn sample`: continue prompts with a trained GPT checkpoint. One prompt and one sample stream as they are
/// drawn; several samples or prompts are decoded together as one batch (<see cref="TextGenerator.GenerateBatch"/>)
/// and printed each under a header line.
/// </summary>
static class SampleCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint")
        {
            Description = "Checkpoint directory written by attn train.", Required = true,
        };
        var prompt = new Option<string>("--prompt")
        {
            Description = "Text to continue; '-' reads prompts from standard input, one per line.",
            DefaultValueFactory = _ => "The ",
        };
        var promptFile = new Option<string?>("--prompt-file")
        {
            Description = "Read prompts from this file, one per line (blank lines skipped); they are decoded as one batch.",
        };
        var tokens = new Option<int>("--tokens") { Description = "Tokens to generate.", DefaultValueFactory = _ => 300 };
        var temperature = new Option<float>("--temperature")
        {
            Description = "Sampling temperature (0 = greedy).", DefaultValueFactory = _ => 0.8f,
        };
        var topK = new Option<int>("--top-k")
        {
            Description = "Keep only the K most likely tokens (0 = all).", DefaultValueFactory = _ => 0,
        };
        var topP = new Option<float>("--top-p")
        {
            Description = "Nucleus sampling: keep the most likely tokens up to this probability mass.",
            DefaultValueFactory = _ => 1f,
        };
        var penalty = new Option<float>("--repetition-penalty")
        {
            Description = "Penalise tokens already present (1 = off).", DefaultValueFactory = _ => 1f,
        };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the sampler.", DefaultValueFactory = _ => 1 };
        var stops = new Option<string[]>("--stop")
        {
            Description = "End a sample once its text contains this string (repeatable); the stop string itself is not "
                        + "printed. A sample also ends at the tokenizer's end-of-text token, if it has one.",
        };
        var samples = new Option<int>("--num-samples")
        {
            Description = "Samples of each prompt, decoded together as a batch; one --seed reproduces the set.",
            DefaultValueFactory = _ => 1,
        };
        var interactive = new Option<bool>("--interactive")
        {
            Description = "Keep the model loaded and continue each line read from standard input, until end of input, "
                        + "an empty line or 'exit'.",
        };
        var device = new Option<string>("--device")
        {
            Description = "cpu, or cuda: draw from the model on the first NVIDIA GPU (a full forward pass of the window per "
                        + "token, no K/V cache there yet).",
            DefaultValueFactory = _ => "cpu",
        };
        var command = new Command("sample", "Generate text from a trained checkpoint.")
        {
            checkpoint, prompt, promptFile, tokens, temperature, topK, topP, penalty, seed, stops, samples, interactive, device,
        };
        command.SetAction(r => CliErrors.Run(() =>
        {
            var options = new SamplingOptions
            {
                Temperature = r.GetValue(temperature), TopK = r.GetValue(topK), TopP = r.GetValue(topP),
                RepetitionPenalty = r.GetValue(penalty),
            }.Validate();
            int count = r.GetValue(tokens);
            if (count < 0) throw new ArgumentException($"--tokens must be ≥ 0; got {count}.");
            int n = r.GetValue(samples);
            if (n < 1) throw new ArgumentException($"--num-samples must be ≥ 1; got {n}.");
            var stopStrings = r.GetValue(stops) ?? [];
            if (stopStrings.Any(string.IsNullOrEmpty)) throw new ArgumentException("--stop needs a non-empty string.");
            bool promptGiven = r.GetResult(prompt) is { Implicit: false };
            var file = r.GetValue(promptFile);
            bool loop = r.GetValue(interactive);
            if (file is not null && promptGiven)
                throw new ArgumentException("Give either --prompt or --prompt-file, not both.");
            if (loop && (file is not null || promptGiven))
                throw new ArgumentException(
                    "--interactive reads its prompts from standard input; leave out --prompt and --prompt-file.");
            if (file is not null && !File.Exists(file))
                throw new ArgumentException($"--prompt-file '{file}' does not exist.");

            bool cuda = TrainCommand.ParseDevice(r.GetValue(device)) == Training.TrainDevice.Cuda;
            // On the CPU an int8 checkpoint keeps only its int8 weights; the GPU model is built from fp32 ones.
            var (model, tokenizer) = cuda ? GptCheckpoint.Load(r.GetValue(checkpoint)!)
                                          : GptCheckpoint.LoadForInference(r.GetValue(checkpoint)!);
            if (cuda && Gpu.GpuGpt.Unsupported(model.Config) is { } reason) throw new NotSupportedException(reason);
            using var gpuDevice = cuda ? Gpu.GpuDevice.Cuda() : null;
            using var gpu = gpuDevice is null ? null : Gpu.GpuGpt.From(gpuDevice, model);
            var session = new SampleSession(model, tokenizer, options, count, r.GetValue(seed), n, stopStrings, gpu);
            int context = model.Config.ContextLength;
            if (loop) return session.Interactive(Console.In);
            var text = r.GetValue(prompt)!;
            List<SamplePrompts.Prompt> prompts =
                file is not null
                    ? SamplePrompts.FromLines(TextFile.Read(file), $"--prompt-file '{file}'", tokenizer, context)
                : text == "-"
                    ? SamplePrompts.FromLines(Console.In.ReadToEnd(), "standard input (--prompt -)", tokenizer, context)
                : [SamplePrompts.Encode(text, "the prompt (--prompt)", tokenizer, context)];
            session.Print(prompts);
            return 0;
        }));
        return command;
    }
}
