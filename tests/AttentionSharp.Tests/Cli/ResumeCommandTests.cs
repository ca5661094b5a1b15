using System.Text.Json.Nodes;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Cli;

/// <summary>`attn train --resume DIR` alone continues the run in DIR, with the data and settings it was started with.</summary>
public class ResumeCommandTests
{
    [Fact]
    public void ResumeAloneContinuesTheRunInItsDirectoryWithItsOwnSettings()
    {
        using var dir = new TempDirectory();
        var data = dir.Write("text.txt", Training.TaskData.Text());
        var run = dir.File("runs/x");
        var (code, output) = AttnProcess.Run("train", "--data", data, "--out", run, "--steps", "4", "--minutes", "0", "--layers", "1",
            "--width", "16", "--heads", "2", "--context", "16", "--batch", "2", "--eval-interval", "2", "--lr", "0.002", "--seed", "5");
        Assert.True(code == 0, output);
        (code, output) = AttnProcess.Run("train", "--resume", run, "--steps", "6");
        Assert.True(code == 0, output);
        Assert.Contains($"Data: {data}", output);                  // its text, not the Brown corpus
        Assert.Contains("Training: 6 steps of 2 sequences of 16 tokens; lr 0.002", output);
        var steps = File.ReadLines(Path.Combine(run, "log.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(r => r["loss"] is not null).Select(r => (int)r["step"]!).ToArray();
        Assert.Equal([1, 2, 3, 4, 5, 6], steps);
        Assert.False(Directory.Exists(Path.Combine(Path.GetDirectoryName(run)!, "gpt")));   // nothing written elsewhere
    }
}
