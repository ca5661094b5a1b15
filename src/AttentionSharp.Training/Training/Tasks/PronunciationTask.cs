using System.Text.Json.Nodes;
using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Distributed;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Training.Tasks;

/// <summary>
/// `--task g2p`: grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary (stress digits removed, 39 phonemes;
/// split 90/5/5 by word), by the Transformer encoder–decoder or a recurrent encoder–decoder (with Luong attention unless
/// --no-attention); trained with teacher forcing, scored by phoneme and word error rates (greedy on a validation sample
/// while training, greedy and beam search on the test words at the end).
/// </summary>
public sealed class PronunciationTask : ITrainingTask
{
    /// <summary>The beam width of the final test scores, `attn eval` and `attn predict` unless --beam says otherwise.</summary>
    public const int BeamWidth = 5;

    /// <summary>The values of <c>--pronunciations</c>: every pronunciation of a training word, or its first alone.</summary>
    public static IReadOnlyList<string> PronunciationChoices { get; } = ["all", "first"];

    /// <summary>Decoding stops after the word's length plus this many phonemes (no CMUdict word needs more).</summary>
    public const int ExtraOutputLength = 10;

    /// <summary>The periodic validation sample of words is drawn with this seed.</summary>
    const ulong SampleSeed = 0x62F;

    readonly Seq2SeqNetwork _network;
    readonly G2pDataset _validation, _sample, _test;
    readonly Seq2SeqBatches _batches;
    readonly G2pVocabulary _vocabulary;
    readonly int _beam;
    readonly double _lengthPenalty;

    /// <param name="options">The run's options.</param>
    /// <param name="resumed">The checkpoint being resumed, whose network is rebuilt; or null.</param>
    /// <param name="communicator">The ranks training together.</param>
    /// <param name="output">Where the data's fetching is reported.</param>
    /// <param name="network">
    /// A network to score instead of building one from <paramref name="options"/> or <paramref name="resumed"/>: an
    /// ensemble's trained members (<see cref="TrainingTasks.Ensemble"/>).
    /// </param>
    public PronunciationTask(TrainOptions options, Checkpoint.Contents? resumed, ICommunicator communicator, TextWriter output,
        Seq2SeqNetwork? network = null)
    {
        if (options.Init is not null) throw new ArgumentException("--init is not available for --task g2p.");
        if (options.NoAttention && options.Model == "transformer")
            throw new ArgumentException("--no-attention applies to the recurrent models (--model lstm, gru or rnn); " +
                                        "the Transformer is attention.");
        var (dictionary, source) = LoadDictionary(options.Data, options.Cache, output);
        _vocabulary = G2pVocabulary.ForCmuDict(dictionary.KeepStress);
        (_beam, _lengthPenalty) = (options.Beam ?? BeamWidth, Math.Round(options.LengthPenalty ?? 0f, 6));
        var split = dictionary.Split();
        var train = new G2pDataset(options.Pronunciations == "first"
            ? split.Train.Select(e => e with { Pronunciations = [e.Pronunciations[0]] }) : split.Train, _vocabulary);
        if (train.Words.Count == 0) throw new DataSourceException("The training split holds no words.");
        _validation = new G2pDataset(split.Validation, _vocabulary);
        var validationWords = split.Validation.ToList();
        _sample = options.EvalSample == 0 || options.EvalSample >= validationWords.Count ? _validation
            : new G2pDataset(ValidationSample.Indices(validationWords.Count, options.EvalSample, new Generator(SampleSeed))
                .Select(i => validationWords[i]), _vocabulary);
        _test = new G2pDataset(split.Test, _vocabulary);
        _network = network ?? (resumed is not null ? Seq2SeqNetwork.FromConfig(resumed.Config, options.Resume!)
                                                   : Seq2SeqNetwork.Create(options, _vocabulary, new Generator(options.Seed)));
        _batches = new Seq2SeqBatches(_network.Model, train, options.Batch * communicator.Size, communicator.Size,
            options.Seed ^ 0x5DEECE66DUL, perToken: options.LossAverage == "token", mixedLengths: options.Batching == "mixed");
        string skipped = dictionary.SkippedEntries == 0 ? "" :
            $" Skipped {dictionary.SkippedEntries:N0} entries spelled with characters outside \"{CmuDict.Alphabet}\" " +
            $"(e.g. {string.Join(", ", dictionary.SkippedExamples)}).";
        Header =
        [
            $"Data: {source}: {dictionary.Entries.Count:N0} words, {dictionary.PronunciationCount:N0} pronunciations; " +
            $"{train.Words.Count:N0} training ({train.ExampleCount:N0} pronunciations), " +
            $"{_validation.Words.Count:N0} validation, " +
            $"{_test.Words.Count:N0} test words; {_vocabulary.Phonemes.Count} phonemes (stress removed)." + skipped,
            $"Model: {_network.Description}.",
        ];
        Title = $"G2P, {_network.Description}";
    }

