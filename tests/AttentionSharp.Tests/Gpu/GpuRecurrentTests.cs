using AttentionSharp.Gpu;
using AttentionSharp.Kernels;
using AttentionSharp.Nn;
using Embedding = AttentionSharp.Nn.Embedding;

namespace AttentionSharp.Tests.Gpu;

/// <summary>
/// <see cref="GpuRecurrentClassifier"/> (the recurrent kernels, backpropagation through time, AdamW) against the CPU
/// engine on the simulator: <see cref="GpuRecurrentCheck"/> compares the logits, the loss, every gradient and two
/// clipped AdamW steps.
/// </summary>
[Collection(GpuCollection.Name)]
[Trait("Category", "Gpu")]
public class GpuRecurrentTests(GpuFixture fixture)
{
    static void AssertAllPass(IReadOnlyList<GpuComparison> results)
    {
        Assert.True(results.Count > 5, $"only {results.Count} comparisons");
        var failed = results.Where(r => !r.Passed).ToList();
        Assert.True(failed.Count == 0, string.Join(Environment.NewLine, failed));
    }

    [Theory]
    [InlineData(RecurrentCell.Tanh)]
    [InlineData(RecurrentCell.Lstm)]
    [InlineData(RecurrentCell.Gru)]
    public void OneLayerMatchesTheCpuInLossEveryGradientAndTwoAdamWSteps(RecurrentCell cell) =>
        AssertAllPass(GpuRecurrentCheck.Compare(fixture.Simulator, cell, vocab: 11, embedding: 6, hidden: 9, layers: 1,
            classes: 4, batch: 3, time: 7));

    [Theory]
    [InlineData(RecurrentCell.Tanh)]
    [InlineData(RecurrentCell.Lstm)]
    [InlineData(RecurrentCell.Gru)]
    public void TwoStackedLayersMatchTheCpu(RecurrentCell cell) =>
        AssertAllPass(GpuRecurrentCheck.Compare(fixture.Simulator, cell, vocab: 9, embedding: 5, hidden: 7, layers: 2,
            classes: 3, batch: 2, time: 5, steps: 1));

    [Fact]
    public void OneStepAndTheCudaTileShapesMatchTheCpu()
    {
        // T = 1: no step reads a previous state, dW_hh gets nothing; then the exact code a GPU runs, tiny.
        AssertAllPass(GpuRecurrentCheck.Compare(fixture.Simulator, RecurrentCell.Lstm, 7, 4, 5, 1, 3, batch: 2, time: 1));
        AssertAllPass(GpuRecurrentCheck.Compare(fixture.CudaShapes, RecurrentCell.Gru, 7, 4, 5, 1, 3, batch: 2, time: 3,
            steps: 1));
    }

    [Fact]
    public void TheRecurrentCasesOfTheGpuCheckCommandPassOnTheSimulator()
    {
        var cases = AttentionSharp.Benchmarks.GpuCheck.RecurrentCases(fixture.Simulator).ToList();
        Assert.Equal(3, cases.Count);
        foreach (var (_, compare) in cases) AssertAllPass(compare());
    }

    [Fact]
    public void BidirectionalAndMismatchedModulesAreRefusedInOneSentence()
    {
        var rng = new Generator(1);
        var embedding = new Embedding(5, 4, rng);
        var head = new Linear(6, 2, rng);
        var both = new Lstm(new RecurrentConfig { InputSize = 4, HiddenSize = 6, Bidirectional = true }, rng);
        var e = Assert.Throws<NotSupportedException>(() => GpuRecurrentClassifier.From(fixture.Simulator, embedding, both, head));
        Assert.Contains("one direction", e.Message);
        var wide = new Gru(new RecurrentConfig { InputSize = 3, HiddenSize = 6 }, rng);
        e = Assert.Throws<NotSupportedException>(() => GpuRecurrentClassifier.From(fixture.Simulator, embedding, wide, head));
        Assert.Contains("reads 3 features but the embedding has 4", e.Message);
    }
}
