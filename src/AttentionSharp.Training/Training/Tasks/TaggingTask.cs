using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.Distributed;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Training.Tasks;

/// <summary>
/// Word-level tasks on the Brown corpus. `--task pos`: part-of-speech tagging with the 12 universal tags, by a BERT
/// encoder (from scratch, or from an mlm checkpoint with --init) or a bidirectional recurrent tagger; scored by token
/// accuracy, overall and on words unseen in training. `--task mlm`: masked-word pre-training of the BERT encoder (15 % of
/// the words corrupted as BERT does), with the pos task's vocabulary so the tagger can start from it.
/// </summary>
public sealed class TaggingTask : ITrainingTask
{
    /// <summary>
    /// Training words seen fewer times than this read as &lt;unk&gt;, so the model learns to tag unknown words.
    /// </summary>
    public const int MinWordCount = 2;

    /// <summary>
    /// Validation and test words are masked with draws from this seed, so every pass scores the same positions.
    /// </summary>
    public const ulong EvalMaskSeed = 0x6D6C6D;

    /// <summary>The periodic validation sample of sentences is drawn with this seed.</summary>
    const ulong SampleSeed = 0x7A6;

    readonly TrainOptions _options;
    readonly bool _masked;
    readonly Module _model;
    readonly Func<TaggingBatch, Tensor> _logits;
    readonly WordVocabulary _vocabulary;
    readonly TaggingDataset _validation, _sample, _test;
    readonly TaggingBatches _batches;
    readonly Generator _maskRng;