    public Module Model => _network.Module;
    public IReadOnlyList<string> Header { get; }
    public string RowUnit => "words";
    public string ItemUnit => "phonemes";
    public string Title { get; }
    public JsonObject Config => _network.Config;
    public string TokenizerJson => _vocabulary.ToJson().ToJsonString();

    public IEnumerable<(Tensor Param, bool Decay)> ParameterGroups() => Model.Parameters().Select(p => (p, p.Rank >= 2));

    public int NextBatch() => _batches.NextBatch();
    public long Items(int firstRow, int rows) => _batches.Items(firstRow, rows);
    public Tensor Loss(int firstRow, int rows) => _batches.Loss(firstRow, rows);

    public Evaluation Evaluate(bool full)
    {
        var data = full ? _validation : _sample;
        float loss = TeacherForcedLoss(data.Batches(256));
        var rates = Score(_network.Model, data, 1);
        string which = data == _validation ? "greedy, all" : "greedy, a sample of";
        return new Evaluation(loss, rates.WordErrorRate,
            $"validation loss {loss:F4}, PER {rates.PhonemeErrorRate:P2}, WER {rates.WordErrorRate:P2} " +
            $"({which} {rates.Words:N0} words)",
            new JsonObject { ["val_per"] = rates.PhonemeErrorRate, ["val_wer"] = rates.WordErrorRate });
    }

    /// <summary>Mean teacher-forced loss per target token over <paramref name="batches"/>, without recording gradients.</summary>
    float TeacherForcedLoss(IEnumerable<G2pBatch> batches)
    {
        var model = _network.Model;
        bool wasTraining = Model.Training;
        Model.Eval();
        double sum = 0;
        long tokens = 0;
        using (GradMode.NoGrad())
        {
            foreach (var batch in batches)
            {
                using var scope = TensorScope.Begin();
                int count = batch.Labels.Count(l => l != model.PadId);
                var loss = model.TeacherForcingLoss(batch.Source, batch.SourceLength, batch.DecoderInput, batch.Labels,
                    batch.TargetLength, batch.Batch);
                sum += loss.Item() * (double)count;
                tokens += count;
            }
        }
        Model.Train(wasTraining);
        return tokens == 0 ? float.NaN : (float)(sum / tokens);
    }

    public JsonObject CaptureState() => new() { ["data"] = _batches.Stream.Capture() };

    public void RestoreState(JsonObject state) =>
        _batches.Stream.Restore(state["data"] as JsonObject
                                ?? throw new CheckpointException("The trainer state has no 'task.data'."));

    public void Finish(TextWriter output, JsonObject record)
    {
        var greedy = Score(_network.Model, _test, 1);
        output.WriteLine($"Test (best checkpoint, {greedy.Words:N0} words), greedy: PER {greedy.PhonemeErrorRate:P2}, " +
                         $"WER {greedy.WordErrorRate:P2}.");
        var beam = greedy;
        if (_beam > 1)
        {
            beam = Score(_network.Model, _test, _beam, _lengthPenalty);
            output.WriteLine($"Test (best checkpoint, {beam.Words:N0} words), {Decoding(_beam, _lengthPenalty)}: " +
                             $"PER {beam.PhonemeErrorRate:P2}, WER {beam.WordErrorRate:P2}.");
        }
        record["test_greedy_per"] = greedy.PhonemeErrorRate;
        record["test_greedy_wer"] = greedy.WordErrorRate;
        record["test_per"] = beam.PhonemeErrorRate;
        record["test_wer"] = beam.WordErrorRate;
        record["beam"] = _beam;
        record["length_penalty"] = _lengthPenalty;
    }

