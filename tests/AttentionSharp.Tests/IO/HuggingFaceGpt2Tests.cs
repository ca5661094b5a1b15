using System.Text.Json.Nodes;
using AttentionSharp.Autograd;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.IO;

/// <summary>GPT-2 in Hugging Face's layout: import equals PyTorch's forward pass, export writes exactly that layout.</summary>
public class HuggingFaceGpt2Tests
{
    static string FixtureDirectory => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf_gpt2");

    [Fact]
    public void AnImportedGpt2GivesPyTorchsLogits()
    {
        var model = HuggingFaceGpt2.Import(FixtureDirectory);
        Assert.Equal((37, 16, 2, 2, 16), (model.Config.VocabSize, model.Config.ContextLength, model.Config.Layers, model.Config.Heads, model.Config.Width));
        var expected = Fixtures.Open("hf_gpt2_expected.safetensors");
        var ids = expected.Ints("ids");
        model.Eval();
        using (GradMode.NoGrad())
        using (var logits = model.Forward(ids, 1, ids.Length))
            TensorAssert.Close(expected.ReadFloat32("logits"), logits.ToArray(), 1e-4, 1e-4, "logits of the imported GPT-2 against PyTorch");
    }

    [Fact]
    public void ExportWritesTheHuggingFaceLayoutTensorForTensor()
    {
        var model = HuggingFaceGpt2.Import(FixtureDirectory);
        using var dir = new TempDirectory();
        HuggingFaceGpt2.Export(model, dir.Path);
        var original = SafetensorsFile.Read(Path.Combine(FixtureDirectory, "model.safetensors"));
        var exported = SafetensorsFile.Read(dir.File("model.safetensors"));
        var names = original.Entries.Select(e => e.Name).Where(n => !n.EndsWith(".attn.bias", StringComparison.Ordinal)).Order().ToArray();
        Assert.Equal(names, exported.Entries.Select(e => e.Name).Order().ToArray());
        foreach (var name in names)
        {
            Assert.Equal(original.GetEntry(name).ShapeToArray(), exported.GetEntry(name).ShapeToArray());
            Assert.Equal(original.ReadFloat32(name), exported.ReadFloat32(name));
        }
        var config = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!;
        Assert.Equal("gpt2", config["model_type"]!.GetValue<string>());
        Assert.Equal("GPT2LMHeadModel", config["architectures"]![0]!.GetValue<string>());
        Assert.Equal(16, config["n_embd"]!.GetValue<int>());
        Assert.Equal("gelu_new", config["activation_function"]!.GetValue<string>());
        // The reference logits beside the export are the model's own, for the PyTorch check script.
        var reference = JsonNode.Parse(File.ReadAllText(dir.File(HuggingFaceGpt2.ReferenceFile)))!;
        Assert.Equal(16, reference["ids"]!.AsArray().Count);
        Assert.Equal(16 * 37, reference["logits"]!.AsArray().Count);
    }

    [Fact]
    public void ExportThenImportGivesBackEveryParameter()
    {
        var model = new Gpt(new GptConfig { VocabSize = 19, ContextLength = 8, Layers = 2, Heads = 2, Width = 8 }, new Generator(3));
        using var dir = new TempDirectory();
        HuggingFaceGpt2.Export(model, dir.Path);
        var back = HuggingFaceGpt2.Import(dir.Path);
        Assert.Equal(model.Config with { Dropout = 0 }, back.Config);
        var theirs = back.StateDict();
        foreach (var (name, p) in model.NamedParameters()) Assert.Equal(p.ToArray(), theirs[name].ToArray());
    }

