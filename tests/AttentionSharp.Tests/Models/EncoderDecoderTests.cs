using System.Text.Json.Nodes;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Training;

namespace AttentionSharp.Tests.Models;

/// <summary>The original Transformer: cached decoding equals uncached, beam search's properties, learning a task, clear errors.</summary>
public class EncoderDecoderTests
{
    // Cached and uncached decoding run the same arithmetic over differently shaped matrices (one query row against the
    // cached keys versus all rows at once), so blocked sums may round apart by a few ulps per layer; 1e-4 is far above
    // that and far below a wrong position, mask or stale cache entry (which moves logits by ~1e-1).
    const double CacheLogitsAbs = 1e-4;

    // Beam search accumulates log-probabilities in double from fp32 logits; the teacher-forced rescoring runs the model on
    // the whole sequence at once, so the two differ by float rounding only.
    const double LogProbAbs = 1e-4;

    const int Pad = 0, Bos = 1, Eos = 2, Vocab = 12;

#pragma warning disable format
    static readonly EncoderDecoderConfig Shape = EncoderDecoderConfig.Small(Vocab) with
    {
        Width = 32, Heads = 4, FeedForwardWidth = 64, LabelSmoothing = 0.1f,
    };
#pragma warning restore format

    /// <summary>One model trained for 60 steps on reversal, and its losses, shared by the tests that need a trained model.</summary>
    static readonly Lazy<(EncoderDecoder Model, List<float> Losses)> Trained = new(() =>
    {
        var losses = new List<float>();
        return (Train(steps: 60, losses), losses);
    });

    /// <summary>Three sources of length 6, the second padded after 4 tokens.</summary>
    static readonly int[] Sources = [3, 4, 5, 6, 7, 8, 9, 10, 11, 3, Pad, Pad, 5, 5, 6, 6, 7, 7];

    [Fact]
    public void GreedyWithTheCacheGivesTheSameTokensAndLogitsAsWithout()
    {
        // An untrained model (rows run to the length limit) and a trained one (rows stop at EOS, then are fed EOS).
        foreach (var model in new[] { new EncoderDecoder(Shape, new Generator(5)), Trained.Value.Model })
        {
            var cached = model.Greedy(Sources, 3, 6, maxLength: 9, useCache: true);
            var plain = model.Greedy(Sources, 3, 6, maxLength: 9, useCache: false);
            Assert.Equal(plain.Tokens, cached.Tokens);
            Assert.Equal(plain.StepLogits.Length, cached.StepLogits.Length);
            Assert.True(cached.StepLogits.Length >= 2);
            for (int step = 0; step < plain.StepLogits.Length; step++)
                Support.TensorAssert.Close(plain.StepLogits[step], cached.StepLogits[step], CacheLogitsAbs, 0, $"logits at step {step}");
        }
    }

    [Fact]
    public void DecodingIgnoresDropoutAndKeepsTheModelsMode()
    {
        var model = new EncoderDecoder(Shape with { Dropout = 0.3f }, new Generator(5));
        Assert.True(model.Training);
        var first = model.Greedy(Sources, 3, 6, maxLength: 6);
        var second = model.Greedy(Sources, 3, 6, maxLength: 6, useCache: false);
        Assert.True(model.Training);
        Assert.Equal(first.Tokens, second.Tokens);
        model.Eval();
        Assert.Equal(first.StepLogits, model.Greedy(Sources, 3, 6, maxLength: 6).StepLogits);
    }

    [Fact]
    public void GreedyStopsEachRowAtEos()
    {
        var model = Trained.Value.Model;
        var result = model.Greedy(Sources, 3, 6, maxLength: 12);
        Assert.Contains(result.Tokens, row => row.Length > 0 && row[^1] == Eos);                  // the trained model does stop
        foreach (var row in result.Tokens)
        {
            Assert.True(row.Length <= 12);
            Assert.DoesNotContain(Pad, row);
            Assert.DoesNotContain(Bos, row);
            int eos = Array.IndexOf(row, Eos);
            Assert.True(eos < 0 || eos == row.Length - 1, $"tokens continue after EOS: {string.Join(" ", row)}");
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.6)]
    public void BeamOfWidthOneIsGreedy(double lengthPenalty)
    {
        var model = new EncoderDecoder(Shape, new Generator(7));
        for (int s = 0; s < 3; s++)
        {
            var source = Sources.AsSpan(s * 6, 6);
            var greedy = model.Greedy(source, 1, 6, maxLength: 8).Tokens[0];
            var beam = model.BeamSearch(source, 6, beamWidth: 1, maxLength: 8, lengthPenalty);
            Assert.Single(beam);
            Assert.Equal(greedy, beam[0].Tokens);
        }
    }