    /// <summary>Checks --beam (positive) and --length-penalty (in [0, 10]) where given; the errors name the option.</summary>
    public static void ValidateDecoding(int? beam, float? lengthPenalty)
    {
        if (beam is <= 0) throw new ArgumentException($"--beam must be positive; got {beam}.");
        if (lengthPenalty is { } lp && !(lp >= 0 && lp <= 10))
            throw new ArgumentException($"--length-penalty must be in [0, 10]; got {lp}.");
    }

    /// <summary>"beam 5", or "beam 5, length penalty 0.6".</summary>
    public static string Decoding(int beam, double lengthPenalty) =>
        beam == 1 ? "greedy" : $"beam {beam}" + (lengthPenalty == 0 ? "" : $", length penalty {lengthPenalty:0.###}");

    public string Try(string runDirectory) => $"attn predict --checkpoint {runDirectory} --input attention";

    /// <summary>Phoneme and word error rates on <paramref name="words"/>: greedy for beam width 1, else beam search.</summary>
    public static G2pErrorRates Score(ISequenceToSequence model, G2pDataset words, int beamWidth, double lengthPenalty = 0) =>
        G2pScoring.Score(model, words, beamWidth, MaxOutput(words), lengthPenalty);

    public static int MaxOutput(G2pDataset words) =>
        words.Words.Count == 0 ? 1 : words.Words.Max(w => w.Source.Length) + ExtraOutputLength;

    public static (CmuDict Dictionary, string Source) LoadDictionary(string? data, string? cache, TextWriter output) =>
        data is null
        ? (CmuDict.Fetch(DataCache.Resolve(cache), output), $"the CMU Pronouncing Dictionary ({CmuDict.Package.Spec})")
        : (CmuDict.Load(data), data);
}

/// <summary>
/// Teacher-forced training batches of grapheme-to-phoneme words for a sequence-to-sequence model: epochs of batches of
/// equal-length words (with <paramref name="mixedLengths"/>, of words of every length, their spellings padded) in a new
/// order each time (a last batch too small to share among the ranks is dropped), and the
/// model's loss over the non-padding targets of a batch's rows: their mean, or with <paramref name="perToken"/> their
/// sum over the rows' expected number of targets (rows × the training set's mean targets per example, EOS included),
/// so that a target weighs the same in a batch of short words as in one of long words. Either way a slice of rows (a
/// rank's share, an accumulated part) is computed as its own batch.
/// </summary>
public sealed class Seq2SeqBatches(ISequenceToSequence model, G2pDataset train, int globalBatch, int ranks, ulong seed,
    bool perToken = false, bool mixedLengths = false) : ILossSource
{
    /// <summary>The values of <c>--loss-average</c>: each batch's mean, or per token.</summary>
    public static IReadOnlyList<string> Averages { get; } = ["batch", "token"];

    /// <summary>The values of <c>--batching</c>: words of one spelling length, or of every length together.</summary>
    public static IReadOnlyList<string> Batchings { get; } = ["length", "mixed"];

    readonly double _targetsPerExample = train.ExampleCount == 0 ? 1
        : train.Words.Sum(w => w.References.Sum(r => r.Length + 1.0)) / train.ExampleCount;
    G2pBatch? _batch;

    /// <summary>The epochs of batches, whose position a checkpoint holds.</summary>
    public EpochStream<G2pBatch> Stream { get; } =
        new(shuffle => train.Batches(globalBatch, shuffle, mixedLengths).Where(b => b.Batch >= ranks), seed);

    public int NextBatch() => (_batch = Stream.Next()).Batch;

    public long Items(int firstRow, int rows)
    {
        var labels = _batch!.Labels.AsSpan(firstRow * _batch.TargetLength, rows * _batch.TargetLength);
        return labels.Length - labels.Count(model.PadId);
    }

    public Tensor Loss(int firstRow, int rows)
    {
        var b = _batch!;
        int s = b.SourceLength, t = b.TargetLength;
        bool whole = firstRow == 0 && rows == b.Batch;
        int[] source = whole ? b.Source : b.Source[(firstRow * s)..((firstRow + rows) * s)];
        int[] input = whole ? b.DecoderInput : b.DecoderInput[(firstRow * t)..((firstRow + rows) * t)];
        int[] labels = whole ? b.Labels : b.Labels[(firstRow * t)..((firstRow + rows) * t)];
        var mean = model.TeacherForcingLoss(source, s, input, labels, t, rows);
        return perToken ? mean * (float)(Items(firstRow, rows) / (rows * _targetsPerExample)) : mean;
    }
}