    public TaggingTask(TrainOptions options, Checkpoint.Contents? resumed, ICommunicator communicator, TextWriter output)
    {
        _options = options;
        _masked = options.Task == "mlm";
        if (options.Data is not null && !Directory.Exists(options.Data))
            throw new DataSourceException($"--data for --task {options.Task} is a directory of tagged text " +
                                          "in the Brown corpus's NLTK layout " +
                                          $"(word/tag files and {BrownCorpus.CategoriesFile}); " +
                                          $"'{options.Data}' is not a directory.");
        if (options.NoAttention) throw new ArgumentException("--no-attention applies to --task g2p's recurrent models.");
        if (options.Init is not null && (_masked || options.Model != "transformer"))
            throw new ArgumentException(_masked ? "--init is not available for --task mlm."
                : $"--init starts the transformer tagger from an mlm checkpoint; --model '{options.Model}' cannot use one.");
        if (options.Init is not null && resumed is not null)
            throw new ArgumentException("--init and --resume exclude each other: a resumed run continues from its own weights.");
        if (options.Init is not null && TrainingTasks.TaskOf(options.Init) != "mlm")   // checked before the corpus is read
            throw new CheckpointException($"--init '{options.Init}' is not an mlm checkpoint " +
                                          "(its config.json names the task " +
                                          $"'{TrainingTasks.TaskOf(options.Init) ?? "none"}'); " +
                                          "train one with attn train --task mlm.");

        var corpus = options.Data is null
            ? BrownCorpus.Fetch(DataCache.Resolve(options.Cache), output)
            : BrownCorpus.Load(options.Data);
        var split = corpus.Split();
        string source = options.Data is null ? "the Brown corpus" : options.Data;
        var trainDocuments = Share(split.Train, options.TrainFraction ?? 1);
        _vocabulary = resumed is not null
            ? WordVocabulary.FromJson(resumed.TokenizerJson, $"the vocabulary of checkpoint '{options.Resume}'")
            : WordVocabulary.Build(trainDocuments.SelectMany(d => d.Sentences).SelectMany(s => s).Select(w => w.Word),
                                   MinWordCount);
        var trainingWords = TaggingDataset.WordSet(trainDocuments);
        int max = TaggerNetwork.MaxLength;
        var train = TaggingDataset.Build(trainDocuments, _vocabulary, trainingWords, max);
        if (train.Sentences.Count == 0) throw new DataSourceException("The training split holds no sentences.");
        _validation = TaggingDataset.Build(split.Validation, _vocabulary, trainingWords, max);
        _test = TaggingDataset.Build(split.Test, _vocabulary, trainingWords, max);
        var sampleRng = new Generator(SampleSeed);
        _sample = options.EvalSample == 0 || options.EvalSample >= _validation.Sentences.Count ? _validation
            : TaggingDataset.FromSentences(ValidationSample.Indices(_validation.Sentences.Count, options.EvalSample, sampleRng)
                .Select(i => _validation.Sentences[i]));

        var rng = new Generator(options.Seed);
        string description;
        if (_masked)
        {
            var config = resumed is not null
                ? BertConfig.FromJson(resumed.Config["network"] as JsonObject
                    ?? throw new CheckpointException("The resumed config.json has no \"network\" object."))
                : new BertConfig
                {
                    VocabSize = _vocabulary.Count, MaxPositions = max, TypeVocabSize = 1, Layers = options.Layers ?? 4,
                    Heads = options.Heads ?? 4, Width = options.Width ?? 128, IntermediateSize = 4 * (options.Width ?? 128),
                    Dropout = options.Dropout ?? 0f, AttentionDropout = options.Dropout ?? 0f, PadTokenId = WordVocabulary.Pad,
                    PositionalEncoding = options.Positions ?? PositionalEncodingKind.Learned,
                    Attention = options.Attention ?? AttentionPattern.Full,
                }.Validate();
            var bert = new Bert(config, rng);
            _model = bert;
            _logits = b => MlmLogits(bert, b);
            Config = MlmConfigJson(config);
            description = $"BERT encoder, {config.Layers} layers, {config.Heads} heads, width {config.Width}";
        }
        else
        {
            TaggerNetwork network;
            if (resumed is not null) network = TaggerNetwork.FromConfig(resumed.Config, _vocabulary, options.Resume!);
            else if (options.Init is not null)
            {
                var init = Checkpoint.ReadContents(options.Init);
                var initVocabulary = WordVocabulary.FromJson(init.TokenizerJson,
                    $"the vocabulary of checkpoint '{options.Init}'");
                if (!initVocabulary.SameAs(_vocabulary))
                    throw new CheckpointException($"--init '{options.Init}' has a different vocabulary " +
                        $"({initVocabulary.Count:N0} words, {initVocabulary.Features.Count:N0} spelling features) " +
                        $"from the one built from this corpus ({_vocabulary.Count:N0} " +
                        $"words, {_vocabulary.Features.Count:N0} features): its word ids would mean other words.");
                var initConfig = init.Config["network"] as JsonObject
                                 ?? throw new CheckpointException($"The config.json of checkpoint '{options.Init}' " +
                                     "has no \"network\" object.");
                network = TaggerNetwork.FromMlm(BertConfig.FromJson(initConfig), options.Dropout ?? 0f, _vocabulary, rng);
                int loaded = LoadEncoder(options.Init, network.Model);
                output.WriteLine($"Initialised from {options.Init}: {loaded} encoder tensors; " +
                    "the tag layer and spelling features start fresh.");
            }
            else network = TaggerNetwork.Create(options, _vocabulary, rng);
            _model = network.Model;
            _logits = network.Logits;
            Config = network.Config;
            description = network.Description;
        }
        // Global batches of ranks × B sentences, each epoch in a new order; a last batch too small to share is dropped.
        _maskRng = new Generator(options.Seed ^ 0x4D41534BUL);
        // The same generator draws the tagger's word dropout: its state is in every checkpoint, so a resumed run drops
        // the words the uninterrupted run would have.
        var dropWords = WordDropout.Probabilities(train, _vocabulary.Count, options.WordDropout ?? 0f,
            options.RareWordDropout ?? 0f);
        Func<TaggingBatch, TaggingBatch>? prepare = _masked ? b => MaskedWords.Mask(b, _vocabulary.Count, _maskRng)
            : dropWords is not null ? b => WordDropout.Apply(b, dropWords, _maskRng) : null;
        _batches = new TaggingBatches(train, _logits, options.Batch * communicator.Size, communicator.Size,
            options.Seed ^ 0x5DEECE66DUL, prepare);

        Header =
        [
            $"Data: {source}, {train.WordCount:N0} training" +
            (trainDocuments.Count < split.Train.Count
                ? $" (from {trainDocuments.Count} of the {split.Train.Count} training documents)" : "") +
            $", {_validation.WordCount:N0} validation and {_test.WordCount:N0} test words; " +
            $"{_vocabulary.Count:N0} word ids (seen at least {MinWordCount} times)" +
            (_masked ? "; 15% of the words masked."
                : $", {_vocabulary.Features.Count:N0} spelling features, {UniversalTags.Count} universal tags."),
            $"Model: {description}.",
        ];
        Title = _masked ? $"Masked words, {source}" : $"POS tagging, {description}";
        TokenizerJson = _vocabulary.ToJson();
    }

