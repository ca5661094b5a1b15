using AttentionSharp.Autograd;
using AttentionSharp.Models;

namespace AttentionSharp.Tests.Tensors;

/// <summary>The meter is process-wide, so these tests run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(MemoryMeterTests), DisableParallelization = true)]
public sealed class MemoryMeterCollection;

/// <summary>
/// The memory meter, and what it shows about attention: flash, sliding-window and linear attention hold O(T), plain O(T²).
/// </summary>
[Collection(nameof(MemoryMeterTests))]
public class MemoryMeterTests
{
    [Fact]
    public void CountsLiveTensorsAndTheirHighWaterMark()
    {
        long before = MemoryMeter.ResetPeak();
        var a = Tensor.Zeros(1000);                    // a 1024-float bucket
        var b = Tensor.Zeros(4096);
        Assert.Equal(before + (1024 + 4096) * 4, MemoryMeter.CurrentBytes);
        b.Dispose();
        a.Dispose();
        Assert.Equal(before, MemoryMeter.CurrentBytes);
        Assert.Equal(before + (1024 + 4096) * 4, MemoryMeter.PeakBytes);
    }

    /// <summary>
    /// Peak bytes of one forward + backward pass above what was held before, inputs excluded: the least of three passes,
    /// since the meter is process-wide and a background thread another test left running can only add to a reading.
    /// </summary>
    /// <remarks>
    /// One thread: the kernels give each thread that joins its own tile scratch, and how many join depends on the load.
    /// </remarks>
    static long PeakOf(Func<Tensor, Tensor, Tensor, Tensor> attention, int t)
    {
        int threads = AttentionSharp.Kernels.Parallel.ThreadCount;
        AttentionSharp.Kernels.Parallel.ThreadCount = 1;
        try { return Enumerable.Range(0, 3).Min(_ => OnePeak(attention, t)); }
        finally { AttentionSharp.Kernels.Parallel.ThreadCount = threads; }
    }

    static long OnePeak(Func<Tensor, Tensor, Tensor, Tensor> attention, int t)
    {
        var rng = new Generator((ulong)t);
        Tensor q = Tensor.Uniform(rng, -1f, 1f, 1, 2, t, 16), k = Tensor.Uniform(rng, -1f, 1f, 1, 2, t, 16),
            v = Tensor.Uniform(rng, -1f, 1f, 1, 2, t, 16);
        foreach (var x in new[] { q, k, v }) x.RequiresGrad = true;
        long before = MemoryMeter.ResetPeak();
        using (TensorScope.Begin()) attention(q, k, v).Sum().Backward();
        long peak = MemoryMeter.PeakBytes - before;
        foreach (var x in new[] { q, k, v }) { x.Grad!.Dispose(); x.Dispose(); }
        return peak;
    }

    [Fact]
    public void FlashSlidingAndLinearMemoryGrowsLinearlyPlainQuadratically()
    {
        var kinds = new (string Name, Func<Tensor, Tensor, Tensor, Tensor> F, double Low, double High)[]
        {
            // Doubling T doubles what grows with T; per-thread tile scratch stays, so the ratio sits a little under 2.
            ("flash", (q, k, v) => Tensor.ScaledDotProductAttention(q, k, v,
                new AttentionOptions { Causal = true, Implementation = AttentionImplementation.Flash }), 1.5, 2.05),
            ("sliding", (q, k, v) => Tensor.ScaledDotProductAttention(q, k, v,
                new AttentionOptions { Causal = true, Window = 64 }), 1.5, 2.05),
            ("linear", (q, k, v) => Tensor.LinearAttention(q, k, v, causal: true), 1.5, 2.05),
            // The (T, T) weights and the backward pass's (T, T) scratch: 4× per doubling, less the O(T) part.
            ("plain", (q, k, v) => Tensor.ScaledDotProductAttention(q, k, v,
                new AttentionOptions { Causal = true, Implementation = AttentionImplementation.Plain }), 3.3, 4.05),
        };
        foreach (var (name, f, low, high) in kinds)
        {
            long small = PeakOf(f, 512), large = PeakOf(f, 1024);
            double ratio = (double)large / small;
            Assert.True(ratio >= low && ratio <= high,
                $"{name}: peak {small} B at T = 512, {large} B at T = 1024, ratio {ratio:F2} outside [{low}, {high}]");
        }
    }

    /// <summary>
    /// A beam search holds its decoder's state, not every step's: with random weights (no hypothesis ends) the peak at
    /// 24 steps is within a little of the peak at 8, the caches' growth apart. Before the reordered rows' views were
    /// released it grew with the steps, 3.2 times from 8 steps to 24.
    /// </summary>
    [Fact]
    public void BeamSearchMemoryDoesNotGrowWithTheSteps()
    {
        var models = new (string Name, ISequenceToSequence Model)[]
        {
            ("transformer", new EncoderDecoder(EncoderDecoderConfig.Small(12) with
            {
                Width = 32, Heads = 4, FeedForwardWidth = 64, EncoderLayers = 1, DecoderLayers = 2, Dropout = 0f,
            }, new Generator(1))),
            ("lstm", new RecurrentSeq2Seq(new RecurrentSeq2SeqConfig
            {
                SourceVocabSize = 12, TargetVocabSize = 12, EmbeddingSize = 16, HiddenSize = 32, Layers = 1,
                BidirectionalEncoder = true, Attention = Seq2SeqAttention.General,
            }, new Generator(1))),
        };
        var sources = Enumerable.Range(0, 16 * 5).Select(i => 3 + i % 9).ToArray();
        foreach (var (name, model) in models)
        {
            ((AttentionSharp.Nn.Module)model).Eval();
            long Peak(int steps)
            {
                long least = long.MaxValue;
                for (int pass = 0; pass < 3; pass++)
                {
                    long before = MemoryMeter.ResetPeak();
                    var beams = model.BeamSearchBatch(sources, 16, 5, 4, steps);
                    Assert.Contains(beams, b => b.Any(h => h.Tokens.Length == steps));         // it ran every step
                    least = Math.Min(least, MemoryMeter.PeakBytes - before);
                }
                return least;
            }
            long eight = Peak(8), twentyFour = Peak(24);
            Assert.True(twentyFour < 1.5 * eight, $"{name}: peak {eight} B over 8 steps, {twentyFour} B over 24");
        }
    }
}
