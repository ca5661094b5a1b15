using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Training;

namespace AttentionSharp.Cli.Tasks;

/// <summary>
/// `attn train --task fashion`: a Vision Transformer (7×7 patches, so 16 patches and a class token) classifying
/// Fashion-MNIST, or the recurrent baseline (--model lstm, gru or rnn: the image read row by row); trained with random
/// shifts of up to ±2 pixels, horizontal flips and label smoothing. `attn eval` on its checkpoint reports the test
/// accuracy; `attn predict` classifies one image file.
/// </summary>
static class FashionTask
{
    public const string Name = "fashion";

    /// <summary>P: 7×7 patches keep the sequence at 17 tokens, which trains quickly on a CPU.</summary>
    const int PatchSize = 7;

    /// <summary>The MLP is twice the width (ViT uses four times) to keep CPU steps short.</summary>
    const int MlpRatio = 2;

    /// <summary>Validation passes during training score the first 2,000 validation images (a standard error of about 0.7
    /// points at 90 %), which keeps each pass to seconds; the full validation set is scored once at the end.</summary>
    const int ValidationPassImages = 2000;

    /// <summary>P of the random crops: shifts of up to ±2 pixels, as the usual padding-4 crop of 32-pixel CIFAR images scaled to 28.</summary>
    const int CropPadding = 2;

    /// <summary>ε of label smoothing: the classes shirt, T-shirt, pullover and coat are often ambiguous, so soft targets help.</summary>
    const float LabelSmoothing = 0.1f;

    static readonly string[] Models = ["transformer", .. AttentionSharp.Nn.RecurrentBase.CellNames];

    /// <summary>Defaults for options not given, per model: chosen to do well within the 20-minute aim on two cores.</summary>
    static TaskDefaults Defaults(string model) => model == "transformer"
        ? new TaskDefaults { Minutes = 18, Steps = 100_000, Layers = 4, Heads = 4, Width = 128, Dropout = 0f, Batch = 32, LearningRate = 1e-3f, Warmup = 500, WeightDecay = 0.05f, EvalInterval = 2000 }
        : new TaskDefaults { Minutes = 18, Steps = 100_000, Layers = 2, Width = 128, Dropout = 0.1f, Batch = 64, LearningRate = 2e-3f, Warmup = 200, WeightDecay = 0.01f, EvalInterval = 1000 };

