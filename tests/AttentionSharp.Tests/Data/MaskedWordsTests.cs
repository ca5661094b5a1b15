using AttentionSharp.Data;
using AttentionSharp.Models;

namespace AttentionSharp.Tests.Data;

/// <summary>Masked-word batches: BERT's 15 % and 80/10/10 proportions, special ids left alone, and the gather of the chosen positions.</summary>
public class MaskedWordsTests
{
    [Fact]
    public void MaskingChoosesFifteenPercentAndCorruptsEightyTenTen()
    {
        const int vocab = 50, batch = 40, time = 250;
        var rng = new Generator(7);
        var ids = new int[batch * time];
        for (int i = 0; i < ids.Length; i++) ids[i] = i % 17 == 0 ? WordVocabulary.Pad : i % 23 == 0 ? WordVocabulary.Unknown : 3 + rng.NextInt(vocab - 3);
        var plain = new TaggingBatch(ids, new int[ids.Length], new bool[ids.Length], batch, time);
        var masked = MaskedWords.Mask(plain, vocab, new Generator(8));

        int words = ids.Count(id => id > WordVocabulary.Mask);
        int chosen = masked.Positions.Length;
        Assert.Equal(chosen, masked.Labels.Length);
        Assert.Equal(chosen, masked.Unseen.Length);
        // 15 % of about 8,300 words: a standard deviation of about 33, so ±150 is over four of them.
        Assert.InRange(chosen, 0.15 * words - 150, 0.15 * words + 150);
        int toMask = 0, kept = 0, replaced = 0;
        for (int k = 0; k < chosen; k++)
        {
            int p = masked.Positions[k];
            Assert.Equal(ids[p], masked.Labels[k]);
            Assert.True(ids[p] > WordVocabulary.Mask, $"position {p} holds the special id {ids[p]} yet was chosen");
            if (masked.Ids[p] == WordVocabulary.Mask) toMask++;
            else if (masked.Ids[p] == ids[p]) kept++;
            else { replaced++; Assert.True(masked.Ids[p] > WordVocabulary.Mask, $"replacement {masked.Ids[p]} is a special id"); }
        }
        Assert.InRange(toMask / (double)chosen, 0.75, 0.85);
        Assert.InRange((kept + replaced) / (double)chosen, 0.15, 0.25);
        Assert.True(replaced > 0.5 * kept, $"random replacements {replaced}, kept {kept}: expected about as many");  // a replacement may draw the word itself
        var chosenSet = masked.Positions.ToHashSet();
        for (int i = 0; i < ids.Length; i++)
            if (!chosenSet.Contains(i)) Assert.Equal(ids[i], masked.Ids[i]);
    }

    [Fact]
    public void AtLeastOneWordIsChosenAndABatchWithoutWordsIsAnError()
    {
        var one = new TaggingBatch([WordVocabulary.Pad, 5], new int[2], new bool[2], 1, 2);
        for (ulong seed = 0; seed < 20; seed++)
            Assert.Equal([1], MaskedWords.Mask(one, 10, new Generator(seed)).Positions);
        var none = new TaggingBatch([WordVocabulary.Pad, WordVocabulary.Unknown], new int[2], new bool[2], 1, 2);
        Assert.Throws<ArgumentException>(() => MaskedWords.Mask(none, 10, new Generator(1)));
    }

    [Fact]
    public void GatherPicksTheChosenRowsAndSendsTheGradientBack()
    {
        var hidden = Tensor.FromArray([.. Enumerable.Range(0, 2 * 3 * 2).Select(i => (float)i)], 2, 3, 2);   // (B, T, C)
        hidden.RequiresGrad = true;
        var batch = new TaggingBatch(new int[6], [0, 0], new bool[2], 2, 3) { Positions = [4, 1] };
        var picked = MaskedWords.Gather(hidden, batch);
        Assert.Equal([2, 2], picked.Shape);
        Assert.Equal([8f, 9, 2, 3], picked.ToArray());
        picked.Sum().Backward();
        Assert.Equal([0f, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0], hidden.Grad!.ToArray());
    }
}
