using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Tests.Cli;
using AttentionSharp.Tests.Support;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.IO;

/// <summary>
/// Folders as transformers' save_pretrained writes them (tests/fixtures/make_fixtures.py, hf_tokenizer_fixtures): a GPT-2
/// with vocab.json and merges.txt, a BertForMaskedLM sharded over two safetensors files with vocab.txt. Import gives
/// PyTorch's logits on the ids of the reference tokenizers, and attn import makes checkpoints that attn sample, eval and viz
/// read.
/// </summary>
public class HuggingFaceFolderTests(ITestOutputHelper output)
{
    /// <summary>fp32 through two layers with different summation orders, as the other Hugging Face tests.</summary>
    const double Tolerance = 1e-4;

    static string Folder(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    static TempDirectory Copy(string name, params string[] leaveOut)
    {
        var dir = new TempDirectory();
        foreach (var file in Directory.GetFiles(Folder(name)))
            if (!leaveOut.Contains(Path.GetFileName(file))) File.Copy(file, dir.File(Path.GetFileName(file)));
        return dir;
    }

    [Fact]
    public void AGpt2FolderGivesPyTorchsLogitsOnItsTokenizersIds()
    {
        var expected = Fixtures.Open("hf_gpt2_bpe_expected.safetensors");
        var ids = HuggingFaceTokenizer.LoadGpt2(Folder("hf_gpt2_bpe")).Encode(expected.Metadata["text"]);
        Assert.Equal(expected.Ints("ids"), ids);
        var model = HuggingFaceGpt2.Import(Folder("hf_gpt2_bpe"));
        model.Eval();
        using (GradMode.NoGrad())
        using (var logits = model.Forward(ids, 1, ids.Length))
        {
            double max = TensorAssert.Close(expected.ReadFloat32("logits"), logits.ToArray(), Tolerance, Tolerance,
                "logits of the GPT-2 folder");
            output.WriteLine($"GPT-2 folder, {ids.Length} tokens: max |Δ| against PyTorch = {max:E2}");
        }
    }

    [Fact]
    public void AShardedBertFolderGivesPyTorchsLogitsOnItsTokenizersIds()
    {
        Assert.False(File.Exists(Path.Combine(Folder("hf_bert_wordpiece"), HuggingFaceFiles.WeightsFile)));
        var expected = Fixtures.Open("hf_bert_wordpiece_expected.safetensors");
        var tokenizer = HuggingFaceTokenizer.LoadBert(Folder("hf_bert_wordpiece"));
        var ids = tokenizer.Encode(expected.Metadata["text"]);
        Assert.Equal(expected.Ints("ids"), ids);
        var model = HuggingFaceBert.Import(Folder("hf_bert_wordpiece"), out var skipped);
        Assert.Empty(skipped);
        int[] input = [tokenizer.ClsId, .. ids, tokenizer.SepId];
        model.Eval();
        using (GradMode.NoGrad())
        using (var logits = model.MlmLogits(model.Forward(input, 1, input.Length, new int[input.Length])))
        {
            double max = TensorAssert.Close(expected.ReadFloat32("logits"), logits.ToArray(), Tolerance, 0,
                "MLM logits of the sharded BERT folder");
            output.WriteLine($"BERT folder (two shards), {input.Length} tokens: max |Δ| against PyTorch = {max:E2}");
        }
    }

    /// <summary>
    /// `attn predict` on the imported BERT: for each [MASK] of the fixture's text, five tokens whose probabilities under
    /// PyTorch's logits are those printed, with no token left out that PyTorch ranks higher (beyond rounding), and the
    /// text with the first choices in it.
    /// </summary>
    static void PredictFillsInWhatPyTorchWould(string checkpoint)
    {
        var expected = Fixtures.Open("hf_bert_wordpiece_expected.safetensors");
        var tokenizer = HuggingFaceTokenizer.LoadBert(Folder("hf_bert_wordpiece"));
        var (code, text) = AttnProcess.Run("predict", "--checkpoint", checkpoint, "--input", expected.Metadata["masked_text"]);
        Assert.True(code == 0, text);
        var ids = expected.Ints("masked_ids");
        var logits = expected.ReadFloat32("masked_logits");
        int vocab = tokenizer.Tokens.Count;
        var masks = Enumerable.Range(0, ids.Length).Where(i => ids[i] == tokenizer.MaskId).ToArray();
        Assert.Equal(2, masks.Length);
        var filled = ids.ToArray();
        var lines = text.Split('\n', StringSplitOptions.TrimEntries);
        for (int n = 0; n < masks.Length; n++)
        {
            var probabilities = new float[vocab];
            System.Numerics.Tensors.TensorPrimitives.SoftMax(logits.AsSpan(masks[n] * vocab, vocab), probabilities);
            var line = lines.Single(l => l.StartsWith($"[MASK] {n + 1} of 2: ", StringComparison.Ordinal));
            var shown = System.Text.RegularExpressions.Regex.Matches(line, @"(\S+) \((\d+\.\d) %\)")
                .Select(m => (Id: tokenizer.Tokens.ToList().IndexOf(m.Groups[1].Value), Percent: double.Parse(m.Groups[2].Value,
                    System.Globalization.CultureInfo.InvariantCulture))).ToList();
            Assert.Equal(5, shown.Count);
            int[] special = [tokenizer.PadId, tokenizer.ClsId, tokenizer.SepId, tokenizer.MaskId];
            foreach (var (id, percent) in shown)
            {
                Assert.True(id >= 0 && !special.Contains(id), line);
                Assert.Equal(100 * probabilities[id], percent, 0.051);
            }
            float lowest = shown.Min(s => probabilities[s.Id]);
            for (int id = 0; id < vocab; id++)
                if (!special.Contains(id) && !shown.Any(s => s.Id == id))
                    Assert.True(probabilities[id] <= lowest + 1e-5f,
                        $"{tokenizer.Tokens[id]} ({probabilities[id]}) is left out: {line}");
            filled[masks[n]] = shown[0].Id;
        }
        Assert.Contains(tokenizer.Decode(filled.AsSpan(1, filled.Length - 2)), lines);
    }

    [Fact]
    public void AShardIndexNamingWhatIsNotThereIsRefusedByName()
    {
        using (var dir = Copy("hf_bert_wordpiece", "model-00002-of-00002.safetensors"))
            Assert.Contains("in model-00002-of-00002.safetensors, which is not in",
                Assert.Throws<CheckpointException>(() => HuggingFaceBert.Import(dir.Path)).Message);
        using (var dir = Copy("hf_bert_wordpiece"))
        {
            var index = dir.File(HuggingFaceFiles.WeightsIndexFile);
            File.WriteAllText(index, File.ReadAllText(index).Replace("\"bert.pooler", "\"bert.nothing", StringComparison.Ordinal)
                .Replace("\"cls.predictions.bias\"", "\"cls.predictions.biased\"", StringComparison.Ordinal));
            Assert.Contains("puts 'cls.predictions.biased' in",
                Assert.Throws<CheckpointException>(() => HuggingFaceBert.Import(dir.Path)).Message);
        }
    }

    [Fact]
    public void PickledWeightsAloneAreRefusedWithTheConversionCommand()
    {
        using var dir = Copy("hf_gpt2_bpe", HuggingFaceFiles.WeightsFile);
        File.WriteAllBytes(dir.File(HuggingFaceFiles.PickleFile), [0x80, 0x02]);
        var message = Assert.Throws<CheckpointException>(() => HuggingFaceGpt2.Import(dir.Path)).Message;
        Assert.Equal($"'{dir.Path}' holds its weights only as pytorch_model.bin, a Python pickle this library does not read; " +
                     "convert it to safetensors with python -c \"from transformers import AutoModelForCausalLM; " +
                     $"AutoModelForCausalLM.from_pretrained('{dir.Path}')" +
                     ".save_pretrained('OUT', safe_serialization=True)\" and import OUT.", message);
        var (code, cli) = AttnProcess.Run("import", "--hf", dir.Path, "--out", dir.File("run"));
        Assert.NotEqual(0, code);
        Assert.Contains("safe_serialization=True", cli);
    }

    [Fact]
    public void AttnImportMakesCheckpointsThatSampleEvalAndVizRead()
    {
        using var dir = new TempDirectory();
        var run = dir.File("gpt2");
        var (code, text) = AttnProcess.Run("import", "--hf", Folder("hf_gpt2_bpe"), "--out", run);
        Assert.True(code == 0, text);
        var tokenizer = ITokenizer.FromJson(Checkpoint.ReadContents(run).TokenizerJson);
        Assert.IsType<Gpt2BpeTokenizer>(tokenizer);
        Assert.Equal(Fixtures.Open("hf_gpt2_bpe_expected.safetensors").Ints("ids"),
            tokenizer.Encode(Fixtures.Open("hf_gpt2_bpe_expected.safetensors").Metadata["text"]));
        (code, text) = AttnProcess.Run("sample", "--checkpoint", run, "--prompt", "Hello, world", "--tokens", "5",
            "--temperature", "0");
        Assert.True(code == 0, text);
        Assert.Contains("Hello, world", text);
        var data = dir.Write("eval.txt",
            string.Concat(Enumerable.Repeat("Hello world, it's 2024 and the café costs €3.50. ", 20)));
        (code, text) = AttnProcess.Run("eval", "--checkpoint", run, "--data", data, "--batch", "2");
        Assert.True(code == 0, text);
        // A text file has no validation split: asking for one is refused rather than ignored.
        (code, text) = AttnProcess.Run("eval", "--checkpoint", run, "--data", data, "--split", "validation");
        Assert.NotEqual(0, code);
        Assert.Contains("--split validation chooses among the Brown corpus's documents", text);
        (code, text) = AttnProcess.Run("viz", "--checkpoint", run, "--text", "Hello, naïve world", "--out", dir.File("viz"));
        Assert.True(code == 0, text);
        Assert.True(File.Exists(Path.Combine(dir.File("viz"), "attention.html")), text);

        var bert = dir.File("bert");
        (code, text) = AttnProcess.Run("import", "--hf", Folder("hf_bert_wordpiece"), "--out", bert);
        Assert.True(code == 0, text);
        Assert.IsType<WordPieceTokenizer>(ITokenizer.FromJson(Checkpoint.ReadContents(bert).TokenizerJson));
        // The imported BERT scores masked WordPiece tokens of a text.
        var json = dir.File("bert-eval.json");
        (code, text) = AttnProcess.Run("eval", "--checkpoint", bert, "--data", data, "--json", json);
        Assert.True(code == 0, text);
        Assert.Contains("WordPiece tokens masked", text);
        var figures = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(json))!;
        Assert.True((long)figures["masked"]! > 0 && double.IsFinite((double)figures["loss"]!), text);
        (code, text) = AttnProcess.Run("viz", "--checkpoint", bert, "--text", "Hello, naïve world", "--out",
            dir.File("bert-viz"));
        Assert.True(code == 0, text);
        Assert.True(File.Exists(Path.Combine(dir.File("bert-viz"), "attention.html")), text);
        PredictFillsInWhatPyTorchWould(bert);

        using var noVocab = Copy("hf_bert_wordpiece", HuggingFaceTokenizer.VocabTextFile);
        (code, text) = AttnProcess.Run("import", "--hf", noVocab.Path, "--out", dir.File("none"));
        Assert.NotEqual(0, code);
        Assert.Contains("has no vocab.txt", text);
    }
}
