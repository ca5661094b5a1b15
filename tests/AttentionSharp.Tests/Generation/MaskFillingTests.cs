using AttentionSharp.Autograd;
using AttentionSharp.Generation;
using AttentionSharp.Models;

namespace AttentionSharp.Tests.Generation;

/// <summary>
/// MaskFilling.Fill against its rule written plainly: the whole sequence's MLM logits, each masked position's softmax in
/// double, every accepted id sorted by probability (ties by id), the first k.
/// </summary>
public class MaskFillingTests
{
    const int Vocab = 23, Mask = 3;

    static Bert Model() => new(new BertConfig
    {
        VocabSize = Vocab, MaxPositions = 16, TypeVocabSize = 2, Layers = 2, Heads = 2, Width = 16, IntermediateSize = 24,
        Dropout = 0.3f, AttentionDropout = 0.3f,
    }, new Generator(5));

    static (int Id, double P)[] Plain(Bert model, int[] ids, int position, int k, Func<int, bool> accepted)
    {
        model.Eval();
        float[] logits;
        using (GradMode.NoGrad())
        using (TensorScope.Begin())
            logits = model.MlmLogits(model.Forward(ids, 1, ids.Length)).ToArray();         // (1, T, V)
        var z = logits.AsSpan(position * Vocab, Vocab).ToArray().Select(v => (double)v).ToArray();
        double max = z.Max(), total = z.Sum(v => Math.Exp(v - max));
        return [.. Enumerable.Range(0, Vocab).Where(accepted).Select(id => (id, Math.Exp(z[id] - max) / total))
            .OrderByDescending(c => c.Item2).ThenBy(c => c.id).Take(k)];
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(Vocab)]
    [InlineData(100)]
    public void TheMostProbableAcceptedIdsInOrder(int k)
    {
        var model = Model();
        int[] ids = [0, 7, Mask, 9, 11, Mask, Mask, 4];
        int[] positions = [2, 5, 6];
        Func<int, bool> accepted = id => id > Mask && id % 5 != 0;
        // Dropout is switched off by Fill: a model left in training mode gives the same candidates twice.
        model.Train();
        var fills = MaskFilling.Fill(model, ids, positions, k, accepted);
        model.Train();
        Assert.Equal(fills.Select(f => f.Select(c => c.Id)),
            MaskFilling.Fill(model, ids, positions, k, accepted).Select(f => f.Select(c => c.Id)));
        Assert.Equal(positions.Length, fills.Length);
        for (int n = 0; n < positions.Length; n++)
        {
            var plain = Plain(model, ids, positions[n], k, accepted);
            Assert.Equal(plain.Select(c => c.Id), fills[n].Select(c => c.Id));
            for (int i = 0; i < plain.Length; i++) Assert.Equal(plain[i].P, fills[n][i].Probability, 1e-6);
        }
        // Without a filter every id competes, and the probabilities of all of them sum to one.
        var all = MaskFilling.Fill(model, ids, [2], Vocab);
        Assert.Equal(Vocab, all[0].Length);
        Assert.Equal(1.0, all[0].Sum(c => (double)c.Probability), 1e-5);
        Assert.Equal(Plain(model, ids, 2, Vocab, _ => true).Select(c => c.Id), all[0].Select(c => c.Id));
    }

    [Fact]
    public void RejectsWhatItCannotFill()
    {
        var model = Model();
        Assert.Throws<ArgumentException>(() => MaskFilling.Fill(model, [], [0], 5));
        Assert.Throws<ArgumentException>(() => MaskFilling.Fill(model, [Mask, 5], [], 5));
        Assert.Contains("outside the 2 tokens",
            Assert.Throws<ArgumentOutOfRangeException>(() => MaskFilling.Fill(model, [Mask, 5], [2], 5)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => MaskFilling.Fill(model, [Mask, 5], [0], 0));
    }
}