    public static int Train(TaskOptions o)
    {
        if (!Models.Contains(o.Model))
            throw new ArgumentException($"--model '{o.Model}' is not available for --task fashion; use one of {string.Join(", ", Models)}.");
        if (o.Init is not null || o.Resume is not null) throw new ArgumentException("--init and --resume are not available for --task fashion.");
        o = Defaults(o.Model).Apply(o);
        var total = Stopwatch.StartNew();
        var options = new TrainOptions
        {
            Steps = o.Steps, Minutes = o.Minutes, Batch = o.Batch, LearningRate = o.LearningRate, WarmupSteps = o.Warmup,
            WeightDecay = o.WeightDecay, EvalInterval = o.EvalInterval, Seed = o.Seed,
        }.Validate();
        var (model, config, description) = Create(o, new Generator(options.Seed));
        var dataDir = DataDirectory(o.Data);
        var data = FashionMnist.Load(dataDir);

        var trainer = new ImageClassifierTrainer(model, options)
        {
            RandomFlips = true, CropPadding = CropPadding, CropFill = -FashionMnist.PixelMean / FashionMnist.PixelStd, LabelSmoothing = LabelSmoothing,
        };
        var dataRng = new Generator(options.Seed ^ 0x5DEECE66DUL);
        Console.WriteLine($"Data: Fashion-MNIST from {dataDir}: {data.Train.Count:N0} training, {data.Validation.Count:N0} validation, {data.Test.Count:N0} test images.");
        Console.WriteLine($"Model: {description}, {model.ParameterCount():N0} parameters. Threads: {Kernels.Parallel.ThreadCount}.");
        Console.WriteLine($"Training: {options.Steps} steps of {options.Batch} images (random shifts of up to ±{CropPadding} pixels, horizontal flips, label smoothing {LabelSmoothing})" +
                          (options.Minutes is { } m ? $", at most {m} minutes" : "") + $"; {TaskDefaults.Describe(o)}; checkpoints in {o.Out}.");

        Directory.CreateDirectory(o.Out);
        var checkpointDir = Path.Combine(o.Out, Checkpoint.LatestSubdirectory);
        var bestDir = Path.Combine(o.Out, Checkpoint.BestSubdirectory);
        var validationPass = data.Validation.Slice(0, Math.Min(ValidationPassImages, data.Validation.Count));
        double bestAccuracy = -1;
        using var log = new MetricsLog(Path.Combine(o.Out, "log.jsonl"), append: false);
        var lastLine = TimeSpan.Zero;
        void Save(string dir, double validAccuracy) => Checkpoint.Save(dir, model, new Checkpoint.Contents(
            config, LabelsJson(), new JsonObject { ["step"] = trainer.Step, ["val_accuracy"] = validAccuracy, ["seed"] = options.Seed }, null));

        trainer.Run(data.Train, dataRng,
            r =>
            {
                log.Write(new JsonObject { ["step"] = r.Step, ["loss"] = r.Loss, ["lr"] = r.LearningRate, ["grad_norm"] = r.GradNorm, ["images_per_s"] = Math.Round(r.TokensPerSecond), ["elapsed_s"] = Math.Round(r.Elapsed.TotalSeconds, 2) });
                if (r.Elapsed - lastLine < TimeSpan.FromSeconds(10) && r.Step != r.TotalSteps) return;
                lastLine = r.Elapsed;
                Console.WriteLine($"step {r.Step,5}/{r.TotalSteps} loss {r.Loss:F4} | lr {r.LearningRate:0.0e+0} | {r.TokensPerSecond:F0} images/s | {r.Elapsed:m\\:ss} elapsed, ETA {r.Remaining:m\\:ss}");
            },
            step =>
            {
                var (loss, accuracy) = trainer.Evaluate(validationPass);
                bool best = accuracy > bestAccuracy;
                if (best) bestAccuracy = accuracy;
                Console.WriteLine($"step {step}: validation loss {loss:F4}, accuracy {accuracy:P2} ({validationPass.Count:N0} images){(best ? " (best so far)" : "")}");
                log.Write(new JsonObject { ["step"] = step, ["val_loss"] = loss, ["val_accuracy"] = accuracy });
                Save(checkpointDir, accuracy);
                if (best) Save(bestDir, accuracy);
            },
            CancellationToken.None);

        Checkpoint.LoadWeights(bestDir, model);
        var (validLoss, validAccuracy) = trainer.Evaluate(data.Validation);
        var (testLoss, testAccuracy) = trainer.Evaluate(data.Test);
        log.Write(new JsonObject { ["final_val_loss"] = validLoss, ["final_val_accuracy"] = validAccuracy, ["test_loss"] = testLoss, ["test_accuracy"] = testAccuracy });
        Console.WriteLine($"Validation (all {data.Validation.Count:N0} images, best checkpoint): loss {validLoss:F4}, accuracy {validAccuracy:P2}.");
        Console.WriteLine($"Test (all {data.Test.Count:N0} images, best checkpoint): loss {testLoss:F4}, accuracy {testAccuracy:P2}.");
        Console.WriteLine($"Checkpoints: {Path.GetFullPath(bestDir)} (best), {Path.GetFullPath(checkpointDir)} (latest)   Log: {Path.GetFullPath(Path.Combine(o.Out, "log.jsonl"))}");
        Console.WriteLine($"Time: {total.Elapsed:m\\:ss}. Try: attn eval --checkpoint {o.Out}   attn predict --checkpoint {o.Out} --input IMAGE.png");
        return 0;
    }

