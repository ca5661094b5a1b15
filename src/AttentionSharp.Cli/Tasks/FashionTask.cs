using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

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

    /// <summary>
    /// `attn predict`: classifies the image file <paramref name="input"/> (PGM or PNG, also JPEG, BMP, GIF, WebP), which must
    /// be 28×28 like Fashion-MNIST's — a picture of another size is refused rather than resized, since a resized photo is
    /// not what the model learnt from. Colour is converted to gray; like the data set, the garment is light on black.
    /// Prints the class and the three most probable classes: the mean over the views the checkpoint's scores averaged.
    /// </summary>
    public static int Predict(string checkpointDir, string input, string? cache)
    {
        var (model, views) = ImageTask.LoadWithViews(checkpointDir);
        var pixels = FashionMnist.Normalize(GrayImage.Read(input), input);
        model.Eval();
        float[] probabilities;
        using (Autograd.GradMode.NoGrad())
            probabilities = ImageEvaluation.MeanProbabilities(model, pixels, 1, views);
        var top = Enumerable.Range(0, probabilities.Length).OrderByDescending(i => probabilities[i]).Take(3).ToArray();
        Console.WriteLine($"{input}: {FashionMnist.ClassNames[top[0]]}");
        foreach (int i in top) Console.WriteLine($"  {FashionMnist.ClassNames[i],-12} {100 * probabilities[i],6:F2}%");
        return 0;
    }

    /// <summary>
    /// Accuracy of a fashion checkpoint on the test images, or with <paramref name="validation"/> the 5,000 held out of
    /// the training file; <paramref name="data"/> is a directory with the IDX files or null for the installed package,
    /// <paramref name="views"/> the test views to average, or null for those the checkpoint names.
    /// </summary>
    public static int Evaluate(string checkpointDir, string? data, string? jsonPath, string? views, bool validation)
    {
        var (model, own) = ImageTask.LoadWithViews(checkpointDir);
        var testViews = views is null ? own : new TestViews(views, own.Fill);
        var dataDir = ImageTask.DataDirectory(data);
        var images = validation ? FashionMnist.Load(dataDir).Validation : FashionMnist.LoadTest(dataDir);
        var (loss, accuracy) = ImageEvaluation.Evaluate(model, images, 256, testViews);
        Console.WriteLine($"Fashion-MNIST {(validation ? "validation" : "test")} set ({images.Count:N0} images from {dataDir}, " +
                          $"{testViews.Description}): loss {loss:F4}, accuracy {accuracy:P2}");
        if (jsonPath is not null)
            File.WriteAllText(jsonPath, new JsonObject
            {
                ["accuracy"] = accuracy, ["loss"] = loss, ["split"] = validation ? "validation" : "test",
                ["test_views"] = testViews.Name,
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>`attn viz`: the ViT's attention on a 28×28 image, the class token's rollout over the patches included.</summary>
    public static Visualization.AttentionView Visualize(string checkpointDir, VizInput input, string? cache)
    {
        if (input.ImageFile is not { } file)
            throw new ArgumentException(
                $"Checkpoint '{checkpointDir}' is an image classifier: it reads --image FILE, not --text.");
        var model = ImageTask.Load(checkpointDir);
        if (model is not VisionTransformer vit)
            throw new ArgumentException($"Checkpoint '{checkpointDir}' is a recurrent image classifier: it has no attention " +
                                        "layers to draw. Train one with --model transformer.");
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
            $"ViT attention on {Path.GetFileName(file)}: {FashionMnist.ClassNames[best]} ({100 * probabilities[best]:F1} %)",
            probe.Records, tokens,
            image: new Visualization.AttentionImage(image.Height, image.Width, image.Pixels, p));
    }
}
