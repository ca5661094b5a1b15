using System.Text.Json.Nodes;
using AttentionSharp.Autograd;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.IO;

/// <summary>BERT in Hugging Face's BertForMaskedLM layout: import equals PyTorch's forward pass, export writes that layout.</summary>
public class HuggingFaceBertTests(ITestOutputHelper output)
{
    /// <summary>fp32 through two post-LN layers with different summation orders; the issue asks for 1e-4.</summary>
    const double Tolerance = 1e-4;

    static string FixtureDirectory => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf_bert");

    static float[] MlmLogits(Bert model, int[] ids, int[] segments)
    {
        model.Eval();
        using (GradMode.NoGrad())
        using (var logits = model.MlmLogits(model.Forward(ids, 1, ids.Length, segments)))
            return logits.ToArray();
    }

    [Fact]
    public void AnImportedBertGivesPyTorchsMlmLogits()
    {
        var model = HuggingFaceBert.Import(FixtureDirectory, out var skipped);
        Assert.Empty(skipped);
        var c = model.Config;
        Assert.Equal((41, 20, 2, 2, 2, 16, 24), (c.VocabSize, c.MaxPositions, c.TypeVocabSize, c.Layers, c.Heads, c.Width, c.IntermediateSize));
        Assert.Equal(1e-12f, c.LayerNormEps);
        var expected = Fixtures.Open("hf_bert_expected.safetensors");
        var ids = expected.Ints("ids");
        // The fixture's attention_mask is ids ≠ pad, which is what our forward pass masks.
        Assert.Equal(ids.Select(i => i == c.PadTokenId ? 0 : 1), expected.Ints("attention_mask"));
        double max = TensorAssert.Close(expected.ReadFloat32("logits"), MlmLogits(model, ids, expected.Ints("token_type_ids")), Tolerance, 0,
            "MLM logits of the imported BERT against PyTorch");
        output.WriteLine($"BertForMaskedLM fixture, {ids.Length} tokens: max |Δ| against PyTorch = {max:E2}");
    }