    /// <summary>The classifier --model names, its config.json and a one-line description.</summary>
    static (ImageClassifier Model, JsonObject Config, string Description) Create(TaskOptions o, Generator rng)
    {
        if (o.Model == "transformer")
        {
            var vit = new VisionTransformerConfig
            {
                ImageSize = FashionMnist.Side, PatchSize = PatchSize, Channels = 1, Classes = FashionMnist.ClassNames.Count,
                Layers = o.Layers, Heads = o.Heads, Width = o.Width, MlpWidth = MlpRatio * o.Width, Dropout = o.Dropout,
            }.Validate();
            return (new VisionTransformer(vit, rng), ConfigJson("transformer", vit.ToJson()),
                $"ViT, {vit.Layers} layers, {vit.Heads} heads, width {vit.Width}, {vit.PatchSize}×{vit.PatchSize} patches");
        }
        var rnn = new RecurrentImageClassifierConfig
        {
            Cell = o.Model, ImageSize = FashionMnist.Side, Channels = 1, Classes = FashionMnist.ClassNames.Count,
            HiddenSize = o.Width, Layers = o.Layers, Bidirectional = true, Dropout = o.Dropout,
        }.Validate();
        return (new RecurrentImageClassifier(rnn, rng), ConfigJson(o.Model, rnn.ToJson()),
            $"bidirectional {rnn.Cell.ToUpperInvariant()} over the {rnn.ImageSize} rows, {rnn.Layers} layers, {rnn.HiddenSize} units per direction, mean of the states");
    }

    /// <summary>The classifier a checkpoint's config.json describes, with its weights loaded.</summary>
    static ImageClassifier Load(string checkpointDir)
    {
        var config = Checkpoint.ReadContents(checkpointDir).Config;
        var rng = new Generator(0);
        // Checkpoints written before the recurrent baseline hold the ViT config itself, without "model".
        ImageClassifier model = config["model"]?.GetValue<string>() switch
        {
            null => new VisionTransformer(VisionTransformerConfig.FromJson(config), rng),
            "transformer" => new VisionTransformer(VisionTransformerConfig.FromJson(Network(config, checkpointDir)), rng),
            var cell when AttentionSharp.Nn.RecurrentBase.CellNames.Contains(cell) => new RecurrentImageClassifier(RecurrentImageClassifierConfig.FromJson(Network(config, checkpointDir)), rng),
            var other => throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' names the model '{other}'; expected one of {string.Join(", ", Models)}."),
        };
        Checkpoint.LoadWeights(checkpointDir, model);
        return model;
    }

    static JsonObject Network(JsonObject config, string checkpointDir) => config["network"] as JsonObject
        ?? throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' has no \"network\" object.");

    /// <summary>
    /// `attn predict`: classifies the image file <paramref name="input"/> (PGM or PNG, also JPEG, BMP, GIF, WebP), which must
    /// be 28×28 like Fashion-MNIST's — a picture of another size is refused rather than resized, since a resized photo is
    /// not what the model learnt from. Colour is converted to gray; like the data set, the garment is light on black.
    /// Prints the class and the three most probable classes.
    /// </summary>
    public static int Predict(string checkpointDir, string input, string? cache)
    {
        var model = Load(checkpointDir);
        var pixels = FashionMnist.Normalize(GrayImage.Read(input), input);
        model.Eval();
        float[] probabilities;
        using (Autograd.GradMode.NoGrad())
        using (TensorScope.Begin())
            probabilities = model.Forward(Tensor.FromArray(pixels, 1, 1, FashionMnist.Side, FashionMnist.Side)).Softmax().ToArray();
        var top = Enumerable.Range(0, probabilities.Length).OrderByDescending(i => probabilities[i]).Take(3).ToArray();
        Console.WriteLine($"{input}: {FashionMnist.ClassNames[top[0]]}");
        foreach (int i in top) Console.WriteLine($"  {FashionMnist.ClassNames[i],-12} {100 * probabilities[i],6:F2}%");
        return 0;
    }