/// <summary>A sequence-to-sequence model of the g2p task, the config.json that rebuilds it, and a line describing it.</summary>
public sealed record Seq2SeqNetwork(ISequenceToSequence Model, Module Module, JsonObject Config, string Description)
{
    public static Seq2SeqNetwork Create(TrainOptions o, G2pVocabulary vocabulary, Generator rng) => o.Model switch
    {
        "transformer" => Transformer(new EncoderDecoderConfig
        {
            SourceVocabSize = vocabulary.SourceSize, TargetVocabSize = vocabulary.TargetSize, ShareEmbeddings = false,
            TieOutput = true, EncoderLayers = o.Layers ?? 3,
            DecoderLayers = o.DecoderLayers ?? o.Layers ?? 3, Width = o.Width ?? 128,
            Heads = o.Heads ?? 4, Activation = ActivationOf(o.Activation),
            FeedForwardWidth = o.FeedForwardWidth ?? FeedForwardWidthOf(ActivationOf(o.Activation), o.Width ?? 128),
            Dropout = o.Dropout ?? 0f, NormFirst = !o.PostLn,
            AttentionDropout = o.AttentionDropout,
            LabelSmoothing = o.LabelSmoothing ?? 0.1f,
            PositionalEncoding = o.Positions ?? PositionalEncodingKind.Sinusoidal,
            Attention = o.Attention ?? AttentionPattern.Full,
            PadId = G2pVocabulary.PadId, BosId = G2pVocabulary.BosId, EosId = G2pVocabulary.EosId,
        }, rng),
        _ => Recurrent(o.Model, new RecurrentSeq2SeqConfig
        {
            SourceVocabSize = vocabulary.SourceSize, TargetVocabSize = vocabulary.TargetSize,
            Cell = o.Model switch
            {
                "lstm" => Kernels.RecurrentCell.Lstm,
                "gru" => Kernels.RecurrentCell.Gru,
                _ => Kernels.RecurrentCell.Tanh,
            },
            EmbeddingSize = (o.Width ?? 256) / 2, HiddenSize = o.Width ?? 256, Layers = o.Layers ?? 2,
            BidirectionalEncoder = true,
            Attention = o.NoAttention ? Seq2SeqAttention.None : Seq2SeqAttention.General, Dropout = o.Dropout ?? 0f,
            LabelSmoothing = o.LabelSmoothing ?? 0f,
            PadId = G2pVocabulary.PadId, BosId = G2pVocabulary.BosId, EosId = G2pVocabulary.EosId,
        }, rng),
    };