    [Fact]
    public void WhatGpt2CannotHoldOrWhatIsNotGpt2IsAClearError()
    {
        using var dir = new TempDirectory();
        var rotary = new Gpt(new GptConfig { VocabSize = 11, ContextLength = 8, Layers = 1, Heads = 2, Width = 8, PositionalEncoding = AttentionSharp.Nn.PositionalEncodingKind.Rotary }, new Generator(1));
        Assert.Contains("learned positions only", Assert.Throws<ArgumentException>(() => HuggingFaceGpt2.Export(rotary, dir.Path)).Message);

        Assert.Contains("no config.json", Assert.Throws<CheckpointException>(() => HuggingFaceGpt2.Import(dir.Path)).Message);
        var copy = dir.File("copy");
        Directory.CreateDirectory(copy);
        File.Copy(Path.Combine(FixtureDirectory, "model.safetensors"), Path.Combine(copy, "model.safetensors"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, "config.json")))!.AsObject();

        void WithConfig(Action<JsonObject> edit, string expected)
        {
            var c = config.DeepClone().AsObject();
            edit(c);
            File.WriteAllText(Path.Combine(copy, "config.json"), c.ToJsonString());
            Assert.Contains(expected, Assert.Throws<CheckpointException>(() => HuggingFaceGpt2.Import(copy)).Message);
        }
        WithConfig(c => c["model_type"] = "bert", "only gpt2");
        WithConfig(c => c["activation_function"] = "relu", "activation_function 'relu'");
        WithConfig(c => c["n_embd"] = 32, "has shape");
        WithConfig(c => c["n_layer"] = 3, "lacks");
        WithConfig(c => c["n_layer"] = 1, "is not a GPT-2 parameter");
        // Every field is strict: a wrong JSON type or a value out of range is named, never replaced by GPT2Config's default.
        WithConfig(c => c["n_layer"] = "2", "'n_layer' should be an integer ≥ 1; it is \"2\"");
        WithConfig(c => c["n_layer"] = 2.5, "'n_layer' should be an integer ≥ 1; it is 2.5");
        WithConfig(c => c["n_head"] = 0, "'n_head' should be an integer ≥ 1; it is 0");
        WithConfig(c => c["vocab_size"] = new JsonArray(37), "'vocab_size' should be an integer ≥ 1; it is [37]");
        WithConfig(c => c["n_positions"] = 3_000_000_000L, "'n_positions' should be an integer ≥ 1; it is 3000000000");
        WithConfig(c => c["n_inner"] = "64", "'n_inner' should be an integer ≥ 1; it is \"64\"");
        WithConfig(c => c["layer_norm_epsilon"] = "1e-5", "'layer_norm_epsilon' should be a number > 0; it is \"1e-5\"");
        WithConfig(c => c["resid_pdrop"] = -0.1, "'resid_pdrop' should be a number in [0, 1]; it is -0.1");
        WithConfig(c => c["scale_attn_weights"] = "yes", "'scale_attn_weights' should be true or false; it is \"yes\"");
        WithConfig(c => c["activation_function"] = 3, "'activation_function' should be a string; it is 3");
        WithConfig(c => c["model_type"] = 2, "'model_type' should be a string; it is 2");
        File.WriteAllText(Path.Combine(copy, "config.json"), "{ not json");
        Assert.Contains("not valid JSON", Assert.Throws<CheckpointException>(() => HuggingFaceGpt2.Import(copy)).Message);
    }

    [Fact]
    public void AbsentOrNullOptionalFieldsTakeGpt2ConfigsDefaults()
    {
        using var dir = new TempDirectory();
        File.Copy(Path.Combine(FixtureDirectory, "model.safetensors"), dir.File("model.safetensors"));
        // The fixture's shape, everything else left to GPT2Config: n_inner null, no epsilon, no flags, no dropouts.
        File.WriteAllText(dir.File("config.json"), """
            {"model_type": "gpt2", "vocab_size": 37, "n_positions": 16, "n_embd": 16, "n_layer": 2, "n_head": 2, "n_inner": null}
            """);
        var model = HuggingFaceGpt2.Import(dir.Path);
        Assert.Equal((37, 16, 2, 2, 16), (model.Config.VocabSize, model.Config.ContextLength, model.Config.Layers, model.Config.Heads, model.Config.Width));
    }
}
