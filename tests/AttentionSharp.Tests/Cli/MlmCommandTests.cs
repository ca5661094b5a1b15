using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.Generation;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Cli;

/// <summary>
/// An mlm checkpoint pre-trained here (a word vocabulary) is evaluated (on a corpus given with --data), fills in masked
/// words and is drawn by `attn eval`, `attn predict` and `attn viz`.
/// </summary>
public class MlmCommandTests
{
    [Fact]
    public void AnMlmCheckpointOfWordsEvaluatesFillsInWordsAndDrawsItsAttention()
    {
        using var dir = new TempDirectory();
        var corpus = Training.TaskData.Corpus(dir.Path);
        var run = dir.File("mlm");
        var (code, output) = AttnProcess.Run("train", "--task", "mlm", "--data", corpus, "--out", run, "--steps", "3",
            "--minutes", "0", "--layers", "1", "--width", "16", "--heads", "2", "--batch", "4", "--eval-interval", "3");
        Assert.True(code == 0, output);
        (code, output) = AttnProcess.Run("eval", "--checkpoint", run, "--data", corpus);
        Assert.True(code == 0, output);
        Assert.Contains("masked-word loss", output);
        // attn predict fills in each [MASK] (any case) with the model's most probable words, as the library does.
        (code, output) = AttnProcess.Run("predict", "--checkpoint", run, "--input", "The old [MASK] saw a [mask] zyzzyva .");
        Assert.True(code == 0, output);
        var contents = Checkpoint.ReadContents(run);
        var model = new Bert(BertConfig.FromJson((JsonObject)contents.Config["network"]!), new Generator(0));
        Checkpoint.LoadWeights(run, model);
        var vocabulary = WordVocabulary.FromJson(contents.TokenizerJson, "test");
        int[] ids = [.. new[] { "the", "old", "", "saw", "a", "", "zyzzyva", "." }
            .Select(w => w.Length == 0 ? WordVocabulary.Mask : vocabulary.Id(w))];
        var fills = MaskFilling.Fill(model, ids, [2, 5], 5, id => id > WordVocabulary.Mask);
        var lines = output.Split('\n', StringSplitOptions.TrimEntries);
        for (int n = 0; n < 2; n++)
        {
            var shown = lines.Single(l => l.StartsWith($"[MASK] {n + 1} of 2: ", StringComparison.Ordinal));
            Assert.Equal(string.Join("  ", fills[n].Select(f => $"{vocabulary.Words[f.Id]} ({100 * f.Probability:F1} %)")),
                shown[$"[MASK] {n + 1} of 2: ".Length..]);
        }
        Assert.Contains($"The old {vocabulary.Words[fills[0][0].Id]} saw a {vocabulary.Words[fills[1][0].Id]} zyzzyva .", lines);
        Assert.Contains("Not in the vocabulary, read as <unk>: zyzzyva", output);
        (code, output) = AttnProcess.Run("predict", "--checkpoint", run, "--input", "The old cat saw a dog.");
        Assert.NotEqual(0, code);
        Assert.Contains("--input holds no [MASK]", output);
        (code, output) = AttnProcess.Run("predict", "--checkpoint", run, "--input",
            string.Join(" ", Enumerable.Repeat("the [MASK]", 80)));
        Assert.NotEqual(0, code);
        Assert.Contains("--input is 160 tokens long but the model reads at most", output);
        // The preset reads rotary positions, which Hugging Face's BertForMaskedLM and the ONNX export cannot hold.
        Assert.Equal("rotary", (string)Checkpoint.ReadContents(run).Config["network"]!["position_embedding_type"]!);
        (code, output) = AttnProcess.Run("export", "--checkpoint", run, "--hf", dir.File("hf"));
        Assert.NotEqual(0, code);
        Assert.Contains("attn train --task mlm --positions learned trains one it can", output);
        (code, output) = AttnProcess.Run("export", "--checkpoint", run, "--onnx", dir.File("mlm.onnx"));
        Assert.NotEqual(0, code);
        Assert.Contains("attn train --task mlm --positions learned trains one it covers", output);
        (code, output) = AttnProcess.Run("viz", "--checkpoint", run, "--text", "The old cat saw a dog.", "--out",
            dir.File("viz"));
        Assert.True(code == 0, output);
        Assert.True(File.Exists(Path.Combine(dir.File("viz"), "attention.html")), output);
        (code, output) = AttnProcess.Run("viz", "--checkpoint", run, "--image", dir.File("none.png"), "--out", dir.File("viz2"));
        Assert.NotEqual(0, code);
        Assert.Contains("reads --text, not --image", output);
    }
}
