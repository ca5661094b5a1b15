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
/// (--model transformer, from scratch or from an mlm checkpoint with --init) or a bidirectional recurrent tagger
/// (--model lstm, gru or rnn). Both read each word's id and its spelling (suffixes and shape), which is what tags words
/// never seen in training. Reports token accuracy overall and on unseen words: on validation while training, on test at
/// the end and in `attn eval`; `attn predict` tags a sentence.
/// </summary>
static class PosTask
{
    /// <summary>The longest piece of a sentence the models read; longer sentences (a few in Brown) are cut.</summary>
    public const int MaxLength = 128;

    /// <summary>Training words seen fewer times than this read as &lt;unk&gt;, so the model learns to tag unknown words.</summary>
    public const int MinWordCount = 2;

    static readonly string[] Models = ["transformer", .. RecurrentBase.CellNames];

    /// <summary>Defaults for options not given, per model: chosen to do well within the 20-minute aim on two cores.</summary>
    static TaskDefaults Defaults(string model) => model == "transformer"
        ? new TaskDefaults { Minutes = 18, Steps = 100_000, Layers = 4, Heads = 4, Width = 128, Dropout = 0.1f, Batch = 32, LearningRate = 1e-3f, Warmup = 300, WeightDecay = 0.01f, EvalInterval = 500 }
        : new TaskDefaults { Minutes = 18, Steps = 100_000, Layers = 2, Width = 128, Dropout = 0.25f, Batch = 32, LearningRate = 2e-3f, Warmup = 100, WeightDecay = 0.01f, EvalInterval = 500 };

    /// <summary>The Brown split with the training vocabulary (words and spelling features) and the set of training words.</summary>
    public static (DataSplit<IReadOnlyList<BrownDocument>> Split, WordVocabulary Vocabulary, HashSet<string> TrainingWords) LoadCorpus(string? cache)
    {
        var split = BrownCorpus.Fetch(DataCache.Resolve(cache), Console.Out).Split();
        var vocabulary = WordVocabulary.Build(split.Train.SelectMany(d => d.Sentences).SelectMany(s => s).Select(w => w.Word), MinWordCount);
        return (split, vocabulary, TaggingDataset.WordSet(split.Train));
    }

