using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.Distributed;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Training.Tasks;

/// <summary>
/// `--task fashion`: Fashion-MNIST classified by a Vision Transformer (7×7 patches, so 16 patches and a class token) or
/// the recurrent baseline (the image read row by row); trained with random shifts of up to ±2 pixels, horizontal flips
/// and label smoothing; scored by accuracy.
/// </summary>
public sealed class ImageTask : ITrainingTask
{
    /// <summary>P unless --patch says otherwise: 7×7 patches keep the sequence at 17 tokens, quick to train on a CPU.</summary>
    const int PatchSize = 7;

    /// <summary>The MLP is twice the width (ViT uses four times) to keep CPU steps short.</summary>
    const int MlpRatio = 2;

    /// <summary>
    /// P of the random crops: shifts of up to ±2 pixels, as the usual padding-4 crop of 32-pixel CIFAR images scaled to 28.
    /// </summary>
    const int CropPadding = 2;

    /// <summary>The darkest pixel in the images' normalised units: the background a shift brings in.</summary>
    static readonly float Black = -FashionMnist.PixelMean / FashionMnist.PixelStd;

    /// <summary>The periodic validation sample of images is drawn with this seed.</summary>
    const ulong SampleSeed = 0xFA5;

    readonly TrainOptions _options;
    readonly ImageClassifier _model;
    readonly FashionMnist _data;
    readonly ImageSet _sample;
    readonly ImageBatches _batches;
    readonly TestViews _views;

    public ImageTask(TrainOptions options, Checkpoint.Contents? resumed, ICommunicator communicator, TextWriter output)
    {
        if (options.Init is not null) throw new ArgumentException("--init is not available for --task fashion.");
        if (options.NoAttention) throw new ArgumentException("--no-attention applies to --task g2p's recurrent models.");
        _options = options;
        var dataDir = DataDirectory(options.Data);
        (_model, var config, var description) = resumed is not null
            ? FromConfig(resumed.Config, options.Resume!)
            : Create(options, new Generator(options.Seed));
        _data = FashionMnist.Load(dataDir);
        _sample = options.EvalSample == 0 || options.EvalSample >= _data.Validation.Count ? _data.Validation
            : Subset(_data.Validation,
                ValidationSample.Indices(_data.Validation.Count, options.EvalSample, new Generator(SampleSeed)));
        // The brightest pixel in the images' normalised units: with Black, the range of the erasing noise.
        float white = (1 - FashionMnist.PixelMean) / FashionMnist.PixelStd;
        // ε of label smoothing (the preset's 0.1): shirt, T-shirt, pullover and coat are often ambiguous.
        float smoothing = options.LabelSmoothing ?? 0.1f;
        _views = new TestViews(options.TestViews ?? "none", Black);
        // The checkpoints say which views their scores averaged, for `attn eval` and `attn predict`.
        Config = (JsonObject)config.DeepClone();
        Config["test_views"] = _views.Name;
        _batches = new ImageBatches(_model, _data.Train, options.Batch * communicator.Size, options.Seed ^ 0x5DEECE66DUL,
            options.Seed ^ 0xA06UL)
        {
            RandomFlips = true, CropPadding = CropPadding, CropFill = Black, LabelSmoothing = smoothing,
            EraseProbability = options.Erase ?? 0, EraseRange = (Black, white),
        };
        Header =
        [
            $"Data: Fashion-MNIST from {dataDir}: {_data.Train.Count:N0} training, {_data.Validation.Count:N0} validation, " +
            $"{_data.Test.Count:N0} test images; random shifts of up to ±{CropPadding} pixels, horizontal flips" +
            (options.Erase is > 0 ? $", random erasing (p = {options.Erase:G3})" : "") +
            $"; the final validation and the test read {_views.Description}.",
            $"Model: {description}.",
        ];
        Title = $"Fashion-MNIST, {description}";
    }

    public Module Model => _model;
    public IReadOnlyList<string> Header { get; }
    public string RowUnit => "images";
    public string ItemUnit => "images";
    public string Title { get; }
    public JsonObject Config { get; }
    public string TokenizerJson =>
        new JsonObject { ["labels"] = new JsonArray([.. FashionMnist.ClassNames.Select(n => (JsonNode)n)]) }.ToJsonString();

    public IEnumerable<(Tensor Param, bool Decay)> ParameterGroups() => _model.Parameters().Select(p => (p, p.Rank >= 2));