    [Fact]
    public void AWiderBeamNeverScoresWorseThanGreedy()
    {
        var rng = new Generator(11);
        foreach (var model in new[] { new EncoderDecoder(Shape, new Generator(3)), Trained.Value.Model })
        {
            for (int s = 0; s < 6; s++)
            {
                var source = Enumerable.Range(0, 5).Select(_ => 3 + rng.NextInt(Vocab - 3)).ToArray();
                var greedy = model.Greedy(source, 1, 5, maxLength: 7).Tokens[0];
                double greedyLogProb = model.LogProbability(source, 5, greedy);
                foreach (int width in new[] { 2, 4 })
                {
                    var best = model.BeamSearch(source, 5, width, maxLength: 7)[0];
                    Assert.InRange(best.LogProb - model.LogProbability(source, 5, best.Tokens), -LogProbAbs, LogProbAbs);
                    Assert.True(best.LogProb >= greedyLogProb - LogProbAbs,
                        $"beam {width} found log p = {best.LogProb:F5} ({string.Join(" ", best.Tokens)}) below greedy's {greedyLogProb:F5} ({string.Join(" ", greedy)})");
                }
            }
        }
    }

    [Fact]
    public void BeamSearchWithTheReorderedCacheEqualsReDecodingThePrefixes()
    {
        foreach (var model in new[] { new EncoderDecoder(Shape, new Generator(3)), Trained.Value.Model })
            for (int s = 0; s < 3; s++)
            {
                var source = Sources.AsSpan(s * 6, 6);
                var cached = model.BeamSearch(source, 6, beamWidth: 4, maxLength: 8, lengthPenalty: 0.6, useCache: true);
                var plain = model.BeamSearch(source, 6, beamWidth: 4, maxLength: 8, lengthPenalty: 0.6, useCache: false);
                Assert.Equal(plain.Select(h => h.Tokens), cached.Select(h => h.Tokens));
                for (int i = 0; i < plain.Count; i++) Assert.InRange(cached[i].LogProb - plain[i].LogProb, -LogProbAbs, LogProbAbs);
            }
    }

    [Fact]
    public void BeamsOfABatchOfSourcesEqualEachSourcesOwn()
    {
        var model = Trained.Value.Model;
        int[] sources = [.. Sources[..6], .. Sources[12..18]];                                    // two unpadded sources
        var batched = model.BeamSearchBatch(sources, 2, 6, beamWidth: 3, maxLength: 8);
        for (int s = 0; s < 2; s++)
        {
            var single = model.BeamSearch(sources.AsSpan(s * 6, 6), 6, beamWidth: 3, maxLength: 8);
            Assert.Equal(single.Select(h => h.Tokens), batched[s].Select(h => h.Tokens));
        }
    }

    [Fact]
    public void BeamHypothesesAreRankedByTheLengthPenalisedScore()
    {
        var model = Trained.Value.Model;
        var beams = model.BeamSearch(Sources.AsSpan(0, 6), 6, beamWidth: 4, maxLength: 8, lengthPenalty: 1.0);
        Assert.Equal(4, beams.Count);
        for (int i = 0; i < beams.Count; i++)
        {
            var h = beams[i];
            Assert.Equal(h.LogProb / ((5.0 + h.Tokens.Length) / 6.0), h.Score, 12);
            if (i > 0) Assert.True(beams[i - 1].Score >= h.Score);
        }
    }

    [Fact]
    public void AFewStepsOfTrainingLowerTheLossOnReversal()
    {
        var losses = Trained.Value.Losses;
        Assert.True(losses[^5..].Average() < losses[..5].Average() - 0.5, $"loss did not fall: {string.Join(", ", losses.Select(l => l.ToString("F3")))}");
    }

