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

    [Fact]
    public void RareWordsAreDroppedMoreOftenAndAUniformRateDropsTheSameWordsAsBefore()
    {
        // Ids 3, 4 and 5 seen 1, 9 and 99 times in training (and one <unk>).
        int[] sentence = [3, .. Enumerable.Repeat(4, 9), .. Enumerable.Repeat(5, 99), WordVocabulary.Unknown];
        var train = TaggingDataset.FromSentences(
            [new TaggedSentence(sentence, new int[sentence.Length], new bool[sentence.Length])]);
        var p = WordDropout.Probabilities(train, vocabularySize: 7, uniform: 0f, rareAlpha: 1f)!;
        Assert.Equal([0f, 0f, 0f, 1f / 2, 1f / 10, 1f / 100, 1f], p);   // α/(α+n); id 6 never seen; specials never dropped
        // Both at once: one draw with 1 − (1 − u)(1 − r).
        var both = WordDropout.Probabilities(train, 7, uniform: 0.2f, rareAlpha: 1f)!;
        Assert.Equal(1 - 0.8f * 0.5f, both[3], 6);
        Assert.Equal(0f, both[WordVocabulary.Unknown]);
        Assert.Null(WordDropout.Probabilities(train, 7, 0f, 0f));

        // A rate the same for every id draws and drops exactly as the uniform form.
        var plain = Batch(out var ids);
        var uniform = WordDropout.Probabilities(TaggingDataset.FromSentences([]), 503, 0.15f, 0f)!;
        Assert.Equal(WordDropout.Apply(plain, 0.15f, new Generator(8)).Ids,
            WordDropout.Apply(plain, uniform, new Generator(8)).Ids);

        // Rare ids go more often than frequent ones: ids 3-252 at α/(α+1) = 0.5, ids 253-502 at α/(α+1000).
        var rare = new float[503];
        for (int id = 3; id < 503; id++) rare[id] = id < 253 ? 0.5f : 1f / 1001;
        var dropped = WordDropout.Apply(plain, rare, new Generator(2));
        double Share(Func<int, bool> which)
        {
            var at = Enumerable.Range(0, ids.Length).Where(i => ids[i] > WordVocabulary.Mask && which(ids[i])).ToArray();
            return at.Count(i => dropped.Ids[i] == WordVocabulary.Unknown) / (double)at.Length;
        }
        Assert.InRange(Share(id => id < 253), 0.45, 0.55);   // about 4,450 words: a standard deviation of 0.0075
        Assert.InRange(Share(id => id >= 253), 0, 0.005);
        Assert.Throws<ArgumentException>(() => WordDropout.Apply(plain, new float[10], new Generator(2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => WordDropout.Probabilities(train, 7, 0f, float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => WordDropout.Probabilities(train, 7, 1f, 0f));
        Assert.Throws<ArgumentException>(() => WordDropout.Probabilities(train, 4, 0f, 1f));   // id 5 outside
    }
}
