using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Cli;

/// <summary>An mlm checkpoint pre-trained here (a word vocabulary) is evaluated (on a corpus given with --data) and drawn by `attn eval` and `attn viz`.</summary>
public class MlmCommandTests
{
    [Fact]
    public void AnMlmCheckpointOfWordsEvaluatesAndDrawsItsAttention()
    {
        using var dir = new TempDirectory();
        var corpus = Training.TaskData.Corpus(dir.Path);
        var run = dir.File("mlm");
        var (code, output) = AttnProcess.Run("train", "--task", "mlm", "--data", corpus, "--out", run, "--steps", "3", "--minutes", "0",
            "--layers", "1", "--width", "16", "--heads", "2", "--batch", "4", "--eval-interval", "3");
        Assert.True(code == 0, output);
        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--data", corpus);
        Assert.True(code == 0, output);
        Assert.Contains("masked-word loss", output);
        (code, output) = AttnProcess.Run("viz", "--checkpoint", run, "--text", "The old cat saw a dog.", "--out", dir.File("viz"));
        Assert.True(code == 0, output);
        Assert.True(File.Exists(Path.Combine(dir.File("viz"), "attention.html")), output);
        (code, output) = AttnProcess.Run("viz", "--checkpoint", run, "--image", dir.File("none.png"), "--out", dir.File("viz2"));
        Assert.NotEqual(0, code);
        Assert.Contains("reads --text, not --image", output);
    }
}
