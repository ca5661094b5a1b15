using System.Text.Json.Nodes;
using AttentionSharp.Autograd;
using AttentionSharp.Kernels;
using AttentionSharp.Models;

namespace AttentionSharp.Tests.Models;

/// <summary>The recurrent encoder–decoder: gradients, decoding step by step equals teacher forcing, beam search, learning.</summary>
public class RecurrentSeq2SeqTests
{
    // Step-by-step decoding runs the same cell arithmetic as the fused whole-sequence pass, one step per call; the
    // products are blocked differently, so logits may differ by float rounding only.
    const double StepLogitsAbs = 1e-4;

    // Beam search sums log-probabilities in double from fp32 logits computed step by step; teacher-forced rescoring
    // computes them in one pass.
    const double LogProbAbs = 1e-4;

    const int Pad = 0, Bos = 1, Eos = 2, Vocab = 12;

    static RecurrentSeq2SeqConfig Shape(RecurrentCell cell = RecurrentCell.Lstm, Seq2SeqAttention attention = Seq2SeqAttention.General) => new()
    {
        SourceVocabSize = Vocab, TargetVocabSize = Vocab, Cell = cell, EmbeddingSize = 8, HiddenSize = 12, Layers = 2,
        Attention = attention, PadId = Pad, BosId = Bos, EosId = Eos,
    };

    static readonly Lazy<(RecurrentSeq2Seq Model, List<float> Losses)> Trained = new(() =>
    {
        var losses = new List<float>();
        return (Train(Shape(), 80, losses), losses);
    });

    /// <summary>Three sources of length 5.</summary>
    static readonly int[] Sources = [3, 4, 5, 6, 7, 8, 9, 10, 11, 3, 5, 5, 6, 6, 7];

    [Theory]
    [InlineData(RecurrentCell.Lstm, Seq2SeqAttention.General)]
    [InlineData(RecurrentCell.Lstm, Seq2SeqAttention.None)]
    [InlineData(RecurrentCell.Gru, Seq2SeqAttention.Dot)]
    [InlineData(RecurrentCell.Tanh, Seq2SeqAttention.General)]
    public void GradientsMatchFiniteDifferences(RecurrentCell cell, Seq2SeqAttention attention)
    {
        var model = new RecurrentSeq2Seq(Shape(cell, attention) with { EmbeddingSize = 4, HiddenSize = 6, Layers = 1 }, new Generator(3));
        int[] source = [3, 4, 5, 6, 7, 8];                                                    // (2, 3)
        int[] input = [Bos, 5, 6, 7, Bos, 8, 9, Pad];                                         // (2, 4), the second padded
        int[] target = [5, 6, 7, Eos, 8, 9, Eos, Pad];
        // Every parameter, in double-checked float: small enough that the sweep stays quick.
        var parameters = model.Parameters().ToArray();
        var report = GradCheck.Check(_ => model.Loss(model.Forward(source, 3, input, 4, 2), target), parameters);
        Assert.True(report.Passed, report.ToString());
    }

    [Theory]
    [InlineData(Seq2SeqAttention.General)]
    [InlineData(Seq2SeqAttention.None)]
    public void StepByStepDecodingGivesTheTeacherForcedLogits(Seq2SeqAttention attention)
    {
        var model = new RecurrentSeq2Seq(Shape(attention: attention), new Generator(5));
        var greedy = model.Greedy(Sources, 3, 5, maxLength: 6);
        Assert.True(greedy.StepLogits.Length >= 2);
        for (int b = 0; b < 3; b++)
        {
            // Feed BOS + the greedy tokens with teacher forcing; each step's logits must equal greedy's.
            var tokens = greedy.Tokens[b];
            int[] input = [Bos, .. tokens[..^1]];
            float[] forced;
            using (GradMode.NoGrad()) forced = model.Forward(Sources.AsSpan(b * 5, 5), 5, input, input.Length, 1).ToArray();
            for (int t = 0; t < tokens.Length; t++)
                Support.TensorAssert.Close(forced.AsSpan(t * Vocab, Vocab).ToArray(), greedy.StepLogits[t].AsSpan(b * Vocab, Vocab).ToArray(), StepLogitsAbs, 0, $"row {b} step {t}");
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.6)]
    public void BeamOfWidthOneIsGreedy(double lengthPenalty)
    {
        var model = new RecurrentSeq2Seq(Shape(), new Generator(7));
        for (int s = 0; s < 3; s++)
        {
            var source = Sources.AsSpan(s * 5, 5);
            var beam = model.BeamSearch(source, 5, beamWidth: 1, maxLength: 8, lengthPenalty);
            Assert.Single(beam);
            Assert.Equal(model.Greedy(source, 1, 5, maxLength: 8).Tokens[0], beam[0].Tokens);
        }
    }

