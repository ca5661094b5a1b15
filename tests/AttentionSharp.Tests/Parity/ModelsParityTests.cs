using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.Parity;

/// <summary>
/// Bert, EncoderDecoder and VisionTransformer against the same models written in PyTorch with the same weights
/// (tests/fixtures/models.safetensors, made by models_fixture): logits, losses, attention weights and the gradient of
/// every parameter. The largest difference per tensor is printed.
/// </summary>
public class ModelsParityTests(ITestOutputHelper output)
{
    // Two or four layers of fp32 attention, LayerNorm, GELU/ReLU and a tied output projection, each op rounding in
    // another summation order than PyTorch's (blocked GEMM, vectorised exp/erf). The differences seen are about 1e-6;
    // the bounds leave a factor of ten for other CPUs' SIMD widths and stay far below any real error (a wrong mask,
    // transpose or scale moves values by ~1e-1). BERT's LayerNorm ε = 1e-12 divides by nearly the raw standard
    // deviation, so its gradients get the same bound relative to their size.
    const double LogitsAbs = 2e-5, LogitsRel = 1e-5;
    const double LossAbs = 1e-5;
    const double GradientAbs = 1e-5, GradientRel = 1e-3;

    static readonly Lazy<SafetensorsFile> File = new(() => Fixtures.Open("models.safetensors"));

    static readonly BertConfig BertShape = new()
    {
        VocabSize = 30, MaxPositions = 16, TypeVocabSize = 2, Layers = 2, Heads = 2, Width = 16, IntermediateSize = 32,
        Dropout = 0f, AttentionDropout = 0f, PadTokenId = 0, NumLabels = 5,
    };

#pragma warning disable format
    static readonly EncoderDecoderConfig Seq2SeqShape = EncoderDecoderConfig.Small(20) with
    {
        Width = 16, Heads = 2, FeedForwardWidth = 32, Dropout = 0f, LabelSmoothing = 0.1f,
    };
#pragma warning restore format

    static readonly VisionTransformerConfig VitShape = new()
    {
        ImageSize = 8, PatchSize = 4, Channels = 3, Classes = 3, Layers = 2, Heads = 2, Width = 16, MlpWidth = 32,
    };

    [Fact]
    public void BertMlmAndTaggingMatchPyTorch()
    {
        var file = File.Value;
        var model = new Bert(BertShape, new Generator(0));
        Load(model, "bert");
        var ids = file.Ints("bert.ids");
        var hidden = model.Forward(ids, 2, 8, file.Ints("bert.segments"));
        var mlmLogits = model.MlmLogits(hidden);
        var tagLogits = model.TagLogits(hidden);
        var mlmLoss = model.MlmLoss(mlmLogits, file.Ints("bert.labels"));
        var tagLoss = model.TagLoss(tagLogits, file.Ints("bert.tags"));
        Compare(file.Tensor("bert.mlm_logits"), mlmLogits, LogitsAbs, LogitsRel, "bert.mlm_logits");
        Compare(file.Tensor("bert.tag_logits"), tagLogits, LogitsAbs, LogitsRel, "bert.tag_logits");
        Compare(file.Tensor("bert.mlm_loss"), mlmLoss.Reshape(1), LossAbs, 0, "bert.mlm_loss");
        Compare(file.Tensor("bert.tag_loss"), tagLoss.Reshape(1), LossAbs, 0, "bert.tag_loss");
        (mlmLoss + tagLoss).Backward();
        Assert.Equal(5 + 2 * 16 + 5 + 2, CompareGradients(model, "bert"));
    }

    [Fact]
    public void EncoderDecoderMatchesPyTorch()
    {
        var file = File.Value;
        var model = new EncoderDecoder(Seq2SeqShape, new Generator(0));
        Load(model, "seq2seq");
        var logits = model.Forward(file.Ints("seq2seq.src"), 7, file.Ints("seq2seq.tgt_in"), 6, 2);
        var loss = model.Loss(logits, file.Ints("seq2seq.tgt_out"));
        Compare(file.Tensor("seq2seq.logits"), logits, LogitsAbs, LogitsRel, "seq2seq.logits");
        Compare(file.Tensor("seq2seq.loss"), loss.Reshape(1), LossAbs, 0, "seq2seq.loss (label-smoothed)");
        loss.Backward();
        Assert.Equal(1 + 2 * 12 + 2 * 18, CompareGradients(model, "seq2seq"));
    }

