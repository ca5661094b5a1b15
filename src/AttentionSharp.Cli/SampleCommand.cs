using System.CommandLine;
using AttentionSharp.Data;
using AttentionSharp.Generation;
using AttentionSharp.IO;
using AttentionSharp.Models;

namespace AttentionSharp.Cli;

/// <summary>`attn sample`: continue a prompt with a trained GPT checkpoint.</summary>
static class SampleCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint directory written by attn train.", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue.", DefaultValueFactory = _ => "The " };
        var tokens = new Option<int>("--tokens") { Description = "Tokens to generate.", DefaultValueFactory = _ => 300 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature (0 = greedy).", DefaultValueFactory = _ => 0.8f };
        var topK = new Option<int>("--top-k") { Description = "Keep only the K most likely tokens (0 = all).", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling: keep the most likely tokens up to this probability mass.", DefaultValueFactory = _ => 1f };
        var penalty = new Option<float>("--repetition-penalty") { Description = "Penalise tokens already present (1 = off).", DefaultValueFactory = _ => 1f };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the sampler.", DefaultValueFactory = _ => 1 };
        var command = new Command("sample", "Generate text from a trained checkpoint.") { checkpoint, prompt, tokens, temperature, topK, topP, penalty, seed };
        command.SetAction(r => CliErrors.Run(() =>
        {
            var dir = r.GetValue(checkpoint)!;
            var options = new SamplingOptions
            {
                Temperature = r.GetValue(temperature), TopK = r.GetValue(topK), TopP = r.GetValue(topP), RepetitionPenalty = r.GetValue(penalty),
            }.Validate();
            int count = r.GetValue(tokens);
            if (count < 0) throw new ArgumentException($"--tokens must be ≥ 0; got {count}.");
            var (model, tokenizer) = Load(dir);
            var text = r.GetValue(prompt)!;
            var ids = tokenizer.Encode(text);
            if (ids.Length == 0) throw new ArgumentException("--prompt is empty; give at least one character.");
            if (ids.Length > model.Config.ContextLength)
                throw new ArgumentException($"The prompt is {ids.Length} tokens long but the model's context is {model.Config.ContextLength}; shorten it.");
            Console.Write(text);
            var generated = new List<int>();
            string shown = "";
            TextGenerator.Generate(model, ids, count, options, new Generator(r.GetValue(seed)), id =>
            {
                // Decode the whole continuation each time, so multi-token characters appear once complete.
                generated.Add(id);
                var now = tokenizer.Decode(generated.ToArray());
                if (now.StartsWith(shown, StringComparison.Ordinal)) Console.Write(now[shown.Length..]);
                shown = now;
            });
            Console.WriteLine();
            return 0;
        }));
        return command;
    }

    /// <summary>Rebuilds the model and tokenizer of a checkpoint.</summary>
    public static (Gpt Model, ITokenizer Tokenizer) Load(string dir)
    {
        var contents = Checkpoint.ReadContents(dir);
        GptConfig config;
        try { config = GptConfig.FromJson(contents.Config); }
        catch (ArgumentException e) { throw new CheckpointException($"Checkpoint '{dir}' is not a GPT checkpoint: {e.Message}"); }
        var tokenizer = ITokenizer.FromJson(contents.TokenizerJson, $"the tokenizer of checkpoint '{dir}'");
        if (tokenizer.VocabSize != config.VocabSize)
            throw new CheckpointException($"Checkpoint '{dir}' is inconsistent: its tokenizer has {tokenizer.VocabSize} ids but the model expects {config.VocabSize}.");
        var model = new Gpt(config, new Generator(0));
        Checkpoint.LoadWeights(dir, model);
        return (model, tokenizer);
    }
}
