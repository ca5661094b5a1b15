using AttentionSharp.Data;

namespace AttentionSharp.Tests.Data;

/// <summary>
/// Word dropout: the share of words read as &lt;unk&gt;, special ids untouched, everything else kept, the same draws
/// from the same state.
/// </summary>
public class WordDropoutTests
{
    static TaggingBatch Batch(out int[] ids)
    {
        const int batch = 40, time = 250;
        var rng = new Generator(3);
        ids = new int[batch * time];
        for (int i = 0; i < ids.Length; i++)
            ids[i] = i % 13 == 0 ? WordVocabulary.Pad : i % 29 == 0 ? WordVocabulary.Unknown : 3 + rng.NextInt(500);
        var labels = ids.Select(id => id % 12).ToArray();
        return new TaggingBatch(ids, labels, new bool[ids.Length], batch, time) { Features = [.. ids.Select(id => id * 2)] };
    }

    [Fact]
    public void DropsTheGivenShareOfWordsAndNothingElse()
    {
        var plain = Batch(out var ids);
        var dropped = WordDropout.Apply(plain, 0.1f, new Generator(9));
        int words = ids.Count(id => id > WordVocabulary.Mask), unk = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] <= WordVocabulary.Mask) Assert.Equal(ids[i], dropped.Ids[i]);   // padding and <unk> as they were
            else if (dropped.Ids[i] == WordVocabulary.Unknown) unk++;
            else Assert.Equal(ids[i], dropped.Ids[i]);
        }
        // 10 % of about 8,900 words: a standard deviation of about 28, so ±130 is over four of them.
        Assert.InRange(unk, 0.1 * words - 130, 0.1 * words + 130);
        Assert.Equal(ids, plain.Ids);   // the original batch is not changed
        Assert.Same(plain.Labels, dropped.Labels);
        Assert.Same(plain.Features, dropped.Features);
        Assert.Equal((plain.Batch, plain.Time), (dropped.Batch, dropped.Time));
    }

    [Fact]
    public void TheSameGeneratorStateDropsTheSameWordsAndZeroDropsNone()
    {
        var plain = Batch(out _);
        Assert.Equal(WordDropout.Apply(plain, 0.2f, new Generator(4)).Ids, WordDropout.Apply(plain, 0.2f, new Generator(4)).Ids);
        Assert.NotEqual(WordDropout.Apply(plain, 0.2f, new Generator(4)).Ids,
            WordDropout.Apply(plain, 0.2f, new Generator(5)).Ids);
        Assert.Same(plain, WordDropout.Apply(plain, 0f, new Generator(4)));
        Assert.Throws<ArgumentOutOfRangeException>(() => WordDropout.Apply(plain, 1f, new Generator(4)));
        Assert.Throws<ArgumentOutOfRangeException>(() => WordDropout.Apply(plain, float.NaN, new Generator(4)));
    }
}