    public int NextBatch() => _batches.NextBatch();
    public long Items(int firstRow, int rows) => _batches.Items(firstRow, rows);
    public Tensor Loss(int firstRow, int rows) => _batches.Loss(firstRow, rows);

    public Evaluation Evaluate(bool full)
    {
        // The sample passes during training read each image once, to stay cheap; the final pass reads the views.
        var data = full ? _data.Validation : _sample;
        var (loss, accuracy) = ImageEvaluation.Evaluate(_model, data, 256, full ? _views : null);
        return new Evaluation(loss, -accuracy, $"validation loss {loss:F4}, accuracy {accuracy:P2} " +
            (data == _data.Validation ? $"(all {data.Count:N0} validation images)"
                : $"(a sample of {data.Count:N0} validation images)"),
            new JsonObject { ["val_accuracy"] = accuracy });
    }

    public JsonObject CaptureState() => _batches.Capture();

    public void RestoreState(JsonObject state) => _batches.Restore(state);

    public void Finish(TextWriter output, JsonObject record)
    {
        var (loss, accuracy) = ImageEvaluation.Evaluate(_model, _data.Test, 256, _views);
        record["test_loss"] = loss;
        record["test_accuracy"] = accuracy;
        output.WriteLine($"Test (all {_data.Test.Count:N0} images, best checkpoint): loss {loss:F4}, accuracy {accuracy:P2}.");
    }

    public string Try(string runDirectory) =>
        $"attn eval --checkpoint {runDirectory}   attn predict --checkpoint {runDirectory} --input IMAGE.png";

    static ImageSet Subset(ImageSet set, int[] indices)
    {
        var pixels = new float[indices.Length * set.ImageLength];
        for (int i = 0; i < indices.Length; i++) set.Image(indices[i]).CopyTo(pixels.AsSpan(i * set.ImageLength));
        return new ImageSet(pixels, [.. indices.Select(i => set.Labels[i])], set.Channels, set.Side);
    }

    /// <summary>The classifier <paramref name="o"/> describes, its config.json and a one-line description.</summary>
    public static (ImageClassifier Model, JsonObject Config, string Description) Create(TrainOptions o, Generator rng)
    {
        if (o.Model == "transformer")
        {
            if (o.Patch is { } patch && (patch <= 0 || FashionMnist.Side % patch != 0))
                throw new ArgumentException($"--patch {patch} does not divide the {FashionMnist.Side}-pixel side of a " +
                                            "Fashion-MNIST image; use 1, 2, 4, 7, 14 or 28.");
            if (o.Stem is null or 0 && o.StemLayers is > 1)
                throw new ArgumentException($"--stem-layers {o.StemLayers} needs a stem: give its channels with --stem C.");
            var vit = new VisionTransformerConfig
            {
                ImageSize = FashionMnist.Side, PatchSize = o.Patch ?? PatchSize, Channels = 1,
                Classes = FashionMnist.ClassNames.Count,
                Layers = o.Layers ?? 4, Heads = o.Heads ?? 4, Width = o.Width ?? 128, MlpWidth = MlpRatio * (o.Width ?? 128),
                Dropout = o.Dropout ?? 0f, PositionalEncoding = o.Positions ?? PositionalEncodingKind.Learned,
                Attention = o.Attention ?? AttentionPattern.Full,
                StemLayers = o.Stem is > 0 ? o.StemLayers ?? 1 : 0, StemChannels = o.Stem ?? 0,
            }.Validate();
            return (new VisionTransformer(vit, rng), ConfigJson("transformer", vit.ToJson()), Describe(vit));
        }
        var rnn = new RecurrentImageClassifierConfig
        {
            Cell = o.Model, ImageSize = FashionMnist.Side, Channels = 1, Classes = FashionMnist.ClassNames.Count,
            HiddenSize = o.Width ?? 128, Layers = o.Layers ?? 2, Bidirectional = true, Dropout = o.Dropout ?? 0f,
        }.Validate();
        return (new RecurrentImageClassifier(rnn, rng), ConfigJson(o.Model, rnn.ToJson()), Describe(rnn));
    }

