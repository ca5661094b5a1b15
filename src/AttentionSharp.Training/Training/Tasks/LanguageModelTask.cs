using System.Text.Json.Nodes;
using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Distributed;
using AttentionSharp.Generation;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Training.Tasks;

/// <summary>
/// `--task gpt`, the main job: a GPT trained on next-token prediction over the Brown corpus (fetched on first use) or a
/// UTF-8 text file (its last tenth held out). Batches are B windows at random starts of the training text; validation
/// scores bits per character.
/// </summary>
public sealed class LanguageModelTask : ITrainingTask, ITokenBatches
{
    /// <summary>The periodic validation sample is drawn with this seed, so every pass scores the same windows.</summary>
    const ulong SampleSeed = 0x5A3D1E;

    readonly TrainOptions _options;
    readonly ICommunicator _communicator;
    readonly Gpt _model;
    readonly ITokenizer _tokenizer;
    readonly TokenBatcher _validation;
    readonly LanguageModelBatches _batches;
    readonly int[] _sampleStarts;
    readonly Generator _dataRng;
    readonly double _tokensPerChar;
    readonly int _time;
    readonly float[] _scalars = new float[2];

    /// <param name="options">The run's options (shape, tokenizer, batch, seed).</param>
    /// <param name="resumed">The checkpoint being resumed: its tokenizer and shape replace the options'.</param>
    /// <param name="communicator">The ranks: each global batch holds ranks × B windows.</param>
    /// <param name="output">Where data fetching reports.</param>
    public LanguageModelTask(TrainOptions options, Checkpoint.Contents? resumed, ICommunicator communicator, TextWriter output)
    {
        if (options.NoAttention) throw new ArgumentException("--no-attention applies to --task g2p's recurrent models.");
        if (options.Init is not null && resumed is not null)
            throw new ArgumentException("--init and --resume exclude each other: a resumed run continues from its own weights (drop --init).");
        _options = options;
        _communicator = communicator;
        Checkpoint.Contents? start = resumed;
        string? startDir = options.Resume;
        if (options.Init is not null)
        {
            start = Checkpoint.ReadContents(options.Init);
            startDir = options.Init;
            if (TrainingTasks.TaskOf(start.Config) != "gpt")
                throw new CheckpointException($"--init '{options.Init}' is a {TrainingTasks.TaskOf(start.Config)} checkpoint; --task gpt starts from a GPT's.");
        }
        var (trainText, validText, source) = LoadText(options, output);
        GptConfig config;
        if (start is not null)
        {
            // A resumed or fine-tuned model keeps its checkpoint's tokenizer and shape; options that say otherwise are refused.
            _tokenizer = ITokenizer.FromJson(start.TokenizerJson, $"the tokenizer of checkpoint '{startDir}'");
            config = GptConfig.FromJson(start.Config);
            string flag = options.Init is not null ? "--init" : "--resume";
            void Keep<T>(string option, T? given, T kept) where T : struct
            {
                if (given is { } value && !EqualityComparer<T>.Default.Equals(value, kept))
                    throw new ArgumentException($"{option} {Text(value)} contradicts the checkpoint's {Text(kept)}: {flag} keeps the checkpoint's shape.");
            }
            Keep("--layers", options.Layers, config.Layers);
            Keep("--heads", options.Heads, config.Heads);
            Keep("--width", options.Width, config.Width);
            Keep("--context", options.Context, config.ContextLength);
            Keep("--positions", options.Positions, config.PositionalEncoding);
            if (options.Attention is { } pattern && pattern != config.Attention)
                throw new ArgumentException($"--attention {pattern} contradicts the checkpoint's {config.Attention}: {flag} keeps the checkpoint's shape.");
            if (options.Tokenizer is { } name && !IsKind(name, _tokenizer))
                throw new ArgumentException($"--tokenizer {name} contradicts the checkpoint's {TokenizerName(_tokenizer)}: {flag} keeps its tokenizer.");
            if (options.Init is not null && options.Dropout is { } dropout) config = (config with { Dropout = dropout }).Validate();
        }
        else
        {
            _tokenizer = BuildTokenizer(options.Tokenizer ?? "bpe", options.Vocab ?? 2048, trainText);
            config = new GptConfig
            {
                Layers = options.Layers ?? 4, Heads = options.Heads ?? 4, Width = options.Width ?? 128,
                ContextLength = options.Context ?? 128, Dropout = options.Dropout ?? 0f, VocabSize = _tokenizer.VocabSize,
                PositionalEncoding = options.Positions ?? PositionalEncodingKind.Learned,
                Attention = options.Attention ?? AttentionPattern.Full,
            }.Validate();
        }
        var trainTokens = _tokenizer.Encode(trainText);
        var validTokens = _tokenizer.Encode(validText);
        _time = config.ContextLength;
        // Global batches of ranks × B rows, drawn as one process would; the trainer gives each rank its rows.
        int globalBatch = options.Batch * communicator.Size;
        _validation = new TokenBatcher(validTokens, globalBatch, _time, "validation text");
        _tokensPerChar = (double)validTokens.Length / Math.Max(1, validText.Length);
        _model = new Gpt(config, new Generator(options.Seed));
        if (options.Init is not null)
        {
            Checkpoint.LoadWeights(options.Init, _model);   // fine-tuning: its weights, a fresh optimizer and schedule
            output.WriteLine($"Initialised from {options.Init}: its weights, tokenizer and shape; a fresh optimizer and schedule.");
        }
        _dataRng = new Generator(options.Seed ^ 0x5DEECE66DUL);
        _batches = new LanguageModelBatches(_model, new TokenBatcher(trainTokens, globalBatch, _time, "training text"), _dataRng);
        // The periodic sample: window starts drawn uniformly from all of the validation text.
        var sampleRng = new Generator(SampleSeed);
        int starts = validTokens.Length - _time;
        _sampleStarts = options.EvalSample == 0 ? [] : [.. Enumerable.Range(0, options.EvalSample).Select(_ => sampleRng.NextInt(starts))];

        Header =
        [
            $"Data: {source}: {trainText.Length:N0} training and {validText.Length:N0} validation characters; " +
            $"tokenizer {TokenizerName(_tokenizer)} with {_tokenizer.VocabSize} ids.",
            $"Model: GPT, {config.Layers} layers, {config.Heads} heads, width {config.Width}, context {config.ContextLength}, " +
            $"{config.PositionalEncoding.ToString().ToLowerInvariant()} positions" +
            (config.Attention.Kind == AttentionKind.Full ? "." : $", attention {config.Attention}."),
        ];
        RowUnit = $"sequences of {_time} tokens";
        Title = $"GPT on {source}";
        Config = config.ToJson();
        TokenizerJson = _tokenizer.ToJson();
    }