    /// <summary>Test accuracy of a fashion checkpoint; <paramref name="data"/> is a directory with the IDX files or null for the installed package.</summary>
    public static int Evaluate(string checkpointDir, string? data, string? jsonPath, string? cache)
    {
        var model = Load(checkpointDir);
        var dataDir = DataDirectory(data);
        var test = FashionMnist.LoadTest(dataDir);
        var (loss, accuracy) = ImageClassifierTrainer.Evaluate(model, test, 256);
        Console.WriteLine($"Fashion-MNIST test set ({test.Count:N0} images from {dataDir}): loss {loss:F4}, accuracy {accuracy:P2}");
        if (jsonPath is not null)
            File.WriteAllText(jsonPath, new JsonObject { ["accuracy"] = accuracy }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>--data DIR as given, else the installed package's directory, else one sentence saying how to get the files.</summary>
    static string DataDirectory(string? data)
    {
        if (data is not null)
        {
            if (File.Exists(data))
                throw new DataSourceException($"--data must be a directory holding the four Fashion-MNIST IDX files, not the file '{data}'.");
            if (!Directory.Exists(data)) throw new DataSourceException($"The --data directory '{data}' does not exist.");
            return data;
        }
        if (FashionMnist.IsPresent(FashionMnist.PackageDirectory)) return FashionMnist.PackageDirectory;
        throw new DataSourceException($"Fashion-MNIST is not installed in {FashionMnist.PackageDirectory}: install it with " +
            $"`sudo apt-get install dataset-fashion-mnist`, or pass --data DIR with the four IDX files ({string.Join(", ", FashionMnist.FileNames)}, gzipped or not).");
    }

    static JsonObject ConfigJson(string model, JsonObject network) => new() { ["task"] = Name, ["model"] = model, ["network"] = network };

    static string LabelsJson() =>
        new JsonObject { ["labels"] = new JsonArray([.. FashionMnist.ClassNames.Select(n => (JsonNode)n)]) }.ToJsonString();

    /// <summary>`attn viz`: the ViT's attention on a 28×28 image, the class token's rollout over the patches included.</summary>
    public static Visualization.AttentionView Visualize(string checkpointDir, VizInput input, string? cache)
    {
        if (input.ImageFile is not { } file) throw new ArgumentException($"Checkpoint '{checkpointDir}' is an image classifier: it reads --image FILE, not --text.");
        var model = Load(checkpointDir);
        if (model is not VisionTransformer vit)
            throw new ArgumentException($"Checkpoint '{checkpointDir}' is a recurrent image classifier: it has no attention layers to draw. Train one with --model transformer.");
        var image = GrayImage.Read(file);
        var pixels = FashionMnist.Normalize(image, file);
        vit.Eval();
        using var probe = Visualization.AttentionProbe.Start();
        float[] probabilities;
        using (Autograd.GradMode.NoGrad())
        using (TensorScope.Begin())
            probabilities = vit.Forward(Tensor.FromArray(pixels, 1, 1, FashionMnist.Side, FashionMnist.Side)).Softmax().ToArray();
        int p = vit.Config.PatchSize, grid = FashionMnist.Side / p;
        var tokens = new List<string> { "[class]" };
        for (int n = 0; n < grid * grid; n++) tokens.Add($"patch ({n / grid}, {n % grid})");
        int best = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(probabilities);
        return Visualization.AttentionView.SelfAttention(
            $"ViT attention on {Path.GetFileName(file)}: {FashionMnist.ClassNames[best]} ({100 * probabilities[best]:F1} %)", probe.Records, tokens,
            image: new Visualization.AttentionImage(image.Height, image.Width, image.Pixels, p));
    }
}