    /// <summary>The classifier a checkpoint's config.json describes (weights not loaded).</summary>
    public static (ImageClassifier Model, JsonObject Config, string Description) FromConfig(JsonObject config,
        string checkpointDir)
    {
        var rng = new Generator(0);
        // Checkpoints written before the recurrent baseline hold the ViT config itself, without "model".
        switch (config["model"]?.GetValue<string>())
        {
            case null:
                var old = VisionTransformerConfig.FromJson(config);
                return (new VisionTransformer(old, rng), ConfigJson("transformer", old.ToJson()), Describe(old));
            case "transformer":
                var vit = VisionTransformerConfig.FromJson(Network(config, checkpointDir));
                return (new VisionTransformer(vit, rng), config, Describe(vit));
            case var cell when RecurrentBase.CellNames.Contains(cell):
                var rnn = RecurrentImageClassifierConfig.FromJson(Network(config, checkpointDir));
                return (new RecurrentImageClassifier(rnn, rng), config, Describe(rnn));
            case var other:
                throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' names the model '{other}'; " +
                                              $"expected one of {string.Join(", ", TaskPresets.ModelsOf("fashion"))}.");
        }
    }

    /// <summary>The classifier of a fashion checkpoint (or run directory), weights loaded.</summary>
    public static ImageClassifier Load(string checkpointDir) => LoadWithViews(checkpointDir).Model;

    /// <summary>
    /// The classifier of a fashion checkpoint (or run directory), weights loaded, and the views its scores averaged (a
    /// checkpoint written before test views existed read each image once).
    /// </summary>
    public static (ImageClassifier Model, TestViews Views) LoadWithViews(string checkpointDir)
    {
        var config = Checkpoint.ReadContents(checkpointDir).Config;
        var model = FromConfig(config, checkpointDir).Model;
        Checkpoint.LoadWeights(checkpointDir, model);
        string name = config["test_views"] is JsonValue value && value.TryGetValue<string>(out var s) ? s
            : config["test_views"] is null ? "none"
            : throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' has a \"test_views\" that " +
                                            "is not a string.");
        if (!TestViews.Names.Contains(name))
            throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' names the test views '{name}'; " +
                                          $"expected one of {string.Join(", ", TestViews.Names)}.");
        return (model, new TestViews(name, Black));
    }

    static string Describe(VisionTransformerConfig vit) =>
        $"ViT, {vit.Layers} layers, {vit.Heads} heads, width {vit.Width}, " + (vit.StemLayers == 0 ? "" :
            $"a stem of {vit.StemLayers} 3×3 convolution{(vit.StemLayers > 1 ? "s" : "")} " +
            $"({vit.StemChannels} channels, stride {vit.StemStride}), ") +
        $"{vit.PatchSize}×{vit.PatchSize} patches ({vit.Patches} tokens and a class token)";

    static string Describe(RecurrentImageClassifierConfig rnn) =>
        $"bidirectional {rnn.Cell.ToUpperInvariant()} over the {rnn.ImageSize} rows, {rnn.Layers} layers, " +
        $"{rnn.HiddenSize} units per direction, mean of the states";

    static JsonObject Network(JsonObject config, string checkpointDir) => config["network"] as JsonObject
        ?? throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' has no \"network\" object.");

    static JsonObject ConfigJson(string model, JsonObject network) =>
        new() { ["task"] = "fashion", ["model"] = model, ["network"] = network };

    /// <summary>
    /// --data DIR as given, else the installed package's directory, else one sentence saying how to get the files.
    /// </summary>
    public static string DataDirectory(string? data)
    {
        if (data is not null)
        {
            if (File.Exists(data))
                throw new DataSourceException(
                    $"--data must be a directory holding the four Fashion-MNIST IDX files, not the file '{data}'.");
            if (!Directory.Exists(data)) throw new DataSourceException($"The --data directory '{data}' does not exist.");
            return data;
        }
        if (FashionMnist.IsPresent(FashionMnist.PackageDirectory)) return FashionMnist.PackageDirectory;
        throw new DataSourceException($"Fashion-MNIST is not installed in {FashionMnist.PackageDirectory}: install it with " +
            "`sudo apt-get install dataset-fashion-mnist`, or pass --data DIR with the four IDX files " +
            $"({string.Join(", ", FashionMnist.FileNames)}, gzipped or not).");
    }
}

/// <summary>
/// Training batches of an image set: epochs in a new random order each time, cut into batches (a last partial batch is
/// dropped), each image shifted (a random crop of the image padded by <see cref="CropPadding"/>) and mirrored at random;
/// and the classifier's loss, with label smoothing, over a batch's rows.
/// </summary>
public sealed class ImageBatches : ILossSource
{
    readonly ImageClassifier _model;
    readonly ImageSet _train;
    readonly EpochStream<int[]> _stream;
    readonly Generator _augmentRng;
    readonly float[] _pixels;
    readonly int[] _labels;

