using AttentionSharp.Data;

namespace AttentionSharp.Tests.Data;

/// <summary>The word vocabulary and the tagging dataset on a tiny hand-written tagged corpus.</summary>
public class TaggingDatasetTests
{
    internal static readonly BrownDocument[] Tiny =
    [
        BrownCorpus.Parse("ca01", "news", "The/at dog/nn barks/vbz ./.\nA/at cat/nn sleeps/vbz ./.\n"),
        BrownCorpus.Parse("ca02", "news", "The/at-tl Cat/nn-tl barks/vbz loudly/rb ./.\n"),
    ];

    [Fact]
    public void VocabularyKeepsFrequentLowercasedWordsAfterPadAndUnknown()
    {
        var vocabulary = WordVocabulary.Build(Tiny.SelectMany(d => d.Sentences).SelectMany(s => s).Select(w => w.Word), minCount: 2);
        // Counts: . 3; the 2, cat 2, barks 2; the rest once. Most frequent first, ties in ordinal order.
        Assert.Equal(["<pad>", "<unk>", ".", "barks", "cat", "the"], vocabulary.Words);
        Assert.Equal(5, vocabulary.Id("THE"));
        Assert.Equal(WordVocabulary.Unknown, vocabulary.Id("dog"));
        Assert.Equal(WordVocabulary.Unknown, vocabulary.Id("<pad>"));
        var back = WordVocabulary.FromJson(vocabulary.ToJson(), "test");
        Assert.Equal(vocabulary.Words, back.Words);
        Assert.Throws<DataSourceException>(() => WordVocabulary.FromJson("{\"type\": \"char\"}", "test"));
    }

    [Fact]
    public void DatasetMapsWordsAndTagsAndMarksUnseenWords()
    {
        var vocabulary = WordVocabulary.Build(Tiny.SelectMany(d => d.Sentences).SelectMany(s => s).Select(w => w.Word), minCount: 2);
        var seen = TaggingDataset.WordSet([Tiny[0]]);
        var data = TaggingDataset.Build([Tiny[1]], vocabulary, seen, maxLength: 16);
        var s = Assert.Single(data.Sentences);
        Assert.Equal([5, 4, 3, WordVocabulary.Unknown, 2], s.Words);
        int Tag(string t) => UniversalTags.Id(t);
        Assert.Equal([Tag("DET"), Tag("NOUN"), Tag("VERB"), Tag("ADV"), Tag(".")], s.Tags);
        Assert.Equal([false, false, false, true, false], s.Unseen);   // only "loudly" is missing from ca01
        Assert.Equal(5, data.WordCount);
    }

    [Fact]
    public void LongSentencesAreCutIntoPiecesThatCoverEveryWord()
    {
        var vocabulary = WordVocabulary.Build([], minCount: 1);
        var data = TaggingDataset.Build(Tiny, vocabulary, new HashSet<string>(), maxLength: 2);
        Assert.Equal([2, 2, 2, 2, 2, 2, 1], data.Sentences.Select(s => s.Length));
        Assert.Equal(13, data.WordCount);
    }

    [Fact]
    public void BatchesPadIdsAndIgnoreLabelsPastTheSentenceEnd()
    {
        var data = TaggingDataset.FromSentences(
        [
            new TaggedSentence([4, 5, 6], [0, 1, 2], [false, true, false]),
            new TaggedSentence([7], [3], [true]),
            new TaggedSentence([8, 9], [4, 5], [false, false]),
        ]);
        var batches = data.Batches(2).ToArray();
        Assert.Equal(2, batches.Length);
        var first = batches[0];                               // by length: [7], [8, 9]
        Assert.Equal((2, 2), (first.Batch, first.Time));
        Assert.Equal([7, WordVocabulary.Pad, 8, 9], first.Ids);
        Assert.Equal([3, TaggingDataset.IgnoreLabel, 4, 5], first.Labels);
        Assert.Equal([true, false, false, false], first.Unseen);
        Assert.Equal((1, 3), (batches[1].Batch, batches[1].Time));
        var shuffled = data.Batches(1, new Generator(5)).Select(b => b.Ids[0]).Order();
        Assert.Equal([4, 7, 8], shuffled);                    // every sentence once per epoch
    }
}