    public static int Train(TaskOptions o)
    {
        if (o.Data is not null) throw new ArgumentException("--task pos trains on the Brown corpus; --data is not used.");
        if (!Models.Contains(o.Model))   // checked before the corpus is read
            throw new ArgumentException($"--model '{o.Model}' is not available for --task pos; use one of {string.Join(", ", Models)}.");
        if (o.Init is not null && o.Model != "transformer")
            throw new ArgumentException($"--init starts the transformer tagger from an mlm checkpoint; --model '{o.Model}' cannot use one.");
        if (o.Resume is not null) throw new ArgumentException("--resume is not available for --task pos; start a new run (the best checkpoint is kept in --out).");
        o = Defaults(o.Model).Apply(o);
        var total = Stopwatch.StartNew();
        var options = new TrainOptions
        {
            Steps = o.Steps, Minutes = o.Minutes, Batch = o.Batch, LearningRate = o.LearningRate, WarmupSteps = o.Warmup,
            WeightDecay = o.WeightDecay, EvalInterval = o.EvalInterval, Seed = o.Seed,
        }.Validate();

        if (o.Init is not null && TaskRegistry.TaskOf(o.Init) != MlmTask.Name)   // checked before the corpus is read
            throw new CheckpointException($"--init '{o.Init}' is not an mlm checkpoint (its config.json names the task '{TaskRegistry.TaskOf(o.Init) ?? "none"}'); train one with attn train --task mlm.");
        var (split, vocabulary, trainingWords) = LoadCorpus(o.Cache);
        JsonObject? initConfig = null;
        if (o.Init is not null)
        {
            var init = Checkpoint.ReadContents(o.Init);
            var initVocabulary = WordVocabulary.FromJson(init.TokenizerJson, $"the vocabulary of checkpoint '{o.Init}'");
            if (!initVocabulary.SameAs(vocabulary))
                throw new CheckpointException($"--init '{o.Init}' has a different vocabulary ({initVocabulary.Count:N0} words, {initVocabulary.Features.Count:N0} spelling features) " +
                    $"from the one built from this corpus ({vocabulary.Count:N0} words, {vocabulary.Features.Count:N0} features): its word ids would mean other words.");
            initConfig = init.Config["network"] as JsonObject ?? throw new CheckpointException($"The config.json of checkpoint '{o.Init}' has no \"network\" object.");
        }
        var train = TaggingDataset.Build(split.Train, vocabulary, trainingWords, MaxLength);
        var validation = TaggingDataset.Build(split.Validation, vocabulary, trainingWords, MaxLength);
        var test = TaggingDataset.Build(split.Test, vocabulary, trainingWords, MaxLength);

        var network = initConfig is null
            ? Network.Create(o, vocabulary, new Generator(options.Seed))
            : Network.FromMlm(BertConfig.FromJson(initConfig), o, vocabulary, new Generator(options.Seed));
        if (o.Init is not null)
        {
            int loaded = LoadEncoder(o.Init, network.Model);
            Console.WriteLine($"Initialised from {o.Init}: {loaded} encoder tensors; the tag layer and spelling features start fresh.");
        }
        var trainer = new TaggerTrainer(network.Model, network.Logits, options);
        Console.WriteLine($"Data: the Brown corpus, {train.WordCount:N0} training, {validation.WordCount:N0} validation and {test.WordCount:N0} test words; " +
                          $"{vocabulary.Count:N0} word ids (seen at least {MinWordCount} times), {vocabulary.Features.Count:N0} spelling features, {UniversalTags.Count} universal tags.");
        Console.WriteLine($"Model: {network.Description}, {network.Model.ParameterCount():N0} parameters. Threads: {Kernels.Parallel.ThreadCount}.");
        Console.WriteLine($"Training: {options.Steps} steps of {options.Batch} sentences" + (options.Minutes is { } m ? $", at most {m} minutes" : "") +
                          $"; {TaskDefaults.Describe(o)}; checkpoints in {o.Out}.");

        var (bestDir, checkpointDir, log) = TaggerRun.Open(o.Out);
        using (log)
        {
            int code = TaggerRun.Train(trainer, train, validation, options, log, checkpointDir, bestDir, network.Model,
                () => new Checkpoint.Contents(network.Config, vocabulary.ToJson(), new JsonObject { ["step"] = trainer.Step }, null));
            if (code != 0) return code;

            Checkpoint.LoadWeights(bestDir, network.Model);
            var (testLoss, testAccuracy) = trainer.Evaluate(test.Batches(options.Batch));
            log.Write(new JsonObject { ["test_loss"] = testLoss, ["test_accuracy"] = testAccuracy.Accuracy, ["test_unseen_accuracy"] = testAccuracy.UnseenAccuracy });
            Console.WriteLine();
            Console.WriteLine($"Test (best checkpoint): loss {testLoss:F4}, {TaggerRun.Describe(testAccuracy)}.");
        }
        Console.WriteLine($"Checkpoints: {Path.GetFullPath(bestDir)} (best), {Path.GetFullPath(checkpointDir)} (latest)   Log: {Path.GetFullPath(Path.Combine(o.Out, "log.jsonl"))}");
        Console.WriteLine($"Time: {total.Elapsed:m\\:ss}. Try: attn eval --checkpoint {o.Out}   attn predict --checkpoint {o.Out} --input \"The jury praised the city.\"");
        return 0;
    }