    [Fact]
    public void ExportWritesTheHuggingFaceLayoutTensorForTensor()
    {
        var model = HuggingFaceBert.Import(FixtureDirectory);
        using var dir = new TempDirectory();
        HuggingFaceBert.Export(model, dir.Path);
        var original = SafetensorsFile.Read(Path.Combine(FixtureDirectory, "model.safetensors"));
        var exported = SafetensorsFile.Read(dir.File("model.safetensors"));
        var names = original.Entries.Select(e => e.Name).Where(n => n != "bert.embeddings.position_ids").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(names, exported.Entries.Select(e => e.Name).Order(StringComparer.Ordinal).ToArray());
        Assert.Contains("bert.encoder.layer.1.attention.self.query.weight", names);
        Assert.Contains("cls.predictions.transform.dense.weight", names);
        foreach (var name in names)
        {
            Assert.Equal(original.GetEntry(name).ShapeToArray(), exported.GetEntry(name).ShapeToArray());
            Assert.Equal(original.ReadFloat32(name), exported.ReadFloat32(name));
        }
        var config = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!;
        var fixture = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, "config.json")))!.AsObject();
        foreach (var key in new[] { "model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                                    "hidden_act", "max_position_embeddings", "type_vocab_size", "pad_token_id", "position_embedding_type" })
            Assert.True(JsonNode.DeepEquals(fixture[key], config[key]), $"config.json's {key}: expected {fixture[key]?.ToJsonString()}, got {config[key]?.ToJsonString()}");
        Assert.Equal("BertForMaskedLM", config["architectures"]![0]!.GetValue<string>());
        Assert.Equal(1e-12, config["layer_norm_eps"]!.GetValue<double>(), 1e-18);
        // The reference beside the export holds the model's own logits for its ids, segments and mask.
        var reference = JsonNode.Parse(File.ReadAllText(dir.File(HuggingFaceFiles.ReferenceFile)))!;
        var ids = reference["ids"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        var segments = reference["token_type_ids"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        Assert.Equal(16, ids.Length);
        Assert.Equal(0, ids[^1]);
        Assert.Contains(1, segments);
        Assert.Equal(ids.Select(i => i == 0 ? 0 : 1), reference["attention_mask"]!.AsArray().Select(n => n!.GetValue<int>()));
        Assert.Equal(MlmLogits(model, ids, segments), reference["logits"]!.AsArray().Select(n => n!.GetValue<float>()).ToArray());
    }

    [Fact]
    public void ExportThenImportGivesIdenticalLogits()
    {
        // The shape the mlm task trains: one segment type, padding id 0.
        var model = new Bert(new BertConfig
        {
            VocabSize = 27, MaxPositions = 12, TypeVocabSize = 1, Layers = 2, Heads = 2, Width = 8, IntermediateSize = 20, Dropout = 0.1f, AttentionDropout = 0.05f,
        }, new Generator(4));
        using var dir = new TempDirectory();
        HuggingFaceBert.Export(model, dir.Path);
        var back = HuggingFaceBert.Import(dir.Path);
        Assert.Equal(model.Config, back.Config);
        var theirs = back.StateDict();
        foreach (var (name, p) in model.NamedParameters()) Assert.Equal(p.ToArray(), theirs[name].ToArray());
        int[] ids = [5, 9, 2, 26, 1, 0, 0];
        Assert.Equal(MlmLogits(model, ids, new int[ids.Length]), MlmLogits(back, ids, new int[ids.Length]));
    }

    [Fact]
    public void WhatBertForMaskedLMCannotHoldIsRefusedByName()
    {
        using var dir = new TempDirectory();
        var small = new BertConfig { VocabSize = 11, MaxPositions = 8, Layers = 1, Heads = 2, Width = 8, IntermediateSize = 8 };
        var tagger = new Bert(small with { NumLabels = 5 }, new Generator(1));
        Assert.Contains("tagging head (BertConfig.NumLabels = 5)", Assert.Throws<ArgumentException>(() => HuggingFaceBert.Export(tagger, dir.Path)).Message);
        var features = new Bert(small with { FeatureVocabSize = 7, FeatureSlots = 2 }, new Generator(1));
        Assert.Contains("spelling-feature embeddings (BertConfig.FeatureVocabSize = 7)", Assert.Throws<ArgumentException>(() => HuggingFaceBert.Export(features, dir.Path)).Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    /// <summary>A copy of the fixture whose tensors <paramref name="edit"/> may change (name → (shape, values)).</summary>
    static string CopyWithTensors(TempDirectory dir, Action<Dictionary<string, (int[] Shape, float[] Values)>> edit)
    {
        var copy = dir.File("copy-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(copy);
        File.Copy(Path.Combine(FixtureDirectory, "config.json"), Path.Combine(copy, "config.json"));
        var file = SafetensorsFile.Read(Path.Combine(FixtureDirectory, "model.safetensors"));
        var tensors = file.Entries.Where(e => e.DType == SafetensorsDType.F32).ToDictionary(e => e.Name, e => (e.ShapeToArray(), e.ToFloat32()));
        edit(tensors);
        var writer = new SafetensorsWriter();
        foreach (var (name, (shape, values)) in tensors) writer.Add(name, shape, values);
        writer.Save(Path.Combine(copy, "model.safetensors"));
        return copy;
    }

    [Fact]
    public void OlderFilesWithTiedTensorsGammaBetaAndTheNextSentenceHeadImport()
    {
        using var dir = new TempDirectory();
        var expected = Fixtures.Open("hf_bert_expected.safetensors");
        var ids = expected.Ints("ids");
        var segments = expected.Ints("token_type_ids");
        // Files converted from older checkpoints store the decoder and the BertForPreTraining heads too, and may name
        // LayerNorm's parameters gamma and beta.
        var full = CopyWithTensors(dir, t =>
        {
            foreach (var name in t.Keys.Where(n => n.Contains(".LayerNorm.", StringComparison.Ordinal)).ToList())
            {
                t[name.Replace(".weight", ".gamma", StringComparison.Ordinal).Replace(".bias", ".beta", StringComparison.Ordinal)] = t[name];
                t.Remove(name);
            }
            t["cls.predictions.decoder.weight"] = t["bert.embeddings.word_embeddings.weight"];
            t["cls.predictions.decoder.bias"] = t["cls.predictions.bias"];
            t["bert.pooler.dense.weight"] = ([16, 16], new float[256]);
            t["cls.seq_relationship.bias"] = ([2], [0.5f, -0.5f]);
        });
        var model = HuggingFaceBert.Import(full, out var skipped);
        Assert.Equal(new[] { "bert.pooler.dense.weight", "cls.seq_relationship.bias" }, skipped.Order(StringComparer.Ordinal));
        TensorAssert.Close(expected.ReadFloat32("logits"), MlmLogits(model, ids, segments), Tolerance, 0, "logits with the tied tensors stored");
        // A decoder that is not the word embeddings would be a different model.
        var untied = CopyWithTensors(dir, t =>
        {
            var (shape, values) = t["bert.embeddings.word_embeddings.weight"];
            t["cls.predictions.decoder.weight"] = (shape, values.Select(v => v + 1).ToArray());
        });
        Assert.Contains("'cls.predictions.decoder.weight' differs from 'bert.embeddings.word_embeddings.weight'",
            Assert.Throws<CheckpointException>(() => HuggingFaceBert.Import(untied)).Message);
        // Only the decoder's bias, as some files have it: it serves as cls.predictions.bias.
        var decoderBias = CopyWithTensors(dir, t => { t["cls.predictions.decoder.bias"] = t["cls.predictions.bias"]; t.Remove("cls.predictions.bias"); });
        TensorAssert.Close(expected.ReadFloat32("logits"), MlmLogits(HuggingFaceBert.Import(decoderBias), ids, segments), Tolerance, 0, "logits with the decoder's bias only");
    }

    [Fact]
    public void UnknownMissingOrMisshapenTensorsAreNamed()
    {
        using var dir = new TempDirectory();
        string Error(Action<Dictionary<string, (int[] Shape, float[] Values)>> edit) =>
            Assert.Throws<CheckpointException>(() => HuggingFaceBert.Import(CopyWithTensors(dir, edit))).Message;
        Assert.Contains("lacks 1 BertForMaskedLM tensor: 'bert.encoder.layer.1.output.dense.bias'", Error(t => t.Remove("bert.encoder.layer.1.output.dense.bias")));
        var unknown = Error(t => t["bert.encoder.layer.0.attention.self.qkv.weight"] = ([48, 16], new float[768]));
        Assert.Contains("'bert.encoder.layer.0.attention.self.qkv.weight' is not a BertForMaskedLM parameter", unknown);
        Assert.Contains("nearest BertForMaskedLM name is 'bert.encoder.layer.0.attention.self.", unknown);
        Assert.Contains("'bert.encoder.layer.2.output.dense.bias' is not a BertForMaskedLM parameter", Error(t => t["bert.encoder.layer.2.output.dense.bias"] = ([16], new float[16])));
        Assert.Contains("'cls.predictions.transform.dense.weight' has shape [16, 8]; the config asks for [16, 16]",
            Error(t => t["cls.predictions.transform.dense.weight"] = ([16, 8], new float[128])));
    }

    [Fact]
    public void ConfigFieldsAreReadStrictly()
    {
        using var dir = new TempDirectory();
        var copy = CopyWithTensors(dir, _ => { });
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, "config.json")))!.AsObject();
        string Error(Action<JsonObject> edit)
        {
            var c = config.DeepClone().AsObject();
            edit(c);
            File.WriteAllText(Path.Combine(copy, "config.json"), c.ToJsonString());
            return Assert.Throws<CheckpointException>(() => HuggingFaceBert.Import(copy)).Message;
        }
        Assert.Contains("'num_hidden_layers' should be an integer ≥ 1; it is \"2\"", Error(c => c["num_hidden_layers"] = "2"));
        Assert.Contains("'num_attention_heads' should be an integer ≥ 1; it is 2.5", Error(c => c["num_attention_heads"] = 2.5));
        Assert.Contains("'type_vocab_size' should be an integer ≥ 1; it is 0", Error(c => c["type_vocab_size"] = 0));
        Assert.Contains("'hidden_size' is missing", Error(c => c.Remove("hidden_size")));
        Assert.Contains("'layer_norm_eps' should be a number in (0, 1]; it is \"1e-12\"", Error(c => c["layer_norm_eps"] = "1e-12"));
        Assert.Contains("'hidden_dropout_prob' should be a number in [0, 1]; it is 1.5", Error(c => c["hidden_dropout_prob"] = 1.5));
        Assert.Contains("'is_decoder' should be true or false; it is 1", Error(c => c["is_decoder"] = 1));
        Assert.Contains("hidden_act 'gelu_new' is not supported", Error(c => c["hidden_act"] = "gelu_new"));
        Assert.Contains("position_embedding_type 'relative_key' is not supported", Error(c => c["position_embedding_type"] = "relative_key"));
        Assert.Contains("is_decoder = true is not supported", Error(c => c["is_decoder"] = true));
        Assert.Contains("model_type is 'gpt2'; only bert", Error(c => c["model_type"] = "gpt2"));
        Assert.Contains("BertConfig.PadTokenId (41)", Error(c => c["pad_token_id"] = 41));
        // Absent optional fields take BertConfig's defaults; null is absent.
        var c = config.DeepClone().AsObject();
        c.Remove("layer_norm_eps");
        c["hidden_dropout_prob"] = null;
        File.WriteAllText(Path.Combine(copy, "config.json"), c.ToJsonString());
        var model = HuggingFaceBert.Import(copy);
        Assert.Equal((1e-12f, 0.1f), (model.Config.LayerNormEps, model.Config.Dropout));
    }
}
