using System.Text.Json.Nodes;
using AttentionSharp.Models;
using AttentionSharp.Training;

namespace AttentionSharp.Tests.Models;

/// <summary>The Vision Transformer: the patch layout against a direct convolution, attention maps, learning, clear errors.</summary>
public class VisionTransformerTests
{
    static readonly VisionTransformerConfig Shape = new()
    {
        ImageSize = 8, PatchSize = 4, Channels = 2, Classes = 2, Layers = 2, Heads = 2, Width = 16, MlpWidth = 32,
    };

    [Fact]
    public void ThePatchEmbeddingIsAStrideEqualToKernelConvolution()
    {
        // out[b, n = r·(W/P) + c, d] = bias[d] + Σ_{ch,i,j} weight[d, ch, i, j] · image[b, ch, r·P + i, c·P + j]
        var model = new VisionTransformer(Shape, new Generator(1));
        using var images = Tensor.Randn(new Generator(2), 3, 2, 8, 8);
        var ours = model.PatchEmbedding.Forward(model.Patchify(images)).ToArray();     // (B, N, C)
        var w = model.PatchEmbedding.Weight.ToArray(); var bias = model.PatchEmbedding.Bias!.ToArray(); var x = images.ToArray();
        var expected = new float[ours.Length];
        for (int b = 0; b < 3; b++)
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 2; c++)
                    for (int d = 0; d < 16; d++)
                    {
                        double sum = bias[d];
                        for (int ch = 0; ch < 2; ch++)
                            for (int i = 0; i < 4; i++)
                                for (int j = 0; j < 4; j++)
                                    sum += w[d * 32 + (ch * 16 + i * 4 + j)] * x[((b * 2 + ch) * 8 + r * 4 + i) * 8 + c * 4 + j];
                        expected[((b * 4) + r * 2 + c) * 16 + d] = (float)sum;
                    }
        Support.TensorAssert.Close(expected, ours, 1e-5, 1e-5, "patch embedding against a direct convolution");
    }

    [Fact]
    public void EveryLayersAttentionIsAvailableAndTheLogitsAgreeWithForward()
    {
        var model = new VisionTransformer(Shape, new Generator(1));
        using var images = Tensor.Randn(new Generator(3), 2, 2, 8, 8);
        var (logits, attention) = model.ForwardWithAttention(images);
        Support.TensorAssert.Close(model.Forward(images), logits, 1e-6, 0, "logits");
        Assert.Equal(2, attention.Count);
        foreach (var weights in attention)
        {
            Assert.Equal([2, 2, 5, 5], weights.Shape.ToArray());                         // (B, NH, N + 1, N + 1)
            var w = weights.ToArray();
            for (int row = 0; row < w.Length / 5; row++)
                Assert.Equal(1.0, w.AsSpan(row * 5, 5).ToArray().Sum(v => (double)v), 5);
        }
        var dropped = new VisionTransformer(Shape with { Dropout = 0.1f }, new Generator(1));
        var e = Assert.Throws<InvalidOperationException>(() => dropped.ForwardWithAttention(images));
        Assert.Contains("Eval()", e.Message);
        dropped.Eval();
        Assert.Equal(2, dropped.ForwardWithAttention(images).Attention.Count);
    }

    [Fact]
    public void AFewStepsOfTrainingLowerTheLossOnTwoSyntheticClasses()
    {
        // Class 0: horizontal stripes; class 1: vertical stripes; both under noise.
        const int batch = 16;
        var model = new VisionTransformer(Shape, new Generator(4));
        var optimizer = new AdamW(model.Parameters(), lr: 3e-3f, weightDecay: 0f);
        var rng = new Generator(5);
        var losses = new List<float>();
        for (int step = 0; step < 30; step++)
        {
            var pixels = new float[batch * 2 * 64]; var labels = new int[batch];
            for (int b = 0; b < batch; b++)
            {
                labels[b] = rng.NextInt(2);
                for (int ch = 0; ch < 2; ch++)
                    for (int y = 0; y < 8; y++)
                        for (int x = 0; x < 8; x++)
                            pixels[((b * 2 + ch) * 8 + y) * 8 + x] = ((labels[b] == 0 ? y : x) % 2 == 0 ? 1f : 0f) + 0.5f * (float)rng.NextNormal();
            }
            using var scope = TensorScope.Begin();
            optimizer.ZeroGrad();
            var loss = model.Loss(model.Forward(Tensor.FromArray(pixels, batch, 2, 8, 8)), labels);
            loss.Backward();
            optimizer.Step();
            losses.Add(loss.Item());
        }
        Assert.True(losses[^5..].Average() < losses[..5].Average() - 0.3, $"loss did not fall: {string.Join(", ", losses.Select(l => l.ToString("F3")))}");
    }

    [Fact]
    public void AnImageOfTheWrongSizeNamesExpectedAndActualShapes()
    {
        var model = new VisionTransformer(Shape, new Generator(1));
        using var wrong = Tensor.Zeros(2, 2, 9, 9);
        var e = Assert.Throws<ArgumentException>(() => model.Forward(wrong));
        Assert.Contains("(B, 2, 8, 8)", e.Message);
        Assert.Contains("(2, 2, 9, 9)", e.Message);
        Assert.Contains("ImageSize = 8", e.Message);
        using var channels = Tensor.Zeros(1, 3, 8, 8);
        Assert.Contains("(1, 3, 8, 8)", Assert.Throws<ArgumentException>(() => model.Forward(channels)).Message);
    }

    public static TheoryData<VisionTransformerConfig, string[]> BadConfigs() => new()
    {
        { Shape with { PatchSize = 3 }, ["VisionTransformerConfig.PatchSize (3)", "VisionTransformerConfig.ImageSize (8)"] },
        { Shape with { Width = 15 }, ["VisionTransformerConfig.Width (15)", "VisionTransformerConfig.Heads (2)"] },
        { Shape with { Classes = 0 }, ["VisionTransformerConfig.Classes", "0"] },
        { Shape with { Channels = -1 }, ["VisionTransformerConfig.Channels", "-1"] },
        {
            Shape with { PatchSize = 3, StemLayers = 1, StemChannels = 4, StemStride = 2 },
            ["PatchSize (3)", "stem's output side (4"]
        },
        { Shape with { StemLayers = 1 }, ["VisionTransformerConfig.StemChannels", "StemLayers = 1"] },
        { Shape with { StemLayers = -1 }, ["VisionTransformerConfig.StemLayers", "-1"] },
        { Shape with { StemStride = 0 }, ["VisionTransformerConfig.StemStride", "0"] },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void BadConfigsNameTheFieldAndValues(VisionTransformerConfig config, string[] mentions)
    {
        var e = Assert.Throws<ArgumentException>(() => new VisionTransformer(config, new Generator(1)));
        foreach (var m in mentions) Assert.Contains(m, e.Message);
    }

    [Fact]
    public void ConfigRoundTripsThroughJsonAndPresetsAreValid()
    {
        Assert.Equal(Shape, VisionTransformerConfig.FromJson(JsonNode.Parse(Shape.ToJson().ToJsonString())!.AsObject()));
        Assert.Equal(196, VisionTransformerConfig.Base16.Validate().Patches);
        Assert.Equal(16, VisionTransformerConfig.Small28(10).Validate().Patches);
        var names = new VisionTransformer(Shape, new Generator(1)).StateDict();
        Assert.Equal([16, 32], names["patch_embed.weight"].Shape.ToArray());
        Assert.Equal([5, 16], names["encoder.positions.weight"].Shape.ToArray());
        Assert.Equal([1, 1, 16], names["cls_token"].Shape.ToArray());
        Assert.DoesNotContain(names.Keys, k => k.StartsWith("stem.", StringComparison.Ordinal));
        Assert.Null(Shape.ToJson()["stem_layers"]);   // a ViT's JSON is as it was
    }

    [Fact]
    public void AStemChangesTheTokensAndItsConfigRoundTrips()
    {
        // 8×8 images, two stride-2 convolutions of 5 channels: 8 → 4 → 2, then 1×1 patches: 4 tokens of 5 values.
        var stem = Shape with { PatchSize = 1, StemLayers = 2, StemChannels = 5, StemStride = 2 };
        Assert.Equal((2, 4, 5), (stem.StemSide, stem.Patches, stem.PatchDim));
        Assert.Equal(stem, VisionTransformerConfig.FromJson(JsonNode.Parse(stem.ToJson().ToJsonString())!.AsObject()));
        var model = new VisionTransformer(stem, new Generator(1));
        var names = model.StateDict();
        Assert.Equal([5, 2, 3, 3], names["stem.0.conv.weight"].Shape.ToArray());
        Assert.Equal([5, 5, 3, 3], names["stem.1.conv.weight"].Shape.ToArray());
        Assert.Equal([5], names["stem.1.norm.weight"].Shape.ToArray());
        Assert.Equal([16, 5], names["patch_embed.weight"].Shape.ToArray());
        using var images = Tensor.Randn(new Generator(2), 3, 2, 8, 8);
        Assert.Equal([3, 4, 5], model.Patchify(images).Shape.ToArray());
        Assert.Equal([3, 2], model.Forward(images).Shape.ToArray());
        // A stride-1 stem keeps the side: 8×8 after it, 4×4 patches of 5 channels.
        var same = Shape with { StemLayers = 1, StemChannels = 5 };
        Assert.Equal((8, 4, 80), (same.StemSide, same.Patches, same.PatchDim));
    }
}
