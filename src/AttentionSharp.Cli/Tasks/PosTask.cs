using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Training;

namespace AttentionSharp.Cli.Tasks;

/// <summary>
/// `attn train --task pos`: part-of-speech tagging of the Brown corpus with the 12 universal tags, by a BERT encoder
/// trained from scratch (--model transformer) or a bidirectional LSTM (--model lstm). Reports token accuracy overall and
/// on words unseen in training: on validation while training, on test at the end and in `attn eval`.
/// </summary>
static class PosTask
{
    /// <summary>The longest piece of a sentence the models read; longer sentences (a few in Brown) are cut.</summary>
    const int MaxLength = 128;

    /// <summary>Training words seen fewer times than this read as &lt;unk&gt;, so the model learns to tag unknown words.</summary>
    const int MinWordCount = 2;

    public static int Train(TaskOptions o)
    {
        if (o.Data is not null) throw new ArgumentException("--task pos trains on the Brown corpus; --data is not used.");
        if (o.Model is not ("transformer" or "lstm"))   // checked before the corpus is read
            throw new ArgumentException($"--model '{o.Model}' is not available for --task pos; use transformer or lstm.");
        var total = Stopwatch.StartNew();
        var options = new TrainOptions
        {
            Steps = o.Steps, Minutes = o.Minutes, Batch = o.Batch, LearningRate = o.LearningRate, WarmupSteps = o.Warmup,
            WeightDecay = o.WeightDecay, EvalInterval = o.EvalInterval, Seed = o.Seed,
        }.Validate();

        var split = BrownCorpus.Fetch(DataCache.Resolve(o.Cache), Console.Out).Split();
        var vocabulary = WordVocabulary.Build(split.Train.SelectMany(d => d.Sentences).SelectMany(s => s).Select(w => w.Word), MinWordCount);
        var trainingWords = TaggingDataset.WordSet(split.Train);
        var train = TaggingDataset.Build(split.Train, vocabulary, trainingWords, MaxLength);
        var validation = TaggingDataset.Build(split.Validation, vocabulary, trainingWords, MaxLength);
        var test = TaggingDataset.Build(split.Test, vocabulary, trainingWords, MaxLength);

        var network = Network.Create(o, vocabulary.Count, new Generator(options.Seed));
        var trainer = new TaggerTrainer(network.Model, network.Logits, options);
        Console.WriteLine($"Data: the Brown corpus, {train.WordCount:N0} training, {validation.WordCount:N0} validation and {test.WordCount:N0} test words; " +
                          $"{vocabulary.Count:N0} word ids (seen at least {MinWordCount} times), {UniversalTags.Count} universal tags.");
        Console.WriteLine($"Model: {network.Description}, {network.Model.ParameterCount():N0} parameters. Threads: {Kernels.Parallel.ThreadCount}.");
        Console.WriteLine($"Training: {options.Steps} steps of {options.Batch} sentences" + (options.Minutes is { } m ? $", at most {m} minutes" : "") + $"; checkpoints in {o.Out}.");

        Directory.CreateDirectory(o.Out);
        var checkpointDir = Path.Combine(o.Out, Checkpoint.LatestSubdirectory);
        var bestDir = Path.Combine(o.Out, Checkpoint.BestSubdirectory);
        double bestAccuracy = double.NegativeInfinity;
        using var log = new MetricsLog(Path.Combine(o.Out, "log.jsonl"), append: false);
        var progress = new ProgressLine(Console.Out, Console.IsOutputRedirected);
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;

        void Save(string dir) => Checkpoint.Save(dir, network.Model, new Checkpoint.Contents(network.Config, vocabulary.ToJson(),
            new JsonObject { ["step"] = trainer.Step, ["best_val_accuracy"] = bestAccuracy }, null));

        try
        {
            trainer.Run(train,
                report =>
                {
                    progress.Update(report);
                    log.Write(new JsonObject { ["step"] = report.Step, ["loss"] = report.Loss, ["lr"] = report.LearningRate, ["grad_norm"] = report.GradNorm, ["elapsed_s"] = Math.Round(report.Elapsed.TotalSeconds, 2) });
                },
                step =>
                {
                    var (loss, accuracy) = trainer.Evaluate(validation.Batches(options.Batch));
                    bool best = accuracy.Accuracy > bestAccuracy;
                    if (best) bestAccuracy = accuracy.Accuracy;
                    progress.Line($"step {step}: validation loss {loss:F4}, {Describe(accuracy)}{(best ? " (best so far)" : "")}");
                    log.Write(new JsonObject { ["step"] = step, ["val_loss"] = loss, ["val_accuracy"] = accuracy.Accuracy, ["val_unseen_accuracy"] = accuracy.UnseenAccuracy });
                    Save(checkpointDir);
                    if (best) Save(bestDir);
                },
                cancel.Token);
        }
        finally { Console.CancelKeyPress -= onCancel; }
        if (cancel.IsCancellationRequested)
        {
            Save(checkpointDir);
            progress.Line($"Interrupted at step {trainer.Step}; checkpoint saved to {checkpointDir}.");
            return 130;
        }

        Checkpoint.LoadWeights(bestDir, network.Model);
        var (testLoss, testAccuracy) = trainer.Evaluate(test.Batches(options.Batch));
        log.Write(new JsonObject { ["test_loss"] = testLoss, ["test_accuracy"] = testAccuracy.Accuracy, ["test_unseen_accuracy"] = testAccuracy.UnseenAccuracy });
        Console.WriteLine();
        Console.WriteLine($"Test (best checkpoint): loss {testLoss:F4}, {Describe(testAccuracy)}.");
        Console.WriteLine($"Checkpoints: {Path.GetFullPath(bestDir)} (best), {Path.GetFullPath(checkpointDir)} (latest)   Log: {Path.GetFullPath(Path.Combine(o.Out, "log.jsonl"))}");
        Console.WriteLine($"Time: {total.Elapsed:m\\:ss}. Try: attn eval --checkpoint {o.Out}");
        return 0;
    }

