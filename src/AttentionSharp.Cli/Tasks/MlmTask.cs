using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Training;

namespace AttentionSharp.Cli.Tasks;

/// <summary>
/// `attn train --task mlm`: masked-word pre-training of the BERT encoder on the Brown training sentences (BERT's
/// corruption of 15 % of the words), with the pos task's vocabulary, so `attn train --task pos --init RUN` can start the
/// tagger from it. `attn eval` reports the loss and the accuracy of recovering the masked words of the test split.
/// </summary>
static class MlmTask
{
    public const string Name = "mlm";

    static readonly TaskDefaults Defaults = new()
    {
        Minutes = 18, Steps = 100_000, Layers = 4, Heads = 4, Width = 128, Dropout = 0.1f, Batch = 32, LearningRate = 1e-3f, Warmup = 300,
        WeightDecay = 0.01f, EvalInterval = 500,
    };

    /// <summary>The validation and test words are masked with draws from this seed, so every pass and every eval scores the same positions.</summary>
    const ulong EvalMaskSeed = 0x6D6C6D;

    public static int Train(TaskOptions o)
    {
        if (o.Data is not null) throw new ArgumentException("--task mlm trains on the Brown corpus; --data is not used.");
        if (o.Model != "transformer") throw new ArgumentException($"--task mlm pre-trains the BERT encoder; --model '{o.Model}' is not available for it (use transformer).");
        if (o.Init is not null || o.Resume is not null) throw new ArgumentException("--init and --resume are not available for --task mlm.");
        o = Defaults.Apply(o);
        var total = Stopwatch.StartNew();
        var options = new TrainOptions
        {
            Steps = o.Steps, Minutes = o.Minutes, Batch = o.Batch, LearningRate = o.LearningRate, WarmupSteps = o.Warmup,
            WeightDecay = o.WeightDecay, EvalInterval = o.EvalInterval, Seed = o.Seed,
        }.Validate();
        var (split, vocabulary, trainingWords) = PosTask.LoadCorpus(o.Cache);
        var train = TaggingDataset.Build(split.Train, vocabulary, trainingWords, PosTask.MaxLength);
        var validation = TaggingDataset.Build(split.Validation, vocabulary, trainingWords, PosTask.MaxLength);

        var config = new BertConfig
        {
            VocabSize = vocabulary.Count, MaxPositions = PosTask.MaxLength, TypeVocabSize = 1, Layers = o.Layers, Heads = o.Heads, Width = o.Width,
            IntermediateSize = 4 * o.Width, Dropout = o.Dropout, AttentionDropout = o.Dropout, PadTokenId = WordVocabulary.Pad,
        }.Validate();
        var model = new Bert(config, new Generator(options.Seed));
        var maskRng = new Generator(options.Seed ^ 0x4D41534BUL);
        var trainer = new TaggerTrainer(model, b => Logits(model, b), options) { Prepare = b => MaskedWords.Mask(b, vocabulary.Count, maskRng) };
        Console.WriteLine($"Data: the Brown corpus, {train.WordCount:N0} training and {validation.WordCount:N0} validation words; {vocabulary.Count:N0} word ids; 15% of the words masked.");
        Console.WriteLine($"Model: BERT encoder, {config.Layers} layers, {config.Heads} heads, width {config.Width}, {model.ParameterCount():N0} parameters. Threads: {Kernels.Parallel.ThreadCount}.");
        Console.WriteLine($"Training: {options.Steps} steps of {options.Batch} sentences" + (options.Minutes is { } m ? $", at most {m} minutes" : "") +
                          $"; {TaskDefaults.Describe(o)}; checkpoints in {o.Out}.");

        var (bestDir, checkpointDir, log) = TaggerRun.Open(o.Out);
        using (log)
        {
            var validationRng = new Generator(EvalMaskSeed);
            int code = TaggerRun.Train(trainer, train, validation, options, log, checkpointDir, bestDir, model,
                () => new Checkpoint.Contents(ConfigJson(config), vocabulary.ToJson(), new JsonObject { ["step"] = trainer.Step }, null),
                b => MaskedWords.Mask(b, vocabulary.Count, validationRng));
            if (code != 0) return code;
        }
        Console.WriteLine();
        Console.WriteLine($"Checkpoints: {Path.GetFullPath(bestDir)} (best), {Path.GetFullPath(checkpointDir)} (latest)   Log: {Path.GetFullPath(Path.Combine(o.Out, "log.jsonl"))}");
        Console.WriteLine($"Time: {total.Elapsed:m\\:ss}. Try: attn eval --checkpoint {o.Out}   attn train --task pos --init {o.Out}");
        return 0;
    }

    /// <summary>MLM logits (N, V) at the batch's masked positions.</summary>
    static Tensor Logits(Bert model, TaggingBatch b) => model.MlmLogits(MaskedWords.Gather(model.Forward(b.Ids, b.Batch, b.Time), b));

    public static int Evaluate(string checkpointDir, string? data, string? jsonPath, string? cache)
    {
        if (data is not null) throw new ArgumentException("An mlm checkpoint is evaluated on the Brown corpus test split; --data is not used.");
        var (model, vocabulary) = Load(checkpointDir);
        var split = BrownCorpus.Fetch(DataCache.Resolve(cache), Console.Out).Split();
        var test = TaggingDataset.Build(split.Test, vocabulary, TaggingDataset.WordSet(split.Train), PosTask.MaxLength);
        var rng = new Generator(EvalMaskSeed);
        var (loss, accuracy) = TaggerTrainer.Evaluate(model, b => Logits(model, b), test.Batches(32).Select(b => MaskedWords.Mask(b, vocabulary.Count, rng)).ToList());
        Console.WriteLine($"The Brown corpus test split: {test.WordCount:N0} words, {accuracy.Total:N0} of them masked (15%, fixed draws).");
        Console.WriteLine($"masked-word loss {loss:F4} (perplexity {Math.Exp(loss):F1}), {TaggerRun.Describe(accuracy)}");
        if (jsonPath is not null)
            File.WriteAllText(jsonPath, new JsonObject { ["loss"] = loss, ["accuracy"] = accuracy.Accuracy }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>The BERT and the word vocabulary of an mlm checkpoint (or run directory).</summary>
    public static (Bert Model, WordVocabulary Vocabulary) Load(string checkpointDir)
    {
        var contents = Checkpoint.ReadContents(checkpointDir);
        var network = contents.Config["network"] as JsonObject ?? throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' has no \"network\" object.");
        var model = new Bert(BertConfig.FromJson(network), new Generator(0));
        Checkpoint.LoadWeights(checkpointDir, model);
        return (model, WordVocabulary.FromJson(contents.TokenizerJson, $"the vocabulary of checkpoint '{checkpointDir}'"));
    }

    /// <summary>The config.json of an mlm checkpoint: the task, and the network's BertConfig.</summary>
    public static JsonObject ConfigJson(BertConfig config) => new() { ["task"] = Name, ["model"] = "transformer", ["max_length"] = PosTask.MaxLength, ["network"] = config.ToJson() };
}
