using System.Text.Json.Nodes;
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
    public void VocabularyKeepsFrequentLowercasedWordsAfterPadUnknownAndMask()
    {
        var vocabulary = WordVocabulary.Build(Tiny.SelectMany(d => d.Sentences).SelectMany(s => s).Select(w => w.Word), minCount: 2);
        // Counts: . 3; the 2, cat 2, barks 2; the rest once. Most frequent first, ties in ordinal order.
        Assert.Equal(["<pad>", "<unk>", "<mask>", ".", "barks", "cat", "the"], vocabulary.Words);
        Assert.Equal(6, vocabulary.Id("THE"));
        Assert.Equal(WordVocabulary.Unknown, vocabulary.Id("dog"));
        Assert.Equal(WordVocabulary.Unknown, vocabulary.Id("<pad>"));
        Assert.Equal(WordVocabulary.Unknown, vocabulary.Id("<mask>"));
        var back = WordVocabulary.FromJson(vocabulary.ToJson(), "test");
        Assert.Equal(vocabulary.Words, back.Words);
        Assert.True(back.SameAs(vocabulary));
        Assert.False(WordVocabulary.Build(["the", "the", "cat"], minCount: 1).SameAs(vocabulary));
        Assert.Throws<DataSourceException>(() => WordVocabulary.FromJson("{\"type\": \"char\"}", "test"));
        Assert.Throws<DataSourceException>(() => WordVocabulary.FromJson("{\"type\": \"words\", \"words\": [\"<pad>\", \"<unk>\", \"the\"], \"features\": [\"<none>\"]}", "test"));
    }

    [Fact]
    public void DatasetMapsWordsAndTagsAndMarksUnseenWords()
    {
        var vocabulary = WordVocabulary.Build(Tiny.SelectMany(d => d.Sentences).SelectMany(s => s).Select(w => w.Word), minCount: 2);
        var seen = TaggingDataset.WordSet([Tiny[0]]);
        var data = TaggingDataset.Build([Tiny[1]], vocabulary, seen, maxLength: 16);
        var s = Assert.Single(data.Sentences);
        Assert.Equal([6, 5, 4, WordVocabulary.Unknown, 3], s.Words);
        int Tag(string t) => UniversalTags.Id(t);
        Assert.Equal([Tag("DET"), Tag("NOUN"), Tag("VERB"), Tag("ADV"), Tag(".")], s.Tags);
        Assert.Equal([false, false, false, true, false], s.Unseen);   // only "loudly" is missing from ca01
        Assert.Equal(5, data.WordCount);
        // Eight spelling features per word, the shape last; "loudly" is unknown as a word but its shape "x" is known.
        int slots = vocabulary.Features.Slots, shape = slots - 1;
        Assert.Equal(WordFeatures.DefaultKinds, vocabulary.Features.Kinds);
        Assert.Equal(5 * slots, s.Features.Length);
        var loudly = s.Features.AsSpan(3 * slots, slots).ToArray();
        var shapeX = new int[slots];
        vocabulary.Features.Write("dog", shapeX);
        Assert.Equal(shapeX[shape], loudly[shape]);
        Assert.NotEqual(WordFeatures.None, loudly[shape]);
    }

    [Fact]
    public void WordShapesAndSuffixes()
    {
        Assert.Equal("XxXx", WordFeatures.Shape("McDonald"));
        Assert.Equal("d,d.d", WordFeatures.Shape("1,250.5"));
        Assert.Equal("x-x", WordFeatures.Shape("e-mail"));
        Assert.Equal("X", WordFeatures.Shape("NATO"));
        Assert.Equal<IEnumerable<string?>>(["s1:g", "s2:ng", "s3:ing", "s4:ning", "p1:r", "p2:ru", "p3:run", "shape:Xx"],
            WordFeatures.Describe("Running", WordFeatures.DefaultKinds));
        Assert.Equal<IEnumerable<string?>>([null, null, null, null, null, null, null, "shape:x"],
            WordFeatures.Describe("a", WordFeatures.DefaultKinds));
        // A prefix or suffix needs a letter left over: "sing" has s3 and p3 but no s4.
        Assert.Equal<IEnumerable<string?>>(["s3:ing", null, "p3:sin"], WordFeatures.Describe("sing", ["s3", "s4", "p3"]));
        // Seen five times: "-ing" endings and the shape x; "-ed" only once, so it has no id.
        var features = WordFeatures.Build(["running", "sing", "thing", "king", "ring", "jumped"], minCount: 5,
            kinds: WordFeatures.SuffixKinds);
        var ids = new int[features.Slots];
        features.Write("walking", ids);
        Assert.All(ids.Skip(1), id => Assert.NotEqual(WordFeatures.None, id));
        features.Write("walked", ids);
        Assert.Equal([WordFeatures.None, WordFeatures.None, WordFeatures.None], ids[..3]);
        Assert.Throws<ArgumentException>(() => features.Write("x", new int[2]));
    }

    [Fact]
    public void FeatureKindsRoundTripAndOlderVocabulariesReadAsSuffixes()
    {
        string[] words = ["unkind", "untie", "undo", "unfit", "until", "Unless"];
        var features = WordFeatures.Build(words, minCount: 5);
        Assert.Contains("p2:un", features.Names);
        Assert.DoesNotContain("p3:unk", features.Names);   // seen once
        var back = WordFeatures.FromJson(features.ToJson(), features.KindsToJson(), "test");
        Assert.Equal(features.Names, back.Names);
        Assert.Equal(features.Kinds, back.Kinds);
        // A list written before kinds were named: the classic three suffixes and the shape.
        var suffixes = WordFeatures.Build(words, minCount: 5, kinds: WordFeatures.SuffixKinds);
        Assert.Equal(WordFeatures.SuffixKinds, WordFeatures.FromJson(suffixes.ToJson(), null, "old").Kinds);
        // A name of a kind the list does not have, a kind twice, or an unknown kind: refused by name.
        var wrong = Assert.Throws<DataSourceException>(() => WordFeatures.FromJson(features.ToJson(), null, "mixed"));
        Assert.Contains("'p1:u'", wrong.Message);   // the first name of a prefix kind, in id order
        Assert.StartsWith("mixed:", wrong.Message);
        Assert.Contains("twice", Assert.Throws<DataSourceException>(
            () => WordFeatures.Build(words, 5, ["s1", "s1"])).Message);
        Assert.Contains("'x3'", Assert.Throws<DataSourceException>(
            () => WordFeatures.FromJson(suffixes.ToJson(), new JsonArray("s1", "x3"), "bad")).Message);
        // A whole vocabulary keeps its kinds through tokenizer.json, and one without "feature_kinds" reads as suffixes.
        var vocabulary = WordVocabulary.Build(words.Concat(words), minCount: 1);
        Assert.Equal(vocabulary.Features.Kinds, WordVocabulary.FromJson(vocabulary.ToJson(), "v").Features.Kinds);
        var old = JsonNode.Parse(WordVocabulary.Build(words, 1).ToJson())!.AsObject();
        old.Remove("feature_kinds");
        old["features"] = suffixes.ToJson();
        Assert.Equal(WordFeatures.SuffixKinds, WordVocabulary.FromJson(old.ToJsonString(), "old").Features.Kinds);
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
        Assert.Empty(first.Features);
    }

    [Fact]
    public void BatchFeaturesArePaddedWithNone()
    {
        var vocabulary = WordVocabulary.Build(Tiny.SelectMany(d => d.Sentences).SelectMany(s => s).Select(w => w.Word), minCount: 1);
        var data = TaggingDataset.FromSentences([TaggingDataset.Untagged(["The", "cat"], vocabulary), TaggingDataset.Untagged(["Dogs"], vocabulary)]);
        var batch = data.Batches(2).Single();
        int slots = vocabulary.Features.Slots;
        Assert.Equal(2 * 2 * slots, batch.Features.Length);
        Assert.Equal(new int[slots], batch.Features[(1 * slots)..(2 * slots)]);   // "Dogs" row, padding after it
        Assert.All(batch.Labels, l => Assert.Equal(TaggingDataset.IgnoreLabel, l));
        Assert.Equal([WordVocabulary.Unknown, WordVocabulary.Pad], batch.Ids[..2]);   // sorted by length: "Dogs" first
    }
}
