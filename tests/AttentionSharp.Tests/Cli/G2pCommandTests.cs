using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Cli;

/// <summary>
/// `--beam` and `--length-penalty`: a g2p run's final test scores, `attn eval` and `attn predict` decode as told;
/// other tasks refuse them.
/// </summary>
public class G2pCommandTests
{
    /// <summary>A tiny model trained for <paramref name="steps"/> steps, validated once at the end.</summary>
    static string[] Tiny(int steps) =>
        ["--steps", $"{steps}", "--minutes", "0", "--layers", "1", "--width", "16", "--heads", "2", "--batch", "4",
         "--eval-interval", $"{steps}"];

    [Fact]
    public void TheBeamAndLengthPenaltyReachTrainingEvalAndPredict()
    {
        using var dir = new TempDirectory();
        var dictionary = Training.TaskData.Dictionary(dir.Path);
        var run = dir.File("g2p");
        string[] tiny = Tiny(steps: 3);
        var (code, output) = AttnProcess.Run(["train", "--task", "g2p", "--data", dictionary, "--out", run, .. tiny,
            "--beam", "3", "--length-penalty", "0.6", "--min-lr-ratio", "0.25"]);
        Assert.True(code == 0, output);
        Assert.Contains("\"min_lr_ratio\": 0.25", File.ReadAllText(Path.Combine(run, "checkpoint", "trainer_state.json")));
        Assert.Contains("words), greedy: PER", output);
        Assert.Contains("words), beam 3, length penalty 0.6: PER", output);

        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--data", dictionary, "--beam", "2",
            "--length-penalty", "1", "--json", dir.File("eval.json"));
        Assert.True(code == 0, output);
        Assert.Contains("test split", output);
        Assert.Contains("beam 2, length penalty 1: PER", output);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(dir.File("eval.json")))!;
        Assert.Equal((2, 1.0), ((int)json["beam"]!, (double)json["length_penalty"]!));
        Assert.Equal("test", (string)json["split"]!);
        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--data", dictionary, "--beam", "1");
        Assert.True(code == 0, output);
        Assert.Contains("greedy: PER", output);
        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--data", dictionary, "--beam", "1",
            "--split", "validation", "--json", dir.File("validation.json"));
        Assert.True(code == 0, output);
        Assert.Contains("validation split (", output);
        json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(dir.File("validation.json")))!;
        Assert.Equal("validation", (string)json["split"]!);
        var split = AttentionSharp.Data.CmuDict.Load(dictionary).Split();
        Assert.True(split.Validation.Count > 0);
        Assert.Equal(split.Validation.Count, (int)json["words"]!);
        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--data", dictionary);
        Assert.True(code == 0, output);
        Assert.Contains("beam 5: PER", output);

        (code, output) = AttnProcess.Run("predict", "--checkpoint", run, "--input", "cat", "--beam", "2",
            "--length-penalty", "0.5");
        Assert.True(code == 0, output);
        Assert.StartsWith("cat ", output.Trim());

        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--data", dictionary, "--beam", "0");
        Assert.NotEqual(0, code);
        Assert.Contains("--beam must be positive; got 0.", output);
        (code, output) = AttnProcess.Run("predict", "--checkpoint", run, "--input", "cat", "--length-penalty", "-1");
        Assert.NotEqual(0, code);
        Assert.Contains("--length-penalty must be in [0, 10]; got -1.", output);

        var corpus = Training.TaskData.Corpus(dir.Path);
        var pos = dir.File("pos");
        (code, output) = AttnProcess.Run(["train", "--task", "pos", "--data", corpus, "--out", pos, .. tiny, "--beam", "3"]);
        Assert.NotEqual(0, code);
        Assert.Contains("--beam is not used by --task pos", output);
        (code, output) = AttnProcess.Run(["train", "--task", "pos", "--data", corpus, "--out", pos, .. tiny]);
        Assert.True(code == 0, output);
        (code, output) = AttnProcess.Run("eval", "--checkpoint", pos, "--data", corpus, "--length-penalty", "0.6");
        Assert.NotEqual(0, code);
        Assert.Contains("--length-penalty applies to g2p checkpoints", output);
        Assert.Contains("a pos checkpoint", output);
        (code, output) = AttnProcess.Run("eval", "--checkpoint", pos, "--data", corpus, "--split", "validation");
        Assert.NotEqual(0, code);
        Assert.Contains("--split validation scores a language model, a g2p or a fashion checkpoint", output);
        (code, output) = AttnProcess.Run("eval", "--checkpoint", pos, "--data", corpus, "--test-views", "mirror");
        Assert.NotEqual(0, code);
        Assert.Contains($"--test-views applies to fashion checkpoints; '{pos}' is a pos checkpoint.", output);
        (code, output) = AttnProcess.Run("predict", "--checkpoint", pos, "--input", "The cat.", "--beam", "2");
        Assert.NotEqual(0, code);
        Assert.Contains("--beam applies to g2p checkpoints", output);
    }

    /// <summary>
    /// `attn train --task g2p --ensemble 2` trains two members and leaves the ensemble as the run's checkpoint, which
    /// eval, predict and viz read like any other; --resume on the finished run scores it again; other tasks refuse it.
    /// </summary>
    [Fact]
    public void AnEnsembleRunIsACheckpointLikeAnyOther()
    {
        using var dir = new TempDirectory();
        var dictionary = Training.TaskData.Dictionary(dir.Path);
        var run = dir.File("g2p");
        var (code, output) = AttnProcess.Run(["train", "--task", "g2p", "--data", dictionary, "--out", run, .. Tiny(steps: 2),
            "--ensemble", "2"]);
        Assert.True(code == 0, output);
        Assert.Contains("Ensemble: 2 models trained one after another, 2 steps each, seeds 1337–1338", output);
        Assert.True(File.Exists(Path.Combine(run, "member-2", "best", "model.safetensors")), output);
        Assert.Contains("words), beam 5: PER", output);

        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--data", dictionary, "--beam", "2");
        Assert.True(code == 0, output);
        Assert.Contains("beam 2: PER", output);
        // The members' own checkpoints, put together by `attn eval --with`, score as the run's ensemble does.
        var (withCode, withOutput) = AttnProcess.Run("eval", "--checkpoint", Path.Combine(run, "member-1"), "--with",
            Path.Combine(run, "member-2"), "--data", dictionary, "--beam", "2", "--json", dir.File("with.json"));
        Assert.True(withCode == 0, withOutput);
        Assert.Contains("An ensemble of 2: 2 × Transformer encoder–decoder", withOutput);
        static string Figures(string text) => text.Trim()[text.Trim().IndexOf("beam 2: PER", StringComparison.Ordinal)..];
        Assert.Equal(Figures(output), Figures(withOutput));
        Assert.Equal(2, (int)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(dir.File("with.json")))!["models"]!);
        (code, output) = AttnProcess.Run("predict", "--checkpoint", run, "--input", "cat");
        Assert.True(code == 0, output);
        Assert.StartsWith("cat ", output.Trim());
        (code, output) = AttnProcess.Run("viz", "--checkpoint", run, "--text", "cat", "--out", dir.File("viz"));
        Assert.True(code == 0, output);
        Assert.Contains("the first of an ensemble&#39;s 2 models",
            File.ReadAllText(Path.Combine(dir.File("viz"), "attention.html")));

        (code, output) = AttnProcess.Run("train", "--resume", run);
        Assert.True(code == 0, output);
        Assert.Contains("Member 2 of 2: trained already (2 steps", output);
        (code, output) = AttnProcess.Run("train", "--resume", Path.Combine(run, "best"));
        Assert.NotEqual(0, code);
        Assert.Contains("is an ensemble's checkpoint", output);
        (code, output) = AttnProcess.Run("train", "--task", "pos", "--ensemble", "2", "--steps", "1");
        Assert.NotEqual(0, code);
        Assert.Contains("--ensemble is not used by --task pos", output);
        var corpus = Training.TaskData.Corpus(dir.Path);
        var pos = dir.File("pos");
        (code, output) = AttnProcess.Run(["train", "--task", "pos", "--data", corpus, "--out", pos, .. Tiny(steps: 1)]);
        Assert.True(code == 0, output);
        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--with", pos, "--data", dictionary);
        Assert.NotEqual(0, code);
        Assert.Contains($"--with '{pos}' is not a g2p checkpoint", output);
        (code, output) = AttnProcess.Run("eval", "--checkpoint", pos, "--with", run, "--data", corpus);
        Assert.NotEqual(0, code);
        Assert.Contains($"--with applies to g2p checkpoints; '{pos}' is a pos checkpoint.", output);
    }
}