    public Module Model => _model;
    public IReadOnlyList<string> Header { get; }
    public string RowUnit { get; }
    public string ItemUnit => "tokens";
    public string Title { get; }
    public JsonObject Config { get; }
    public string TokenizerJson { get; }

    public IEnumerable<(Tensor Param, bool Decay)> ParameterGroups() => _model.ParameterGroups();

    public int NextBatch() => _batches.NextBatch();
    public long Items(int firstRow, int rows) => _batches.Items(firstRow, rows);
    public Tensor Loss(int firstRow, int rows) => _batches.Loss(firstRow, rows);
    public int Time => _time;
    public (ReadOnlyMemory<int> Inputs, ReadOnlyMemory<int> Targets) Rows(int firstRow, int rows) =>
        _batches.Rows(firstRow, rows);

    public Evaluation Evaluate(bool full)
    {
        bool sample = !full && _sampleStarts.Length > 0;
        var batches = sample ? SampleBatches() : _validation.Sequential().Select(b => (b.X, b.Y));
        float loss = MeanLoss(batches);
        double bpc = loss * _tokensPerChar / Math.Log(2);
        string which = sample ? $"a sample of {_sampleStarts.Length:N0} windows of {_time} tokens from all of validation"
                              : $"all {_validation.SequentialWindowCount * _time:N0} validation tokens";
        return new Evaluation(loss, loss, $"validation loss {loss:F4}, {bpc:F3} bits/char ({which})",
            new JsonObject { ["val_bits_per_char"] = bpc, ["val_sample"] = sample ? _sampleStarts.Length : null });
    }

    /// <summary>The periodic sample's windows, ranks × B to a batch.</summary>
    IEnumerable<(int[] X, int[] Y)> SampleBatches()
    {
        var tokens = _validation;
        int rows = _options.Batch * _communicator.Size;
        for (int first = 0; first < _sampleStarts.Length; first += rows)
        {
            var starts = _sampleStarts.AsSpan(first, Math.Min(rows, _sampleStarts.Length - first)).ToArray();
            var x = new int[starts.Length * _time];
            var y = new int[x.Length];
            for (int r = 0; r < starts.Length; r++) tokens.Window(starts[r], x.AsSpan(r * _time, _time), y.AsSpan(r * _time, _time));
            yield return (x, y);
        }
    }

    float MeanLoss(IEnumerable<(int[] X, int[] Y)> batches) => MeanLoss(_model, batches, _time, _communicator, _scalars);