    /// <summary>The draw of training documents of <see cref="TrainOptions.TrainFraction"/> is made with this seed.</summary>
    const ulong ShareSeed = 0x5348415245;

    /// <summary>
    /// <paramref name="fraction"/> of <paramref name="documents"/> (at least one), drawn uniformly with a fixed seed and
    /// kept in their order; a smaller share is always part of a larger one (the draws are a prefix of one shuffle).
    /// </summary>
    public static IReadOnlyList<BrownDocument> Share(IReadOnlyList<BrownDocument> documents, double fraction)
    {
        if (!(fraction > 0 && fraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "A share is in (0, 1].");
        if (fraction == 1) return documents;
        int count = Math.Clamp((int)Math.Round(fraction * documents.Count), 1, documents.Count);
        return [.. ValidationSample.Indices(documents.Count, count, new Generator(ShareSeed)).Select(i => documents[i])];
    }

    public Module Model => _model;
    public IReadOnlyList<string> Header { get; }
    public string RowUnit => "sentences";
    public string ItemUnit => "words";
    public string Title { get; }
    public JsonObject Config { get; }
    public string TokenizerJson { get; }

    public IEnumerable<(Tensor Param, bool Decay)> ParameterGroups() => _model.Parameters().Select(p => (p, p.Rank >= 2));

    public int NextBatch() => _batches.NextBatch();
    public long Items(int firstRow, int rows) => _batches.Items(firstRow, rows);
    public Tensor Loss(int firstRow, int rows) => _batches.Loss(firstRow, rows);

    public Evaluation Evaluate(bool full)
    {
        var data = full ? _validation : _sample;
        var (loss, accuracy) = Score(data);
        string which = data == _validation ? "all of validation" : $"a sample of {data.Sentences.Count:N0} validation sentences";
        var record = new JsonObject { ["val_accuracy"] = accuracy.Accuracy };
        if (accuracy.UnseenTotal > 0) record["val_unseen_accuracy"] = accuracy.UnseenAccuracy;   // none in masked-word modelling
        return new Evaluation(loss, -accuracy.Accuracy, $"validation loss {loss:F4}, {Describe(accuracy)} ({which})", record);
    }

    /// <summary>Loss and accuracy on <paramref name="data"/>; masked-word batches are masked with fixed draws.</summary>
    (float Loss, TagAccuracy Accuracy) Score(TaggingDataset data)
    {
        var maskRng = new Generator(EvalMaskSeed);
        var batches = data.Batches(_options.Batch).Select(b => _masked ? MaskedWords.Mask(b, _vocabulary.Count, maskRng) : b);
        return TaggerEvaluation.Evaluate(_model, _logits, batches);
    }

    public JsonObject CaptureState() => new()
    {
        ["data"] = _batches.Stream.Capture(),
        ["mask_rng"] = GeneratorState.ToJson(_maskRng),
    };

    public void RestoreState(JsonObject state)
    {
        _batches.Stream.Restore(state["data"] as JsonObject
            ?? throw new CheckpointException("The trainer state has no 'task.data'."));
        _maskRng.SetState(GeneratorState.FromJson(state["mask_rng"], "task.mask_rng"));
    }

    public void Finish(TextWriter output, JsonObject record)
    {
        if (_masked) return;
        var (loss, accuracy) = Score(_test);
        record["test_loss"] = loss;
        record["test_accuracy"] = accuracy.Accuracy;
        record["test_unseen_accuracy"] = accuracy.UnseenTotal > 0 ? accuracy.UnseenAccuracy : null;
        output.WriteLine($"Test (best checkpoint): loss {loss:F4}, {Describe(accuracy)}.");
    }

    public string Try(string runDirectory) => _masked
        ? $"attn eval --checkpoint {runDirectory}   attn train --task pos --init {runDirectory}"
        : $"attn eval --checkpoint {runDirectory}   attn predict --checkpoint {runDirectory} " +
          "--input \"The jury praised the city.\"";

    /// <summary>MLM logits (N, V) at the batch's masked positions.</summary>
    public static Tensor MlmLogits(Bert model, TaggingBatch b) =>
        model.MlmLogits(MaskedWords.Gather(model.Forward(b.Ids, b.Batch, b.Time), b));

    /// <summary>The config.json of an mlm checkpoint: the task, and the network's BertConfig.</summary>
    public static JsonObject MlmConfigJson(BertConfig config) =>
        new()
        {
            ["task"] = "mlm", ["model"] = "transformer", ["max_length"] = TaggerNetwork.MaxLength,
            ["network"] = config.ToJson()
        };

    public static string Describe(TagAccuracy a) => a.UnseenTotal == 0
        ? $"accuracy {100 * a.Accuracy:F2}% ({a.Correct:N0}/{a.Total:N0})"
        : $"accuracy {100 * a.Accuracy:F2}% ({a.Correct:N0}/{a.Total:N0}), on unseen words {100 * a.UnseenAccuracy:F2}% " +
          $"({a.UnseenCorrect:N0}/{a.UnseenTotal:N0})";

    /// <summary>
    /// Copies every encoder tensor of the checkpoint into the tagger (names and shapes must agree): the weights its run
    /// validated, so the weight average where it kept one. Returns how many.
    /// </summary>
    static int LoadEncoder(string dir, Module tagger)
    {
        var own = tagger.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter, StringComparer.Ordinal);
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, (values, shape)) in Checkpoint.ReadWeights(dir, own.ContainsKey))
                state[name] = Tensor.FromArray(values, shape);
            var missing = own.Keys.Where(k => k.StartsWith("encoder.", StringComparison.Ordinal) && !state.ContainsKey(k))
                .ToList();
            if (missing.Count > 0)
                throw new CheckpointException(
                    $"Checkpoint '{dir}' lacks encoder tensors of this tagger: {string.Join(", ", missing.Take(5))}.");
            try { tagger.LoadStateDict(state, strict: false); }
            catch (ArgumentException e)
            {
                throw new CheckpointException($"Checkpoint '{dir}' does not fit this tagger: {e.Message}");
            }
            return state.Count;
        }
        finally { foreach (var t in state.Values) t.Dispose(); }
    }
}

