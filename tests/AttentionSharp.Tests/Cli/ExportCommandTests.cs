using System.Text.Json.Nodes;
using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.IO.Onnx;
using AttentionSharp.Models;
using AttentionSharp.Tests.IO;
using AttentionSharp.Tests.Support;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace AttentionSharp.Tests.Cli;

/// <summary>
/// attn export and attn import on real checkpoints: a GPT written by attn train through ONNX Runtime; an mlm (BERT)
/// checkpoint to Hugging Face's layout and back, and to ONNX with external data.
/// </summary>
public class ExportCommandTests
{
    [Fact]
    public void ExportOnnxFromATrainedCheckpointRunsInOnnxRuntime()
    {
        using var dir = new TempDirectory();
        var data = dir.Write("data.txt", string.Concat(Enumerable.Repeat("a small text for a small model. ", 40)));
        var run = Path.Combine(dir.Path, "run");
        var (code, output) = AttnProcess.Run("train", "--data", data, "--out", run, "--steps", "4", "--minutes", "0", "--layers", "1",
            "--heads", "2", "--width", "16", "--context", "16", "--batch", "2", "--tokenizer", "char");
        Assert.True(code == 0, output);
        var onnx = dir.File("model.onnx");
        (code, output) = AttnProcess.Run("export", "--checkpoint", run, "--onnx", onnx);
        Assert.True(code == 0, output);
        Assert.Contains("input 'input_ids'", output);

        var contents = Checkpoint.ReadContents(run);
        var model = new Gpt(GptConfig.FromJson(contents.Config), new Generator(0));
        Checkpoint.LoadWeights(run, model);
        model.Eval();
        var ids = Enumerable.Range(0, 10).Select(i => (3 * i + 1) % model.Config.VocabSize).ToArray();
        float[] ours;
        using (GradMode.NoGrad()) ours = model.Forward(ids, 1, ids.Length).ToArray();
        using var session = new InferenceSession(onnx);
        TensorAssert.Close(ours, GptOnnxTests.Run(session, ids, 1, ids.Length).Values, 1e-4, 0, "logits of the exported checkpoint");
    }

    [Fact]
    public void ExportNeedsExactlyOneTarget()
    {
        var (code, output) = AttnProcess.Run("export", "--checkpoint", "nowhere");
        Assert.Equal(2, code);
        Assert.Contains("exactly one of --hf OUTDIR or --onnx FILE", output);
    }

    /// <summary>An mlm checkpoint as attn train --task mlm writes it (config.json with the task and the network, the word vocabulary).</summary>
    static (Bert Model, WordVocabulary Vocabulary) WriteMlmCheckpoint(string run)
    {
        var words = "the cat sat on the mat and the dog sat on the log while a bird sang".Split(' ');
        var vocabulary = WordVocabulary.Build(words, 1);
        var config = new BertConfig
        {
            VocabSize = vocabulary.Count, MaxPositions = 128, TypeVocabSize = 1, Layers = 1, Heads = 2, Width = 8, IntermediateSize = 16,
            PadTokenId = WordVocabulary.Pad,
        };
        var model = new Bert(config, new Generator(21));
        var json = new JsonObject { ["task"] = "mlm", ["model"] = "transformer", ["max_length"] = 128, ["network"] = config.ToJson() };
        Checkpoint.Save(Path.Combine(run, Checkpoint.LatestSubdirectory), model, new Checkpoint.Contents(json, vocabulary.ToJson(), new JsonObject { ["step"] = 0 }, null));
        model.Eval();
        return (model, vocabulary);
    }

    static float[] MlmLogits(Bert model, int[] ids)
    {
        using (GradMode.NoGrad())
        using (var logits = model.MlmLogits(model.Forward(ids, 1, ids.Length))) return logits.ToArray();
    }