    /// <summary>
    /// Mean loss (nats per token) of <paramref name="model"/> over the batches of (B, T) windows, weighted by their rows,
    /// without recording gradients. With several ranks (a collective) each scores its share of every batch's rows.
    /// </summary>
    public static float MeanLoss(Gpt model, IEnumerable<(int[] X, int[] Y)> batches, int time, ICommunicator? communicator = null,
        float[]? scalars = null)
    {
        communicator ??= new SingleProcessCommunicator();
        scalars ??= new float[2];
        bool wasTraining = model.Training;
        model.Eval();
        double total = 0, count = 0;
        using (GradMode.NoGrad())
        {
            foreach (var (x, y) in batches)
            {
                using var scope = TensorScope.Begin();
                int rows = x.Length / time;
                var (first, mine) = DataParallel.Shard(rows, communicator.Rank, communicator.Size);
                scalars[0] = mine == 0 ? 0f : mine * model.Loss(model.Forward(x.AsSpan(first * time, mine * time), mine, time),
                    y.AsSpan(first * time, mine * time)).Item();
                scalars[1] = mine;
                if (communicator.Size > 1) communicator.AllReduceSum(scalars);
                total += scalars[0];
                count += scalars[1];
            }
        }
        model.Train(wasTraining);
        return count == 0 ? float.NaN : (float)(total / count);
    }

    public JsonObject CaptureState() => new() { ["data_rng"] = GeneratorState.ToJson(_dataRng) };

    public void RestoreState(JsonObject state) => _dataRng.SetState(GeneratorState.FromJson(state["data_rng"], "task.data_rng"));

    public void Finish(TextWriter output, JsonObject record)
    {
        if (_communicator.Rank != 0) return;
        output.WriteLine("Samples (temperature 0.8):");
        var sampleRng = new Generator(_options.Seed + 1);
        foreach (var prompt in new[] { "The ", "He said that ", "In the year " })
        {
            var ids = _tokenizer.Encode(prompt);
            var outIds = TextGenerator.Generate(_model, ids, 240, new SamplingOptions { Temperature = 0.8f }, sampleRng);
            output.WriteLine($"  » {_tokenizer.Decode(outIds).ReplaceLineEndings(" ")}");
        }
    }

    public string Try(string runDirectory) => $"attn sample --checkpoint {runDirectory} --prompt \"The jury said\"";

    static string Text<T>(T value) => value switch
    {
        PositionalEncodingKind kind => kind.ToString().ToLowerInvariant(),
        _ => $"{value}",
    };

    static (string Train, string Valid, string Source) LoadText(TrainOptions options, TextWriter output)
    {
        if (options.Data is not null)
        {
            var split = TextFile.Split(TextFile.Read(options.Data));
            return (split.Train, split.Validation, options.Data);
        }
        var docs = BrownCorpus.Fetch(DataCache.Resolve(options.Cache), output).Split();
        return (BrownCorpus.PlainText(docs.Train), BrownCorpus.PlainText(docs.Validation), "the Brown corpus");
    }

    static ITokenizer BuildTokenizer(string name, int vocabSize, string trainText) => name switch
    {
        "char" => CharTokenizer.Train(trainText),
        "bpe" => ByteBpeTokenizer.Train(trainText, vocabSize),
        _ when TiktokenTokenizer.SupportedEncodings.Contains(name) => new TiktokenTokenizer(name),
        _ => throw new ArgumentException($"--tokenizer '{name}' is unknown; use char, bpe, or one of " +
                                         $"{string.Join(", ", TiktokenTokenizer.SupportedEncodings)}."),
    };

    static bool IsKind(string name, ITokenizer t) => name switch
    {
        "char" => t is CharTokenizer,
        "bpe" => t is ByteBpeTokenizer,
        _ => t is TiktokenTokenizer tk && tk.Encoding == name,
    };

    static string TokenizerName(ITokenizer t) => t switch
    {
        CharTokenizer => "characters",
        ByteBpeTokenizer => "byte-level BPE",
        TiktokenTokenizer tk => tk.Encoding,
        _ => t.GetType().Name,
    };
}

/// <summary>
/// Next-token prediction batches for a <see cref="Gpt"/>: B windows at random starts of a token stream (drawn from the
/// given generator into buffers the batches reuse), and the mean cross-entropy of a batch's rows.
/// </summary>
public sealed class LanguageModelBatches(Gpt model, TokenBatcher batcher, Generator rng) : ILossSource, ITokenBatches
{
    readonly int[] _x = new int[batcher.BatchSize * batcher.ContextLength], _y = new int[batcher.BatchSize * batcher.ContextLength];
    readonly int _time = batcher.ContextLength;

    public int NextBatch()
    {
        batcher.NextRandom(rng, _x, _y);
        return batcher.BatchSize;
    }

    public long Items(int firstRow, int rows) => (long)rows * _time;

    public int Time => _time;

    public (ReadOnlyMemory<int> Inputs, ReadOnlyMemory<int> Targets) Rows(int firstRow, int rows) =>
        (_x.AsMemory(firstRow * _time, rows * _time), _y.AsMemory(firstRow * _time, rows * _time));

    public Tensor Loss(int firstRow, int rows)
    {
        var x = _x.AsSpan(firstRow * _time, rows * _time);
        var y = _y.AsSpan(firstRow * _time, rows * _time);
        var logits = model.Forward(x, rows, _time);   // (B, T, V)
        return model.Loss(logits, y);
    }
}