    [Fact]
    public void VisionTransformerWithConvPatchWeightsMatchesPyTorch()
    {
        var file = File.Value;
        var model = new VisionTransformer(VitShape, new Generator(0));
        // torch's Conv2d weight (C, Ch, P, P) is the patch embedding (C, Ch·P·P) by reshape.
        Load(model, "vit", new() { ["patch_embed.weight"] = file.Tensor("vit.init.conv.weight").Reshape(16, 3 * 4 * 4) });
        var images = file.Tensor("vit.images");
        var classes = file.Ints("vit.classes");
        var (logits, attention) = model.ForwardWithAttention(images);
        Compare(file.Tensor("vit.logits"), logits, LogitsAbs, LogitsRel, "vit.logits");
        for (int i = 0; i < attention.Count; i++)
            Compare(file.Tensor($"vit.attention.{i}"), attention[i], LogitsAbs, LogitsRel, $"vit.attention.{i}");
        var loss = model.Loss(model.Forward(images), classes);
        Compare(file.Tensor("vit.loss"), loss.Reshape(1), LossAbs, 0, "vit.loss");
        loss.Backward();
        var convGrad = file.Tensor("vit.grad.conv.weight").Reshape(16, 48);
        Compare(convGrad, model.PatchEmbedding.Weight.Grad!, GradientAbs, GradientRel, "vit.grad.conv.weight (reshaped)");
        Assert.Equal(3 + 2 * 12 + 4, CompareGradients(model, "vit"));   // all but patch_embed.weight, compared above
    }

    [Fact]
    public void VisionTransformerWithConvolutionalStemMatchesPyTorch()
    {
        var file = File.Value;
        var config = new VisionTransformerConfig
        {
            ImageSize = 8, PatchSize = 1, Channels = 1, Classes = 3, Layers = 2, Heads = 2, Width = 16, MlpWidth = 32,
            StemLayers = 2, StemChannels = 6, StemStride = 2,
        };
        var model = new VisionTransformer(config, new Generator(0));
        Assert.Equal(4, config.Patches);
        Load(model, "vit_stem");
        var logits = model.Forward(file.Tensor("vit_stem.images"));
        Compare(file.Tensor("vit_stem.logits"), logits, LogitsAbs, LogitsRel, "vit_stem.logits");
        var loss = model.Loss(logits, file.Ints("vit_stem.classes"));
        Compare(file.Tensor("vit_stem.loss"), loss.Reshape(1), LossAbs, 0, "vit_stem.loss");
        loss.Backward();
        Assert.Equal(2 * 4 + 4 + 2 * 12 + 4, CompareGradients(model, "vit_stem"));   // every parameter
    }

    /// <summary>Copies "&lt;prefix&gt;.init.&lt;name&gt;" into every parameter, or the override given for it.</summary>
    static void Load(Module model, string prefix, Dictionary<string, Tensor>? overrides = null)
    {
        var state = model.StateDict().Keys.ToDictionary(k => k, k => overrides?.GetValueOrDefault(k) ?? File.Value.Tensor($"{prefix}.init.{k}"));
        model.LoadStateDict(state);
    }

    /// <summary>Compares the gradient of every parameter that the fixture holds under our name; returns how many.</summary>
    int CompareGradients(Module model, string prefix)
    {
        int count = 0;
        foreach (var (name, p) in model.NamedParameters())
        {
            if (!File.Value.Contains($"{prefix}.grad.{name}")) continue;
            Assert.NotNull(p.Grad);
            Compare(File.Value.Tensor($"{prefix}.grad.{name}"), p.Grad!, GradientAbs, GradientRel, $"{prefix}.grad.{name}");
            count++;
        }
        return count;
    }

    void Compare(Tensor expected, Tensor actual, double atol, double rtol, string what)
    {
        Assert.Equal(expected.Shape.ToArray(), actual.Shape.ToArray());
        double d = TensorAssert.Close(expected.ToArray(), actual.ToArray(), atol, rtol, what);
        output.WriteLine($"{what}: max |Δ| = {d:G3}");
    }
}