    /// <summary>Trains on reversing 5 random tokens (the decoder reads BOS + the reversed source and predicts it + EOS).</summary>
    static EncoderDecoder Train(int steps, List<float> losses)
    {
        const int batch = 16, length = 5;
        var model = new EncoderDecoder(Shape, new Generator(1));
        var optimizer = new AdamW(model.Parameters(), lr: 3e-3f, weightDecay: 0f);
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

    [Fact]
    public void SharedAndTiedOrSeparateAndUntiedParametersAreNamedSo()
    {
        var paper = new EncoderDecoder(Shape, new Generator(1)).StateDict().Keys.ToList();
        Assert.Contains("shared.weight", paper);
        Assert.DoesNotContain(paper, k => k.StartsWith("src_embed", StringComparison.Ordinal) || k.StartsWith("output_projection", StringComparison.Ordinal));
        var separate = new EncoderDecoder(Shape with { ShareEmbeddings = false, TieOutput = false, TargetVocabSize = 15 }, new Generator(1));
        var names = separate.StateDict();
        Assert.Equal([Vocab, 32], names["src_embed.weight"].Shape.ToArray());
        Assert.Equal([15, 32], names["tgt_embed.weight"].Shape.ToArray());
        Assert.Equal([15, 32], names["output_projection.weight"].Shape.ToArray());
        Assert.Contains("encoder.layers.1.ffn.linear2.weight", names.Keys);
        Assert.Contains("decoder.layers.1.multihead_attn.in_proj_weight", names.Keys);
        var logits = separate.Forward(Sources, 6, [Bos, 3, 4, Bos, 5, 6, Bos, 7, 8], 3, 3);
        Assert.Equal([3, 3, 15], logits.Shape.ToArray());
    }

    [Fact]
    public void ConfigRoundTripsThroughJson()
    {
        var config = Shape with { NormFirst = true, PositionalEncoding = PositionalEncodingKind.Learned, Activation = FeedForwardActivation.Gelu, TieOutput = false };
        var back = EncoderDecoderConfig.FromJson(JsonNode.Parse(config.ToJson().ToJsonString())!.AsObject());
        Assert.Equal(config, back);
        EncoderDecoderConfig.Base.Validate();
        var e = Assert.Throws<ArgumentException>(() => EncoderDecoderConfig.FromJson(new JsonObject { ["model_type"] = "encoder_decoder", ["source_vocab_size"] = 5 }));
        Assert.Contains("'target_vocab_size'", e.Message);
    }

    public static TheoryData<EncoderDecoderConfig, string[]> BadConfigs() => new()
    {
        { Shape with { Width = 30, Heads = 4 }, ["EncoderDecoderConfig.Width (30)", "EncoderDecoderConfig.Heads (4)"] },
        { Shape with { TargetVocabSize = 20 }, ["ShareEmbeddings", "SourceVocabSize = 12", "TargetVocabSize = 20"] },
        { Shape with { EosId = 1 }, ["PadId (0)", "BosId (1)", "EosId (1)"] },
        { Shape with { BosId = 12 }, ["EncoderDecoderConfig.BosId (12)", "[0, 12)"] },
        { Shape with { DecoderLayers = 0 }, ["EncoderDecoderConfig.DecoderLayers", "0"] },
        { Shape with { LabelSmoothing = 1f }, ["EncoderDecoderConfig.LabelSmoothing", "1"] },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void BadConfigsNameTheFieldAndValues(EncoderDecoderConfig config, string[] mentions)
    {
        var e = Assert.Throws<ArgumentException>(() => new EncoderDecoder(config, new Generator(1)));
        foreach (var m in mentions) Assert.Contains(m, e.Message);
    }

    [Fact]
    public void ASequenceLongerThanTheLearnedPositionTableIsAClearError()
    {
        var model = new EncoderDecoder(Shape with { PositionalEncoding = PositionalEncodingKind.Learned, MaxLength = 4 }, new Generator(1));
        var e = Assert.Throws<ArgumentException>(() => model.Encode(Sources, 3, 6));
        Assert.Contains("6 tokens", e.Message);
        Assert.Contains("EncoderDecoderConfig.MaxLength = 4", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Greedy(Sources.AsSpan(0, 4), 1, 4, maxLength: 5));
    }
}
