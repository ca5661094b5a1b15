using System.Text.Json.Nodes;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Cli;

/// <summary>
/// A fashion checkpoint trained here is scored by `attn eval` with the test views it names or others, on its test or
/// validation images, and `attn predict` classifies an image file with the same views.
/// </summary>
public class FashionCommandTests
{
    [Fact]
    public void EvalAndPredictReadTheCheckpointsTestViewsUnlessTold()
    {
        using var dir = new TempDirectory();
        var data = Training.TaskData.Images(dir.Path);
        var run = dir.File("fashion");
        var (code, output) = AttnProcess.Run("train", "--task", "fashion", "--data", data, "--out", run, "--steps", "3",
            "--minutes", "0", "--layers", "1", "--width", "16", "--heads", "2", "--batch", "4", "--eval-interval", "3",
            "--eval-sample", "16");
        Assert.True(code == 0, output);
        Assert.Contains("the final validation and the test read 10 views of each image", output);

        var json = dir.File("eval.json");
        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--data", data, "--json", json);
        Assert.True(code == 0, output);
        Assert.Contains("Fashion-MNIST test set (40 images", output);
        Assert.Contains("10 views of each image", output);
        var figures = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal("shifts", (string?)figures["test_views"]);
        Assert.Equal("test", (string?)figures["split"]);
        // The run's own closing test figure is what eval gives with the checkpoint's views.
        var last = JsonNode.Parse(File.ReadAllLines(Path.Combine(run, "log.jsonl"))[^1])!;
        Assert.Equal((double)last["test_accuracy"]!, (double)figures["accuracy"]!);

        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--data", data, "--test-views", "none",
            "--split", "validation");
        Assert.True(code == 0, output);
        Assert.Contains("Fashion-MNIST validation set (5,000 images", output);
        Assert.Contains("each image once", output);

        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--data", data, "--test-views", "sideways");
        Assert.NotEqual(0, code);
        Assert.Contains("sideways", output);

        var image = dir.File("shirt.pgm");
        File.WriteAllBytes(image, [.. "P5\n28 28\n255\n"u8.ToArray(), .. Enumerable.Range(0, 784).Select(i => (byte)(i % 251))]);
        (code, output) = AttnProcess.Run("predict", "--checkpoint", run, "--input", image);
        Assert.True(code == 0, output);
        Assert.Contains($"{image}: ", output);
        Assert.Equal(4, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }
}