    [Fact]
    public void AnMlmCheckpointGoesToHuggingFacesLayoutAndBack()
    {
        using var dir = new TempDirectory();
        var run = dir.File("mlm");
        var (model, vocabulary) = WriteMlmCheckpoint(run);
        var hf = dir.File("hf");
        var (code, output) = AttnProcess.Run("export", "--checkpoint", run, "--hf", hf);
        Assert.True(code == 0, output);
        Assert.Contains("BertForMaskedLM with 1 layers", output);
        foreach (var f in new[] { "config.json", "model.safetensors", "attn_tokenizer.json", HuggingFaceFiles.ReferenceFile })
            Assert.True(File.Exists(Path.Combine(hf, f)), $"attn export --hf wrote no {f}");
        Assert.Equal("bert", HuggingFaceFiles.ModelType(hf));
        Assert.True(SafetensorsFile.Read(Path.Combine(hf, "model.safetensors")).Contains("bert.encoder.layer.0.attention.self.query.weight"));

        var back = dir.File("back");
        (code, output) = AttnProcess.Run("import", "--hf", hf, "--out", back);
        Assert.True(code == 0, output);
        Assert.Contains("an mlm checkpoint", output);
        var contents = Checkpoint.ReadContents(back);
        Assert.Equal("mlm", contents.Config["task"]!.GetValue<string>());
        Assert.True(WordVocabulary.FromJson(contents.TokenizerJson, "the imported vocabulary").SameAs(vocabulary));
        var imported = new Bert(BertConfig.FromJson(contents.Config["network"]!.AsObject()), new Generator(0));
        Checkpoint.LoadWeights(back, imported);
        imported.Eval();
        Assert.Equal(model.Config, imported.Config);
        int[] ids = [3, 7, 2, 5, 9, 1, 0];
        Assert.Equal(MlmLogits(model, ids), MlmLogits(imported, ids));
    }

    [Fact]
    public void AnMlmCheckpointGoesToOnnxWithExternalData()
    {
        using var dir = new TempDirectory();
        var run = dir.File("mlm");
        var (model, _) = WriteMlmCheckpoint(run);
        var onnx = dir.File("bert.onnx");
        var (code, output) = AttnProcess.Run("export", "--checkpoint", run, "--onnx", onnx, "--external-data");
        Assert.True(code == 0, output);
        var sidecar = OnnxGraph.ExternalDataPath(onnx);
        Assert.Contains($"its external data {sidecar}", output);
        // Without the option a model this small stays in one file; with it, the .onnx lost at least the position table (128 × 8 floats).
        var inline = dir.File("inline.onnx");
        (code, output) = AttnProcess.Run("export", "--checkpoint", run, "--onnx", inline);
        Assert.True(code == 0, output);
        Assert.DoesNotContain("external data", output);
        Assert.False(File.Exists(OnnxGraph.ExternalDataPath(inline)));
        Assert.True(new FileInfo(inline).Length >= new FileInfo(onnx).Length + 128 * 8 * 4, "the weights should be in the sidecar, not in the .onnx");
        int[] ids = [3, 7, 2, 5, 9, 1, 0];
        using var session = new InferenceSession(onnx);
        using var results = session.Run([
            NamedOnnxValue.CreateFromTensor(BertOnnx.InputName, new DenseTensor<long>(ids.Select(i => (long)i).ToArray(), [1, ids.Length])),
            NamedOnnxValue.CreateFromTensor(BertOnnx.SegmentInputName, new DenseTensor<long>(new long[ids.Length], [1, ids.Length])),
        ]);
        TensorAssert.Close(MlmLogits(model, ids), results.Single().AsTensor<float>().ToArray(), 1e-4, 0, "ONNX Runtime logits of the mlm checkpoint with external data");
    }

    [Fact]
    public void WhatExportAndImportCannotTakeIsNamed()
    {
        using var dir = new TempDirectory();
        dir.Write("pos/config.json", """{"task": "pos", "model": "transformer"}""");
        var (code, output) = AttnProcess.Run("export", "--checkpoint", dir.File("pos"), "--hf", dir.File("out"));
        Assert.Equal(2, code);
        Assert.Contains("is a pos tagger: its tagging head and spelling features have no place in BertForMaskedLM", output);

        dir.Write("t5/config.json", """{"model_type": "t5"}""");
        dir.Write("t5/model.safetensors", "");
        dir.Write("t5/attn_tokenizer.json", "{}");
        (code, output) = AttnProcess.Run("import", "--hf", dir.File("t5"), "--out", dir.File("back"));
        Assert.Equal(2, code);
        Assert.Contains("model_type is 't5'; attn import reads gpt2 (GPT2LMHeadModel) and bert (BertForMaskedLM)", output);

        // A BERT whose position table is shorter than the sentences mlm checkpoints read cannot become one.
        var short_ = new Bert(new BertConfig { VocabSize = 18, MaxPositions = 16, TypeVocabSize = 1, Layers = 1, Heads = 2, Width = 8, IntermediateSize = 8 }, new Generator(2));
        HuggingFaceBert.Export(short_, dir.File("short"));
        File.WriteAllText(Path.Combine(dir.File("short"), "attn_tokenizer.json"), WordVocabulary.Build("a b c d e f g h i j k l m n o".Split(' '), 1).ToJson());
        (code, output) = AttnProcess.Run("import", "--hf", dir.File("short"), "--out", dir.File("back"));
        Assert.Equal(2, code);
        Assert.Contains("max_position_embeddings is 16, but mlm checkpoints read sentences of up to 128 words", output);
    }
}
