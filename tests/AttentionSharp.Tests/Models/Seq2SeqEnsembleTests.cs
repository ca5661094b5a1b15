using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Tests.Models;

/// <summary>
/// Sequence-to-sequence models decoding together: one model alone decodes as itself; two decode by the mean of their
/// distributions, step by step as under teacher forcing; beam scores are the ensemble's log-probabilities; members that
/// cannot share a vocabulary are refused by name.
/// </summary>
public class Seq2SeqEnsembleTests
{
    // The ensemble's incremental decoding (cached keys and values, carried recurrent states) against its teacher-forced
    // pass over the whole sequence: float rounding apart, as for a single model (see EncoderDecoderTests).
    const double LogProbAbs = 1e-4;

    const int Pad = 0, Bos = 1, Eos = 2, Vocab = 12;

    static EncoderDecoder Transformer(int seed) => new(EncoderDecoderConfig.Small(Vocab) with
    {
        Width = 32,
        Heads = 4,
        FeedForwardWidth = 64,
        EncoderLayers = 1,
        DecoderLayers = 2,
    }, new Generator((ulong)seed));

    static RecurrentSeq2Seq Lstm(int seed) => new(new RecurrentSeq2SeqConfig
    {
        SourceVocabSize = Vocab, TargetVocabSize = Vocab, EmbeddingSize = 8, HiddenSize = 16, Layers = 1,
        BidirectionalEncoder = true, Attention = Seq2SeqAttention.General,
    }, new Generator((ulong)seed));

    /// <summary>Three sources of length 5 (a recurrent encoder reads no padding).</summary>
    static readonly int[] Sources = [3, 4, 5, 6, 7, 8, 9, 10, 11, 3, 5, 5, 6, 6, 7];

    [Fact]
    public void OneModelAloneDecodesAsItself()
    {
        foreach (var model in new ISequenceToSequence[] { Transformer(3), Lstm(3) })
        {
            var ensemble = new Seq2SeqEnsemble([model]);
            Assert.Equal(model.Greedy(Sources, 3, 5, 8).Tokens, ensemble.Greedy(Sources, 3, 5, 8).Tokens);
            var alone = model.BeamSearchBatch(Sources, 3, 5, 3, 8);
            var together = ensemble.BeamSearchBatch(Sources, 3, 5, 3, 8);
            for (int s = 0; s < 3; s++)
            {
                Assert.Equal(alone[s].Select(h => h.Tokens), together[s].Select(h => h.Tokens));
                for (int h = 0; h < alone[s].Count; h++) Assert.Equal(alone[s][h].LogProb, together[s][h].LogProb, LogProbAbs);
            }
        }
    }

    /// <summary>
    /// Forward gives, at each position, log of the mean of the members' softmaxes; greedy decoding picks that mean's most
    /// probable token at every step of its own output (decoded incrementally, checked by teacher forcing); a beam's
    /// log-probability is the ensemble's log-probability of its tokens. A Transformer and an LSTM may decode together.
    /// </summary>
    [Fact]
    public void TwoModelsDecodeByTheMeanOfTheirDistributions()
    {
        var members = new ISequenceToSequence[] { Transformer(4), Lstm(5) };
        var ensemble = new Seq2SeqEnsemble(members);
        int[] input = [Bos, 3, 4, 5, 6, 7, Bos, 8, 9, 10, 11, 3, Bos, 5, 5, 5, 5, 5];
        var logits = ensemble.Forward(Sources, 5, input, 6, 3).ToArray();
        var each = members.Select(m => m.Forward(Sources, 5, input, 6, 3).ToArray()).ToArray();
        for (int row = 0; row < 3 * 6; row++)
        {
            var p0 = Softmax(each[0].AsSpan(row * Vocab, Vocab));
            var p1 = Softmax(each[1].AsSpan(row * Vocab, Vocab));
            for (int v = 0; v < Vocab; v++)
                Assert.Equal(Math.Log((p0[v] + p1[v]) / 2), logits[row * Vocab + v], 1e-5);
        }

        var greedy = ensemble.Greedy(Sources, 3, 5, 7).Tokens;
        Assert.NotEqual(members[0].Greedy(Sources, 3, 5, 7).Tokens, greedy);
        for (int s = 0; s < 3; s++)
        {
            int[] fed = [Bos, .. greedy[s][..^1]];
            var forced = ensemble.Forward(Sources.AsSpan(s * 5, 5), 5, fed, fed.Length, 1).ToArray();
            for (int t = 0; t < greedy[s].Length; t++)
            {
                var row = forced.AsSpan(t * Vocab, Vocab).ToArray();
                row[Pad] = row[Bos] = float.NegativeInfinity;                                   // never decoded
                Assert.Equal(Array.IndexOf(row, row.Max()), greedy[s][t]);
            }
        }

        var beams = ensemble.BeamSearchBatch(Sources, 3, 5, 4, 7);
        for (int s = 0; s < 3; s++)
            foreach (var h in beams[s])
                Assert.Equal(ensemble.LogProbability(Sources.AsSpan(s * 5, 5), 5, h.Tokens), h.LogProb, LogProbAbs);
        Assert.Equal(["member0", "member1"], ensemble.NamedChildren().Select(c => c.Name));
        Assert.Equal(members.Sum(m => ((Module)m).ParameterCount()), ensemble.ParameterCount());
    }

