using AttentionSharp.Gpu;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Tests.Gpu;

/// <summary>
/// <see cref="GpuGpt"/> against the CPU <see cref="Gpt"/> on the simulator (GpuGptCheck holds the comparison and its
/// tolerances), the kernels it added, and the configurations it refuses.
/// </summary>
[Collection(GpuCollection.Name)]
[Trait("Category", "Gpu")]
public class GpuGptTests(GpuFixture fixture)
{
    /// <summary>GPT-2's shape in miniature: 2 layers, width 32, 4 heads, T = 16, V = 37, B = 3.</summary>
    static GptConfig Small(bool bias) =>
        new() { Layers = 2, Width = 32, Heads = 4, ContextLength = 16, VocabSize = 37, Bias = bias };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LogitsLossEveryGradientAndThreeClippedAdamWStepsMatchTheCpu(bool bias) =>
        GpuChecks.Gpt(fixture.Simulator, Small(bias), batch: 3, time: 16);

    [Fact]
    public void AShorterSequenceThanTheContextAndALargerBatchReuseOrGrowTheArena()
    {
        // T = 7 < context (positions 0…6 of wpe), then B = 5: the arena is sliced, then reallocated.
        GpuChecks.Gpt(fixture.Simulator, Small(true), batch: 2, time: 7, steps: 1);
        GpuChecks.Gpt(fixture.Simulator, Small(true), batch: 5, time: 16, steps: 1);
    }

    [Fact]
    public void TheCudaTileShapesMatchTheCpuOnTheSimulator() =>
        GpuChecks.Gpt(fixture.CudaShapes, Small(true) with { Layers = 1 }, batch: 1, time: 8, steps: 0);

    [Theory]
    [InlineData(7, 13, 5, true)]
    [InlineData(37, 29, 70, false)]
    [InlineData(1, 1, 1, true)]
    public void TheGemmBiasEpilogueMatchesTheCpu(int rows, int inFeatures, int outFeatures, bool bias) =>
        GpuChecks.Linear(fixture.Simulator, rows, inFeatures, outFeatures, bias);

    [Theory]
    [InlineData(12, 5, 12)]
    [InlineData(12, 5, 4)]
    [InlineData(7, 33, 1)]
    public void RowBroadcastAdditionIsExact(int rows, int cols, int period) =>
        GpuChecks.AddRows(fixture.Simulator, rows, cols, period);

    [Fact]
    public void WeightsRoundTripThroughTheCpuModelByName()
    {
        var config = Small(false);
        var a = new Gpt(config, new Generator(1));
        var b = new Gpt(config, new Generator(2));
        using var gpu = GpuGpt.From(fixture.Simulator, a);
        gpu.CopyTo(b);
        foreach (var ((name, pa), (_, pb)) in a.NamedParameters().Zip(b.NamedParameters()))
            Assert.True(pa.ToArray().SequenceEqual(pb.ToArray()), $"{name} differs after the round trip");
        Assert.Equal(a.ParameterCount(), gpu.ParameterCount);
        Assert.Equal(a.NamedParameters().Select(p => p.Name), gpu.ParameterNames);
    }

    public static TheoryData<string, string> Refused => new()
    {
        { "rotary", "this model's positions are rotary" },
        { "sliding", "this model's attention is sliding" },
        { "dropout", "this model's dropout is 0.1" },
        { "heads", "heads of at most 128; this model's head size is 256" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void OtherConfigurationsAreRefusedInOneSentenceNamingTheSetting(string setting, string expected)
    {
        var config = setting switch
        {
            "rotary" => Small(true) with { PositionalEncoding = PositionalEncodingKind.Rotary },
            "sliding" => Small(true) with { Attention = AttentionPattern.Sliding(4) },
            "dropout" => Small(true) with { Dropout = 0.1f },
            _ => Small(true) with { Width = 256, Heads = 1 },
        };
        var e = Assert.Throws<NotSupportedException>(() => GpuGpt.From(fixture.Simulator, new Gpt(config, new Generator(1))));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("The GPU GPT supports GPT-2's layout only", e.Message);
        Assert.EndsWith(".", e.Message);
        Assert.Equal(e.Message, GpuGpt.Unsupported(config));
        Assert.Null(GpuGpt.Unsupported(Small(false)));
    }

    /// <summary>
    /// A larger GPT on a real GPU, where there is one: 4 layers, width 256 (HS = 64), T = 128, V = 1000, B = 4.
    /// </summary>
    [CudaFact]
    public void ALargerGptMatchesTheCpuOnTheGpu()
    {
        using var gpu = GpuDevice.Cuda();
        var config = new GptConfig { Layers = 4, Width = 256, Heads = 4, ContextLength = 128, VocabSize = 1000 };
        GpuChecks.Gpt(gpu, config, batch: 4, time: 128);
        GpuChecks.Gpt(gpu, config with { Bias = false }, batch: 2, time: 100, steps: 1);
    }
}
