using System.CommandLine;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.Training;

namespace AttentionSharp.Cli;

/// <summary>`attn eval`: loss, perplexity and bits per character of a checkpoint on held-out text.</summary>
static class EvalCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint")
        {
            Description = "Checkpoint or run directory written by attn train.", Required = true,
        };
        var data = new Option<string?>("--data")
        {
            Description = "What to evaluate on: a UTF-8 text file for a language model (default: the Brown corpus test " +
                          "split), or a task's data (e.g. the directory with the Fashion-MNIST IDX files).",
        };
        var json = new Option<string?>("--json") { Description = "Also write the figures to this JSON file." };
        var batch = new Option<int>("--batch") { Description = "Sequences per batch.", DefaultValueFactory = _ => 32 };
        var cache = new Option<string?>("--cache") { Description = "Data cache directory." };
        var split = new Option<string>("--split")
        {
            Description = "Which held-out split is scored: a language model's Brown documents (without --data), a g2p " +
                          "checkpoint's dictionary words (choose --beam and --length-penalty on validation, report test), " +
                          "or a fashion checkpoint's images (validation: the 5,000 held out of the training file).",
            DefaultValueFactory = _ => "test",
        };
        split.AcceptOnlyFromAmong("test", "validation");
        var (beam, lengthPenalty) = DecodingOptions.Create();
        var testViews = new Option<string?>("--test-views")
        {
            Description = "fashion: the views of each image averaged (none, mirror or shifts; default: the checkpoint's own).",
        };
        testViews.AcceptOnlyFromAmong([.. TestViews.Names]);
        var with = new Option<string[]>("--with")
        {
            Description = "g2p: more checkpoints that decode together with --checkpoint as an ensemble (the mean of " +
                          "their distributions).",
            AllowMultipleArgumentsPerToken = true,
        };
        var command = new Command("eval", "Evaluate a checkpoint on held-out text.")
        {
            checkpoint, data, json, batch, cache, split, beam, lengthPenalty, testViews, with,
        };
        command.SetAction(r => CliErrors.Run(() =>
        {
            if (r.GetValue(batch) <= 0) throw new ArgumentException($"--batch must be positive; got {r.GetValue(batch)}.");
            var taskName = Tasks.TaskRegistry.TaskOf(r.GetValue(checkpoint)!);
            bool validation = r.GetValue(split) == "validation";
            var others = r.GetValue(with) ?? [];
            if (others.Length > 0 && taskName != Tasks.G2pTask.Name)
                throw new ArgumentException($"--with applies to g2p checkpoints; '{r.GetValue(checkpoint)}' is " +
                                            (taskName is null ? "a language model." : $"a {taskName} checkpoint."));
            if (DecodingOptions.Read(r, beam, lengthPenalty, taskName, r.GetValue(checkpoint)!) is var (width, alpha))
                return Tasks.G2pTask.Evaluate(r.GetValue(checkpoint)!, r.GetValue(data), r.GetValue(json), r.GetValue(cache),
                    width, alpha, validation, others);
            if (taskName == Tasks.FashionTask.Name)
                return Tasks.FashionTask.Evaluate(r.GetValue(checkpoint)!, r.GetValue(data), r.GetValue(json),
                    r.GetValue(testViews), validation);
            if (r.GetValue(testViews) is not null)
                throw new ArgumentException($"--test-views applies to fashion checkpoints; '{r.GetValue(checkpoint)}' is " +
                                            (taskName is null ? "a language model." : $"a {taskName} checkpoint."));
            if (taskName is not null && validation)
                throw new ArgumentException("--split validation scores a language model, a g2p or a fashion checkpoint; " +
                                            $"'{r.GetValue(checkpoint)}' is a {taskName} checkpoint, scored on its test split.");
            if (taskName is not null)
                return Tasks.TaskRegistry.Eval.TryGetValue(taskName, out var evaluate)
                    ? evaluate(r.GetValue(checkpoint)!, r.GetValue(data), r.GetValue(json), r.GetValue(cache))
                    : throw new IO.CheckpointException($"Checkpoint '{r.GetValue(checkpoint)}' is for task '{taskName}', " +
                                                       "which this version cannot evaluate.");
            var (model, tokenizer) = Training.Tasks.GptCheckpoint.LoadForInference(r.GetValue(checkpoint)!);
            string text, source;
            if (r.GetValue(data) is { } file)
            {
                // The file is the text scored: it has no splits to choose from.
                if (validation)
                    throw new ArgumentException("--split validation chooses among the Brown corpus's documents; " +
                                                $"--data '{file}' is scored whole (leave out --split, or --data).");
                text = TextFile.Read(file);
                source = file;
            }
            else
            {
                var corpus = BrownCorpus.Fetch(DataCache.Resolve(r.GetValue(cache)), Console.Out);
                text = BrownCorpus.PlainText(validation ? corpus.Split().Validation : corpus.Split().Test);
                source = $"the Brown corpus {(validation ? "validation" : "test")} split";
            }
            var tokens = tokenizer.Encode(text);
            var batches = new TokenBatcher(tokens, r.GetValue(batch), model.Config.ContextLength, source);
            float loss = Training.Tasks.LanguageModelTask.MeanLoss(model, batches.Sequential().Select(b => (b.X, b.Y)),
                model.Config.ContextLength);
            double bitsPerChar = loss * tokens.Length / (double)text.Length / Math.Log(2);
            Console.WriteLine($"{source}: {text.Length:N0} characters, {tokens.Length:N0} tokens");
            Console.WriteLine($"loss {loss:F4} nats/token, perplexity {Math.Exp(loss):F3}, {bitsPerChar:F4} bits per character");
            if (r.GetValue(json) is { } path)
                File.WriteAllText(path, new JsonObject
                {
                    ["loss"] = loss, ["perplexity"] = Math.Exp(loss), ["bits_per_char"] = bitsPerChar,
                    ["tokens"] = tokens.Length, ["characters"] = text.Length, ["data"] = source,
                }.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }));
        return command;
    }
}