    /// <summary>Copies every encoder tensor of the checkpoint into the tagger (names and shapes must agree); returns how many.</summary>
    static int LoadEncoder(string dir, Module tagger)
    {
        var path = Path.Combine(Checkpoint.Resolve(dir), Checkpoint.WeightsFile);
        var file = SafetensorsFile.Read(path);
        var own = tagger.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter, StringComparer.Ordinal);
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var e in file.Entries.Where(e => own.ContainsKey(e.Name)))
                state[e.Name] = Tensor.FromArray(e.ToFloat32(), e.ShapeToArray());
            var missing = own.Keys.Where(k => k.StartsWith("encoder.", StringComparison.Ordinal) && !state.ContainsKey(k)).ToList();
            if (missing.Count > 0) throw new CheckpointException($"Checkpoint '{dir}' lacks encoder tensors of this tagger: {string.Join(", ", missing.Take(5))}.");
            try { tagger.LoadStateDict(state, strict: false); }
            catch (ArgumentException e) { throw new CheckpointException($"Checkpoint '{dir}' does not fit this tagger: {e.Message}"); }
            return state.Count;
        }
        finally { foreach (var t in state.Values) t.Dispose(); }
    }

    public static int Evaluate(string checkpointDir, string? data, string? jsonPath, string? cache)
    {
        if (data is not null) throw new ArgumentException("A pos checkpoint is evaluated on the Brown corpus test split; --data is not used.");
        var (network, vocabulary) = Load(checkpointDir);
        var split = BrownCorpus.Fetch(DataCache.Resolve(cache), Console.Out).Split();
        var test = TaggingDataset.Build(split.Test, vocabulary, TaggingDataset.WordSet(split.Train), MaxLength);
        var (loss, accuracy) = TaggerTrainer.Evaluate(network.Model, network.Logits, test.Batches(32));
        Console.WriteLine($"The Brown corpus test split: {test.WordCount:N0} words, {accuracy.UnseenTotal:N0} of them unseen in training; model {network.Description}.");
        Console.WriteLine($"loss {loss:F4}, {TaggerRun.Describe(accuracy)}");
        if (jsonPath is not null)
            File.WriteAllText(jsonPath, new JsonObject { ["accuracy"] = accuracy.Accuracy, ["unseen_accuracy"] = accuracy.UnseenAccuracy }
                .ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>`attn predict`: tags <paramref name="input"/>, split into words as the Brown corpus is, and prints word/TAG.</summary>
    public static int Predict(string checkpointDir, string input, string? cache)
    {
        var (network, vocabulary) = Load(checkpointDir);
        var words = BrownWords.Tokenize(input);
        if (words.Count == 0) throw new ArgumentException("--input holds no words to tag.");
        var tags = new List<string>();
        for (int start = 0; start < words.Count; start += MaxLength)
        {
            var piece = words.Skip(start).Take(MaxLength).ToArray();
            var batch = TaggingDataset.FromSentences([TaggingDataset.Untagged(piece, vocabulary)]).Batches(1).Single();
            network.Model.Eval();
            using (Autograd.GradMode.NoGrad())
            using (TensorScope.Begin())
            {
                var logits = network.Logits(batch).ToArray();               // (1, T, K)
                for (int t = 0; t < piece.Length; t++)
                {
                    var row = logits.AsSpan(t * UniversalTags.Count, UniversalTags.Count);
                    tags.Add(UniversalTags.Names[System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row)]);
                }
            }
        }
        Console.WriteLine(string.Join(" ", words.Select((w, i) => $"{w}/{tags[i]}")));
        return 0;
    }

    static (Network Network, WordVocabulary Vocabulary) Load(string checkpointDir)
    {
        var contents = Checkpoint.ReadContents(checkpointDir);
        var network = Network.FromConfig(contents.Config, checkpointDir);
        Checkpoint.LoadWeights(checkpointDir, network.Model);
        return (network, WordVocabulary.FromJson(contents.TokenizerJson, $"the vocabulary of checkpoint '{checkpointDir}'"));
    }

    /// <summary>A tagging network with its batch → logits (B, T, K) function and the config.json that rebuilds it.</summary>
    sealed record Network(Module Model, Func<TaggingBatch, Tensor> Logits, JsonObject Config, string Description)
    {
        public static Network Create(TaskOptions o, WordVocabulary vocabulary, Generator rng) => o.Model switch
        {
            "transformer" => Bert(new BertConfig
            {
                VocabSize = vocabulary.Count, MaxPositions = MaxLength, TypeVocabSize = 1, Layers = o.Layers, Heads = o.Heads, Width = o.Width,
                IntermediateSize = 4 * o.Width, Dropout = o.Dropout, AttentionDropout = o.Dropout, PadTokenId = WordVocabulary.Pad,
                NumLabels = UniversalTags.Count, FeatureVocabSize = vocabulary.Features.Count, FeatureSlots = WordFeatures.Slots,
            }, rng),
            _ => Recurrent(new RecurrentTaggerConfig
            {
                Cell = o.Model, VocabSize = vocabulary.Count, EmbeddingSize = o.Width, HiddenSize = o.Width, Layers = o.Layers, NumLabels = UniversalTags.Count,
                Dropout = o.Dropout, FeatureVocabSize = vocabulary.Features.Count, FeatureSlots = WordFeatures.Slots,
            }, rng),
        };

        /// <summary>The tagger on an mlm checkpoint's encoder: its shape, with a tag layer and spelling features added.</summary>
        public static Network FromMlm(BertConfig mlm, TaskOptions o, WordVocabulary vocabulary, Generator rng) => Bert(mlm with
        {
            NumLabels = UniversalTags.Count, FeatureVocabSize = vocabulary.Features.Count, FeatureSlots = WordFeatures.Slots,
            Dropout = o.Dropout, AttentionDropout = o.Dropout,
        }, rng);

        public static Network FromConfig(JsonObject config, string checkpointDir)
        {
            if (config["network"] is not JsonObject network)
                throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' has no \"network\" object.");
            var rng = new Generator(0);
            return config["model"]?.GetValue<string>() switch
            {
                "transformer" => Bert(BertConfig.FromJson(network), rng),
                var cell when cell is not null && RecurrentBase.CellNames.Contains(cell) => Recurrent(RecurrentTaggerConfig.FromJson(network), rng),
                var other => throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' names the model '{other}'; expected one of {string.Join(", ", Models)}."),
            };
        }

        static Network Bert(BertConfig config, Generator rng)
        {
            var model = new Models.Bert(config.Validate(), rng);
            return new Network(model, b => model.TagLogits(model.Forward(b.Ids, b.Batch, b.Time, features: b.Features)), Wrap("transformer", config.ToJson()),
                $"BERT encoder, {config.Layers} layers, {config.Heads} heads, width {config.Width}, with spelling features");
        }

        static Network Recurrent(RecurrentTaggerConfig config, Generator rng)
        {
            var model = new RecurrentTagger(config, rng);
            return new Network(model, b => model.Forward(b.Ids, b.Batch, b.Time, b.Features), Wrap(config.Cell, config.ToJson()),
                $"bidirectional {config.Cell.ToUpperInvariant()}, {config.Layers} layers, embedding {config.EmbeddingSize}, hidden {config.HiddenSize} per direction, with spelling features");
        }

        static JsonObject Wrap(string model, JsonObject network) => new()
        {
            ["task"] = "pos", ["model"] = model, ["max_length"] = MaxLength, ["tags"] = new JsonArray(UniversalTags.Names.Select(n => (JsonNode)JsonValue.Create(n)).ToArray()),
            ["network"] = network,
        };
    }

    /// <summary>`attn viz`: the BERT tagger's self-attention over the words of a sentence, each labelled with its predicted tag.</summary>
    public static Visualization.AttentionView Visualize(string checkpointDir, VizInput input, string? cache)
    {
        if (input.Text is not { } text) throw new ArgumentException($"Checkpoint '{checkpointDir}' is a POS tagger: it reads --text, not --image.");
        var (network, vocabulary) = Load(checkpointDir);
        if (network.Model is not AttentionSharp.Models.Bert)
            throw new ArgumentException($"Checkpoint '{checkpointDir}' is a recurrent tagger ({network.Description}): it has no attention layers to draw. Train one with --model transformer.");
        var words = BrownWords.Tokenize(text);
        if (words.Count == 0) throw new ArgumentException("--text holds no words.");
        if (words.Count > MaxLength) throw new ArgumentException($"The sentence has {words.Count} words but the tagger reads at most {MaxLength}; give a shorter one.");
        var batch = TaggingDataset.FromSentences([TaggingDataset.Untagged([.. words], vocabulary)]).Batches(1).Single();
        network.Model.Eval();
        using var probe = Visualization.AttentionProbe.Start();
        float[] logits;
        using (Autograd.GradMode.NoGrad())
        using (TensorScope.Begin()) logits = network.Logits(batch).ToArray();
        var labels = words.Select((w, t) => $"{w}/{UniversalTags.Names[System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits.AsSpan(t * UniversalTags.Count, UniversalTags.Count))]}").ToList();
        return Visualization.AttentionView.SelfAttention($"BERT tagger attention on \"{VizCommand.Shorten(text)}\"", probe.Records, labels);
    }
}