/// <summary>
/// Training batches of a tagging dataset: epochs of length-sorted batches in a new order each time (a last batch too
/// small to share among the ranks is dropped), each optionally prepared as it is drawn (masked-word modelling corrupts
/// the words there), and the cross-entropy over the labelled words of a batch's rows.
/// </summary>
public sealed class TaggingBatches(TaggingDataset train, Func<TaggingBatch, Tensor> logits, int globalBatch, int ranks,
    ulong seed, Func<TaggingBatch, TaggingBatch>? prepare = null) : ILossSource
{
    TaggingBatch? _batch;

    /// <summary>The epochs of batches, whose position a checkpoint holds.</summary>
    public EpochStream<TaggingBatch> Stream { get; } =
        new(shuffle => train.Batches(globalBatch, shuffle).Where(b => b.Batch >= ranks), seed);

    public int NextBatch()
    {
        var batch = Stream.Next();
        _batch = prepare is null ? batch : prepare(batch);   // drawn afresh every step
        return _batch.Batch;
    }

    public long Items(int firstRow, int rows) => _batch!.ScoredIn(firstRow, rows);

    public Tensor Loss(int firstRow, int rows)
    {
        var batch = _batch!.Rows(firstRow, rows);
        return Tensor.CrossEntropy(logits(batch), batch.Labels, TaggingDataset.IgnoreLabel);
    }
}