    [Fact]
    public void AWiderBeamNeverScoresWorseThanGreedyAndBatchedBeamsEqualSingleOnes()
    {
        var rng = new Generator(11);
        foreach (var model in new[] { new RecurrentSeq2Seq(Shape(), new Generator(3)), Trained.Value.Model })
        {
            var sources = Enumerable.Range(0, 4 * 5).Select(_ => 3 + rng.NextInt(Vocab - 3)).ToArray();
            var batched = model.BeamSearchBatch(sources, 4, 5, beamWidth: 3, maxLength: 7);
            for (int s = 0; s < 4; s++)
            {
                var source = sources.AsSpan(s * 5, 5);
                var greedy = model.Greedy(source, 1, 5, maxLength: 7).Tokens[0];
                double greedyLogProb = model.LogProbability(source, 5, greedy);
                foreach (int width in new[] { 2, 3 })
                {
                    var beams = model.BeamSearch(source, 5, width, maxLength: 7);
                    var best = beams[0];
                    Assert.InRange(best.LogProb - model.LogProbability(source, 5, best.Tokens), -LogProbAbs, LogProbAbs);
                    Assert.True(best.LogProb >= greedyLogProb - LogProbAbs,
                        $"beam {width} found log p = {best.LogProb:F5} below greedy's {greedyLogProb:F5}");
                    if (width == 3)
                        Assert.Equal(beams.Select(h => h.Tokens), batched[s].Select(h => h.Tokens));
                }
            }
        }
    }

    [Fact]
    public void AFewStepsOfTrainingLowerTheLossOnReversal()
    {
        var losses = Trained.Value.Losses;
        Assert.True(losses[^5..].Average() < losses[..5].Average() - 0.5, $"loss did not fall: {string.Join(", ", losses.Select(l => l.ToString("F3")))}");
    }

    [Fact]
    public void ParametersAreNamedAsTorchNamesThem()
    {
        var names = new RecurrentSeq2Seq(Shape(), new Generator(1)).StateDict();
        Assert.Equal([Vocab, 8], names["src_embed.weight"].Shape.ToArray());
        Assert.Equal([4 * 6, 8], names["encoder.weight_ih_l0"].Shape.ToArray());              // bidirectional: H/2 = 6 per direction
        Assert.Equal([4 * 6, 12], names["encoder.weight_ih_l1_reverse"].Shape.ToArray());
        Assert.Equal([4 * 12, 12], names["decoder.weight_hh_l1"].Shape.ToArray());
        Assert.Equal([12, 12], names["attn.linear_in.weight"].Shape.ToArray());
        Assert.Equal([12, 24], names["attn.linear_out.weight"].Shape.ToArray());
        Assert.Equal([Vocab, 12], names["output_projection.weight"].Shape.ToArray());
        var plain = new RecurrentSeq2Seq(Shape(attention: Seq2SeqAttention.None), new Generator(1)).StateDict();
        Assert.DoesNotContain(plain.Keys, k => k.StartsWith("attn.", StringComparison.Ordinal));
    }

    [Fact]
    public void PaddedSourcesAndBadConfigsAreClearErrors()
    {
        var model = new RecurrentSeq2Seq(Shape(), new Generator(1));
        var e = Assert.Throws<ArgumentException>(() => model.Encode([3, 4, Pad], 1, 3));
        Assert.Contains("padding", e.Message);
        var odd = Assert.Throws<ArgumentException>(() => new RecurrentSeq2Seq(Shape() with { HiddenSize = 11 }, new Generator(1)));
        Assert.Contains("HiddenSize (11)", odd.Message);
        var ids = Assert.Throws<ArgumentException>(() => new RecurrentSeq2Seq(Shape() with { EosId = Bos }, new Generator(1)));
        Assert.Contains("three different ids", ids.Message);
    }

    [Fact]
    public void ConfigRoundTripsThroughJson()
    {
        var config = Shape(RecurrentCell.Gru, Seq2SeqAttention.Dot) with { Dropout = 0.25f, BidirectionalEncoder = false, LabelSmoothing = 0.1f };
        Assert.Equal(config, RecurrentSeq2SeqConfig.FromJson(JsonNode.Parse(config.ToJson().ToJsonString())!.AsObject()));
    }

    /// <summary>Trains on reversing 5 random tokens (the decoder reads BOS + the reversed source and predicts it + EOS).</summary>
    static RecurrentSeq2Seq Train(RecurrentSeq2SeqConfig shape, int steps, List<float> losses)
    {
        const int batch = 16, length = 5;
        var model = new RecurrentSeq2Seq(shape, new Generator(1));
        var optimizer = new AttentionSharp.Training.AdamW(model.Parameters(), lr: 1e-2f, weightDecay: 0f);
        var rng = new Generator(2);
        for (int step = 0; step < steps; step++)
        {
            var (source, input, target) = ReversalTask.Batch(rng, batch, length, Vocab);
            using var scope = TensorScope.Begin();
            optimizer.ZeroGrad();
            var loss = model.Loss(model.Forward(source, length, input, length + 1, batch), target);
            loss.Backward();
            optimizer.Step();
            losses.Add(loss.Item());
        }
        return model;
    }
}