    public static Seq2SeqNetwork FromConfig(JsonObject config, string checkpointDir)
    {
        if (config["model"]?.GetValue<string>() == EnsembleModel)
            return Ensemble([.. (config["members"] as JsonArray ?? throw new CheckpointException(
                    $"The config.json of checkpoint '{checkpointDir}' is an ensemble's without a \"members\" list."))
                .Select(m => FromConfig(m as JsonObject ?? throw new CheckpointException(
                    $"The config.json of checkpoint '{checkpointDir}' lists a member that is not an object."), checkpointDir))]);
        if (config["network"] is not JsonObject network)
            throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' has no \"network\" object.");
        var rng = new Generator(0);
        return config["model"]?.GetValue<string>() switch
        {
            "transformer" => Transformer(EncoderDecoderConfig.FromJson(network), rng),
            var kind and ("lstm" or "gru" or "rnn") => Recurrent(kind!, RecurrentSeq2SeqConfig.FromJson(network), rng),
            var other => throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' names the " +
                                                       $"model '{other}'; expected transformer, lstm, gru or rnn."),
        };
    }

    /// <summary>The network and vocabulary of a g2p checkpoint (or run directory), weights loaded.</summary>
    public static (Seq2SeqNetwork Network, G2pVocabulary Vocabulary) Load(string checkpointDir)
    {
        var contents = Checkpoint.ReadContents(checkpointDir);
        var network = FromConfig(contents.Config, checkpointDir);
        Checkpoint.LoadWeights(checkpointDir, network.Module);
        return (network, G2pVocabulary.FromJson(contents.TokenizerJson, $"the vocabulary of checkpoint '{checkpointDir}'"));
    }

    /// <summary>The "model" of an ensemble's config.json, which lists its members' configs under "members".</summary>
    public const string EnsembleModel = "ensemble";

    /// <summary>
    /// Networks that decode together (<see cref="Seq2SeqEnsemble"/>): one module whose parameters are the members'
    /// (member0.…, member1.…), and a config that lists theirs.
    /// </summary>
    public static Seq2SeqNetwork Ensemble(IReadOnlyList<Seq2SeqNetwork> members)
    {
        var ensemble = new Seq2SeqEnsemble(members.Select(m => m.Model));
        var descriptions = members.Select(m => m.Description).Distinct().ToList();
        return new Seq2SeqNetwork(ensemble, ensemble, new JsonObject
        {
            ["task"] = "g2p", ["model"] = EnsembleModel,
            ["members"] = new JsonArray([.. members.Select(m => (JsonNode)m.Config.DeepClone())]),
        }, $"an ensemble of {members.Count}: " +
           (descriptions.Count == 1 ? $"{members.Count} × {descriptions[0]}" : string.Join("; ", descriptions)));
    }

    /// <summary>
    /// The g2p checkpoints (or run directories) <paramref name="dirs"/> decoding together (<see cref="Ensemble"/>), weights
    /// loaded, and the vocabulary they share: the first's, which every other must read as well.
    /// </summary>
    public static (Seq2SeqNetwork Network, G2pVocabulary Vocabulary) LoadEnsemble(IReadOnlyList<string> dirs)
    {
        var (first, vocabulary) = Load(dirs[0]);
        var members = new List<Seq2SeqNetwork> { first };
        foreach (var dir in dirs.Skip(1))
        {
            var (member, theirs) = Load(dir);
            if (theirs.ToJson().ToJsonString() != vocabulary.ToJson().ToJsonString())
                throw new ArgumentException($"'{dir}' reads other letters or phonemes than '{dirs[0]}'; an ensemble's " +
                                            "models share their vocabulary.");
            members.Add(member);
        }
        return (Ensemble(members), vocabulary);
    }

    /// <summary>The option's name of an activation (checked by <see cref="TrainOptions.Validate"/>) as its enum value.</summary>
    static FeedForwardActivation ActivationOf(string? name) =>
        name is null ? FeedForwardActivation.Relu : Enum.Parse<FeedForwardActivation>(name, ignoreCase: true);

    /// <summary>
    /// Four times the width, or for SwiGLU the multiple of 16 nearest 8/3 of it: its three matrices then hold about the
    /// parameters of the other activations' two (Shazeer 2020).
    /// </summary>
    static int FeedForwardWidthOf(FeedForwardActivation activation, int width) =>
        activation == FeedForwardActivation.SwiGlu ? (int)Math.Round(8.0 * width / 3 / 16) * 16 : 4 * width;

    static Seq2SeqNetwork Transformer(EncoderDecoderConfig config, Generator rng)
    {
        var model = new EncoderDecoder(config, rng);
        return new Seq2SeqNetwork(model, model, Wrap("transformer", config.ToJson()),
            $"Transformer encoder–decoder, {config.EncoderLayers}+{config.DecoderLayers} layers, {config.Heads} heads, " +
            $"width {config.Width}" +
            (config.Activation == FeedForwardActivation.Relu ? "" : $", {config.Activation.ToString().ToLowerInvariant()}") +
            (config.FeedForwardWidth == FeedForwardWidthOf(config.Activation, config.Width)
                ? "" : $", feed-forward {config.FeedForwardWidth}") +
            (config.NormFirst ? "" : ", post-LN"));
    }

    static Seq2SeqNetwork Recurrent(string kind, RecurrentSeq2SeqConfig config, Generator rng)
    {
        var model = new RecurrentSeq2Seq(config, rng);
        return new Seq2SeqNetwork(model, model, Wrap(kind, config.ToJson()),
            $"{kind.ToUpperInvariant()} encoder–decoder ({config.Layers} layers, bidirectional encoder " +
            $"{config.EncoderHiddenSize}×2, decoder {config.HiddenSize}, " +
            (config.Attention == Seq2SeqAttention.None ? "no attention"
                : $"{config.Attention.ToString().ToLowerInvariant()} attention") + ")");
    }

    static JsonObject Wrap(string model, JsonObject network) =>
        new() { ["task"] = "g2p", ["model"] = model, ["network"] = network };
}
