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
/// Fashion-MNIST; `attn eval` on its checkpoint reports the test accuracy.
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

    public static int Train(TaskOptions o)
    {
        if (o.Model != "transformer") throw new ArgumentException($"--task fashion trains a Vision Transformer; --model '{o.Model}' is not available for it.");
        var total = Stopwatch.StartNew();
        var options = new TrainOptions
        {
            Steps = o.Steps, Minutes = o.Minutes, Batch = o.Batch, LearningRate = o.LearningRate, WarmupSteps = o.Warmup,
            WeightDecay = o.WeightDecay, EvalInterval = o.EvalInterval, Seed = o.Seed,
        }.Validate();
        var config = new VisionTransformerConfig
        {
            ImageSize = FashionMnist.Side, PatchSize = PatchSize, Channels = 1, Classes = FashionMnist.ClassNames.Count,
            Layers = o.Layers, Heads = o.Heads, Width = o.Width, MlpWidth = MlpRatio * o.Width, Dropout = o.Dropout,
        }.Validate();
        var dataDir = DataDirectory(o.Data);
        var data = FashionMnist.Load(dataDir);

        var model = new VisionTransformer(config, new Generator(options.Seed));
        var trainer = new ImageClassifierTrainer(model, options) { RandomFlips = true };
        var dataRng = new Generator(options.Seed ^ 0x5DEECE66DUL);
        Console.WriteLine($"Data: Fashion-MNIST from {dataDir}: {data.Train.Count:N0} training, {data.Validation.Count:N0} validation, {data.Test.Count:N0} test images.");
        Console.WriteLine($"Model: ViT, {config.Layers} layers, {config.Heads} heads, width {config.Width}, {config.PatchSize}×{config.PatchSize} patches, " +
                          $"{model.ParameterCount():N0} parameters. Threads: {Kernels.Parallel.ThreadCount}.");
        Console.WriteLine($"Training: {options.Steps} steps of {options.Batch} images (random horizontal flips)" +
                          (options.Minutes is { } m ? $", at most {m} minutes" : "") + $"; checkpoints in {o.Out}.");

        Directory.CreateDirectory(o.Out);
        var checkpointDir = Path.Combine(o.Out, Checkpoint.LatestSubdirectory);
        var bestDir = Path.Combine(o.Out, Checkpoint.BestSubdirectory);
        var validationPass = data.Validation.Slice(0, Math.Min(ValidationPassImages, data.Validation.Count));
        double bestAccuracy = -1;
        using var log = new MetricsLog(Path.Combine(o.Out, "log.jsonl"), append: false);
        var lastLine = TimeSpan.Zero;
        void Save(string dir, double validAccuracy) => Checkpoint.Save(dir, model, new Checkpoint.Contents(
            ConfigJson(config), LabelsJson(), new JsonObject { ["step"] = trainer.Step, ["val_accuracy"] = validAccuracy, ["seed"] = options.Seed }, null));

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
        Console.WriteLine($"Time: {total.Elapsed:m\\:ss}. Try: attn eval --checkpoint {o.Out}");
        return 0;
    }

    /// <summary>Test accuracy of a fashion checkpoint; <paramref name="data"/> is a directory with the IDX files or null for the installed package.</summary>
    public static int Evaluate(string checkpointDir, string? data, string? jsonPath, string? cache)
    {
        var contents = Checkpoint.ReadContents(checkpointDir);
        var config = VisionTransformerConfig.FromJson(contents.Config);
        var model = new VisionTransformer(config, new Generator(0));
        Checkpoint.LoadWeights(checkpointDir, model);
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

    static JsonObject ConfigJson(VisionTransformerConfig config)
    {
        var json = config.ToJson();
        json["task"] = Name;
        return json;
    }

    static string LabelsJson() =>
        new JsonObject { ["labels"] = new JsonArray([.. FashionMnist.ClassNames.Select(n => (JsonNode)n)]) }.ToJsonString();
}
