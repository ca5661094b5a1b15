using System.CommandLine;
using AttentionSharp.Data;
using AttentionSharp.Generation;
using AttentionSharp.IO;
using AttentionSharp.Models;

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
        var command = new Command("sample", "Generate text from a trained checkpoint.")
        {
            checkpoint, prompt, promptFile, tokens, temperature, topK, topP, penalty, seed, stops, samples, interactive,
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

            var (model, tokenizer) = Load(r.GetValue(checkpoint)!);
            var session = new Session(model, tokenizer, options, count, r.GetValue(seed), n, stopStrings);
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

    /// <summary>A loaded model and the options of one `attn sample` call: continues prompts, prints samples.</summary>
    sealed class Session(Gpt model, ITokenizer tokenizer, SamplingOptions options, int tokens, ulong seed, int samples,
                         string[] stops)
    {
        readonly StopConditions _stop = new()
        {
            Strings = stops, EndOfText = EndOfText.Find(tokenizer.Encode, tokenizer.Decode), Decode = tokenizer.Decode,
        };

        /// <summary>
        /// Continues each prompt <c>samples</c> times. Sample s of every prompt draws from the s-th generator of the seed,
        /// so a prompt gives the same samples alone or among others.
        /// </summary>
        public void Print(IReadOnlyList<SamplePrompts.Prompt> prompts) =>
            Print(prompts, [.. prompts.SelectMany(_ => TextGenerator.SampleGenerators(seed, samples))]);

        /// <summary>Streams a lone sample as it is drawn; prints several after the batch, each under a header.</summary>
        void Print(IReadOnlyList<SamplePrompts.Prompt> prompts, Generator[] generators)
        {
            if (prompts.Count == 1 && samples == 1)
            {
                Console.Write(prompts[0].Text);
                TextGenerator.GenerateBatch(model, [prompts[0].Ids], tokens, options, generators, _stop,
                                            onText: (_, text) => Console.Write(text));
                Console.WriteLine();
                return;
            }
            int[][] rows = [.. prompts.SelectMany(p => Enumerable.Repeat(p.Ids, samples))];
            var results = TextGenerator.GenerateBatch(model, rows, tokens, options, generators, _stop);
            for (int row = 0; row < results.Length; row++)
            {
                int p = row / samples, s = row % samples;
                string header = prompts.Count > 1 && samples > 1 ? $"prompt {p + 1}, sample {s + 1}"
                              : prompts.Count > 1 ? $"prompt {p + 1}" : $"sample {s + 1}";
                Console.WriteLine($"--- {header} ---");
                Console.WriteLine(prompts[p].Text + results[row].Text);
            }
        }

        /// <summary>
        /// Reads a line, prints its continuation, repeats until end of input, an empty line or "exit". The generators
        /// go on from one prompt to the next, so a session is reproducible from its seed and a repeated line differs.
        /// </summary>
        public int Interactive(TextReader input)
        {
            var generators = TextGenerator.SampleGenerators(seed, samples);
            int context = model.Config.ContextLength;
            while (true)
            {
                if (!Console.IsInputRedirected) Console.Write("> ");
                var line = input.ReadLine();
                if (line is null || line.Trim() is "" or "exit") return 0;
                SamplePrompts.Prompt prompt;
                try { prompt = SamplePrompts.Encode(line, "the prompt", tokenizer, context); }
                catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}"); continue; }
                Print([prompt], generators);
                Console.Out.Flush();
            }
        }
    }

    /// <summary>Rebuilds the model and tokenizer of a checkpoint.</summary>
    public static (Gpt Model, ITokenizer Tokenizer) Load(string dir)
    {
        var contents = Checkpoint.ReadContents(dir);
        GptConfig config;
        try { config = GptConfig.FromJson(contents.Config); }
        catch (ArgumentException e)
        {
            throw new CheckpointException($"Checkpoint '{dir}' is not a GPT checkpoint: {e.Message}");
        }
        var tokenizer = ITokenizer.FromJson(contents.TokenizerJson, $"the tokenizer of checkpoint '{dir}'");
        if (tokenizer.VocabSize != config.VocabSize)
            throw new CheckpointException($"Checkpoint '{dir}' is inconsistent: its tokenizer has {tokenizer.VocabSize} ids "
                                          + $"but the model expects {config.VocabSize}.");
        var model = new Gpt(config, new Generator(0));
        Checkpoint.LoadWeights(dir, model);
        return (model, tokenizer);
    }
}