    public static int Evaluate(string checkpointDir, string? data, string? jsonPath, string? cache)
    {
        if (data is not null) throw new ArgumentException("A pos checkpoint is evaluated on the Brown corpus test split; --data is not used.");
        var contents = Checkpoint.ReadContents(checkpointDir);
        var network = Network.FromConfig(contents.Config, checkpointDir);
        Checkpoint.LoadWeights(checkpointDir, network.Model);
        var vocabulary = WordVocabulary.FromJson(contents.TokenizerJson, $"the vocabulary of checkpoint '{checkpointDir}'");

        var split = BrownCorpus.Fetch(DataCache.Resolve(cache), Console.Out).Split();
        var test = TaggingDataset.Build(split.Test, vocabulary, TaggingDataset.WordSet(split.Train), MaxLength);
        var (loss, accuracy) = TaggerTrainer.Evaluate(network.Model, network.Logits, test.Batches(32));
        Console.WriteLine($"The Brown corpus test split: {test.WordCount:N0} words, {accuracy.UnseenTotal:N0} of them unseen in training; model {network.Description}.");
        Console.WriteLine($"loss {loss:F4}, {Describe(accuracy)}");
        if (jsonPath is not null)
            File.WriteAllText(jsonPath, new JsonObject { ["accuracy"] = accuracy.Accuracy, ["unseen_accuracy"] = accuracy.UnseenAccuracy }
                .ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    static string Describe(TagAccuracy a) =>
        $"accuracy {100 * a.Accuracy:F2}% ({a.Correct:N0}/{a.Total:N0}), on unseen words {100 * a.UnseenAccuracy:F2}% ({a.UnseenCorrect:N0}/{a.UnseenTotal:N0})";

    /// <summary>A tagging network with its batch → logits (B, T, K) function and the config.json that rebuilds it.</summary>
    sealed record Network(Module Model, Func<TaggingBatch, Tensor> Logits, JsonObject Config, string Description)
    {
        public static Network Create(TaskOptions o, int vocabSize, Generator rng) => o.Model switch
        {
            "transformer" => Bert(new BertConfig
            {
                VocabSize = vocabSize, MaxPositions = MaxLength, TypeVocabSize = 1, Layers = o.Layers, Heads = o.Heads, Width = o.Width,
                IntermediateSize = 4 * o.Width, Dropout = o.Dropout, AttentionDropout = o.Dropout, PadTokenId = WordVocabulary.Pad,
                NumLabels = UniversalTags.Count,
            }, rng),
            "lstm" => Lstm(new LstmTaggerConfig
            {
                VocabSize = vocabSize, EmbeddingSize = o.Width, HiddenSize = o.Width, Layers = o.Layers, NumLabels = UniversalTags.Count,
                Dropout = o.Dropout,
            }, rng),
            _ => throw new ArgumentException($"--model '{o.Model}' is not available for --task pos; use transformer or lstm.", nameof(o)),
        };

        public static Network FromConfig(JsonObject config, string checkpointDir)
        {
            if (config["network"] is not JsonObject network)
                throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' has no \"network\" object.");
            var rng = new Generator(0);
            return config["model"]?.GetValue<string>() switch
            {
                "transformer" => Bert(BertConfig.FromJson(network), rng),
                "lstm" => Lstm(LstmTaggerConfig.FromJson(network), rng),
                var other => throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' names the model '{other}'; expected transformer or lstm."),
            };
        }

        static Network Bert(BertConfig config, Generator rng)
        {
            var model = new Models.Bert(config.Validate(), rng);
            return new Network(model, b => model.TagLogits(model.Forward(b.Ids, b.Batch, b.Time)), Wrap("transformer", config.ToJson()),
                $"BERT encoder, {config.Layers} layers, {config.Heads} heads, width {config.Width}");
        }

        static Network Lstm(LstmTaggerConfig config, Generator rng)
        {
            var model = new LstmTagger(config, rng);
            return new Network(model, b => model.Forward(b.Ids, b.Batch, b.Time), Wrap("lstm", config.ToJson()),
                $"BiLSTM, {config.Layers} layers, embedding {config.EmbeddingSize}, hidden {config.HiddenSize} per direction");
        }

        static JsonObject Wrap(string model, JsonObject network) => new()
        {
            ["task"] = "pos", ["model"] = model, ["max_length"] = MaxLength, ["tags"] = new JsonArray(UniversalTags.Names.Select(n => (JsonNode)JsonValue.Create(n)).ToArray()),
            ["network"] = network,
        };
    }
}