    /// <param name="model">The classifier.</param>
    /// <param name="train">The training images.</param>
    /// <param name="globalBatch">Images per batch (all ranks together).</param>
    /// <param name="orderSeed">The seed of the epochs' order.</param>
    /// <param name="augmentSeed">The seed of the shifts and flips.</param>
    public ImageBatches(ImageClassifier model, ImageSet train, int globalBatch, ulong orderSeed, ulong augmentSeed)
    {
        if (train.Count < globalBatch)
            throw new DataSourceException($"The training set has {train.Count} images, fewer than one batch of {globalBatch}.");
        if (train.Channels != model.Channels || train.Side != model.ImageSize)
            throw new ArgumentException($"The images are {train.Channels}×{train.Side}×{train.Side}, but the model reads " +
                                        $"{model.Channels}×{model.ImageSize}×{model.ImageSize}.");
        (_model, _train) = (model, train);
        int count = train.Count;
        _stream = new EpochStream<int[]>(shuffle => Epoch(count, globalBatch, shuffle), orderSeed);
        _augmentRng = new Generator(augmentSeed);
        _pixels = new float[globalBatch * train.ImageLength];
        _labels = new int[globalBatch];
    }

    /// <summary>Mirror each training image left to right with probability ½.</summary>
    public bool RandomFlips { get; init; }

    /// <summary>P: shift each training image by up to ±P pixels each way; 0 for none.</summary>
    public int CropPadding { get; init; }

    /// <summary>The value of the padding a shift brings in: the background, in the images' normalised units.</summary>
    public float CropFill { get; init; }

    /// <summary>ε of label smoothing in the training loss (0 for none).</summary>
    public float LabelSmoothing { get; init; }

    /// <summary>The probability of erasing a random rectangle of each training image (0 for none).</summary>
    public float EraseProbability { get; init; }

    /// <summary>The range of the noise an erased rectangle holds: a pixel's range, in the images' normalised units.</summary>
    public (float Low, float High) EraseRange { get; init; }

    static IEnumerable<int[]> Epoch(int count, int batch, Generator shuffle)
    {
        var order = Enumerable.Range(0, count).ToArray();
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = shuffle.NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        for (int start = 0; start + batch <= count; start += batch) yield return order[start..(start + batch)];
    }

    /// <summary>Copies the next batch into the buffers, shifting and flipping the images as configured.</summary>
    public int NextBatch()
    {
        var indices = _stream.Next();
        int length = _train.ImageLength;
        for (int b = 0; b < indices.Length; b++)
        {
            var target = _pixels.AsSpan(b * length, length);
            if (CropPadding > 0)
                ImageAugmentation.RandomCrop(_train.Image(indices[b]), target, _train.Channels, _train.Side, CropPadding,
                    CropFill, _augmentRng);
            else _train.Image(indices[b]).CopyTo(target);
            if (RandomFlips && _augmentRng.NextFloat() < 0.5f) ImageAugmentation.FlipHorizontal(target, _train.Side);
            if (EraseProbability > 0)
                ImageAugmentation.RandomErase(target, _train.Channels, _train.Side, EraseProbability, EraseRange.Low,
                    EraseRange.High, _augmentRng);
            _labels[b] = _train.Labels[indices[b]];
        }
        return indices.Length;
    }

    public long Items(int firstRow, int rows) => rows;

    public Tensor Loss(int firstRow, int rows)
    {
        int length = _train.ImageLength, side = _model.ImageSize;
        // (B, Ch, H, W)
        var images = Tensor.FromArray(_pixels.AsSpan(firstRow * length, rows * length), rows, _model.Channels, side, side);
        return _model.Loss(_model.Forward(images), _labels.AsSpan(firstRow, rows), LabelSmoothing);
    }

    public JsonObject Capture() => new() { ["data"] = _stream.Capture(), ["augment_rng"] = GeneratorState.ToJson(_augmentRng) };

    public void Restore(JsonObject state)
    {
        _stream.Restore(state["data"] as JsonObject ?? throw new CheckpointException("The trainer state has no 'task.data'."));
        _augmentRng.SetState(GeneratorState.FromJson(state["augment_rng"], "task.augment_rng"));
    }
}