    /// <summary>
    /// The ensemble's loss reads on its members' scale: one model alone gives its own label-smoothed loss (ε = 0.1), and
    /// members that smooth differently (a Transformer at 0.1, an LSTM at 0) give the plain negative log-likelihood.
    /// </summary>
    [Fact]
    public void TheLossIsSmoothedAsTheMembersAre()
    {
        int[] input = [Bos, 3, 4, 5, 6, 7, Bos, 8, 9, 10, 11, 3, Bos, 5, 5, 5, 5, 5];
        int[] labels = [3, 4, 5, 6, 7, Eos, 8, 9, 10, 11, Eos, Pad, 5, 5, 5, Eos, Pad, Pad];
        var model = Transformer(3);
        model.Eval();
        var alone = new Seq2SeqEnsemble([model]);
        Assert.Equal(0.1f, alone.LabelSmoothing);
        using (AttentionSharp.Autograd.GradMode.NoGrad())
        {
            float own = model.Loss(model.Forward(Sources, 5, input, 6, 3), labels).Item();
            Assert.Equal(own, alone.Loss(alone.Forward(Sources, 5, input, 6, 3), labels).Item(), 1e-5);
        }

        var mixed = new Seq2SeqEnsemble([Transformer(4), Lstm(5)]);
        Assert.Equal(0f, mixed.LabelSmoothing);
        var logProbs = mixed.Forward(Sources, 5, input, 6, 3);
        var lp = logProbs.ToArray();
        var scored = labels.Select((label, row) => (label, row)).Where(x => x.label != Pad).ToArray();
        double nll = scored.Average(x => -lp[x.row * Vocab + x.label]);
        Assert.Equal(nll, mixed.Loss(logProbs, labels).Item(), 1e-5);
    }

    [Fact]
    public void MembersThatCannotDecodeTogetherAreRefused()
    {
        Assert.Contains("at least one model", Assert.Throws<ArgumentException>(() => new Seq2SeqEnsemble([])).Message);
        var other = new EncoderDecoder(EncoderDecoderConfig.Small(Vocab + 1) with
        {
            Width = 32,
            Heads = 4,
            FeedForwardWidth = 64,
        }, new Generator(1));
        var e = Assert.Throws<ArgumentException>(() => new Seq2SeqEnsemble([Transformer(1), other]));
        Assert.Contains("Model 1 of the ensemble has 13 target ids", e.Message);
        Assert.Contains("where model 0 has 12", e.Message);
        e = Assert.Throws<ArgumentException>(() => new Seq2SeqEnsemble([Transformer(1), new Seq2SeqEnsemble([Transformer(2)])]));
        Assert.Contains("Model 1 of the ensemble (Seq2SeqEnsemble) cannot decode step by step", e.Message);
    }

    static double[] Softmax(ReadOnlySpan<float> x)
    {
        double max = double.NegativeInfinity;
        foreach (var v in x) max = Math.Max(max, v);
        var e = new double[x.Length];
        double sum = 0;
        for (int i = 0; i < x.Length; i++) sum += e[i] = Math.Exp(x[i] - max);
        for (int i = 0; i < x.Length; i++) e[i] /= sum;
        return e;
    }
}
