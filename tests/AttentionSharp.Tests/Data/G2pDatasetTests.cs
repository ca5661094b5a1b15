using AttentionSharp.Data;

namespace AttentionSharp.Tests.Data;

/// <summary>G2P ids and batches: the alphabet's errors, batches of one source length, BOS/EOS placement.</summary>
public class G2pDatasetTests
{
    static readonly G2pVocabulary Vocabulary = G2pVocabulary.ForCmuDict(keepStress: false);

    /// <summary>Four words of lengths 1–3, two of them with two pronunciations: six examples.</summary>
    static readonly CmuEntry[] Entries =
    [
        new("cat", [["K", "AE", "T"]]),
        new("dog", [["D", "AO", "G"], ["D", "AA", "G"]]),
        new("a", [["AH"], ["EY"]]),
        new("ox", [["AA", "K", "S"]]),
    ];

    [Fact]
    public void AWordOutsideTheAlphabetNamesTheCharacter()
    {
        var e = Assert.Throws<ArgumentException>(() => Vocabulary.EncodeWord("naïve"));
        Assert.Contains("'ï'", e.Message);
        Assert.Contains("position 3", e.Message);
        Assert.Throws<ArgumentException>(() => Vocabulary.EncodeWord(""));
        Assert.Equal(Vocabulary.EncodeWord("abc"), Vocabulary.EncodeWord("ABC"));           // read as lower case
        Assert.Equal([1, 2, 3], Vocabulary.EncodeWord("abc"));
    }

    [Fact]
    public void PhonemesRoundTripAndTheVocabularyThroughJson()
    {
        var ids = Vocabulary.EncodePhonemes(["K", "AE", "T"]);
        Assert.Equal(["K", "AE", "T"], Vocabulary.DecodePhonemes([G2pVocabulary.BosId, .. ids, G2pVocabulary.EosId, ids[0]]));
        var back = G2pVocabulary.FromJson(Vocabulary.ToJson().ToJsonString(), "test");
        Assert.Equal(Vocabulary.Graphemes, back.Graphemes);
        Assert.Equal(Vocabulary.Phonemes, back.Phonemes);
        Assert.Equal(42, Vocabulary.TargetSize);
        Assert.Throws<DataSourceException>(() => G2pVocabulary.FromJson("{\"type\": \"char\"}", "test"));
    }

    [Fact]
    public void BatchesHoldOneSourceLengthWithBosInputsAndEosLabels()
    {
        var data = new G2pDataset(Entries, Vocabulary);
        Assert.Equal(6, data.ExampleCount);
        var batches = data.Batches(2, new Generator(3)).ToList();
        Assert.Equal(6, batches.Sum(b => b.Batch));
        foreach (var b in batches)
        {
            Assert.Equal(b.Batch * b.SourceLength, b.Source.Length);
            Assert.DoesNotContain(G2pVocabulary.PadId, b.Source);
            for (int i = 0; i < b.Batch; i++)
            {
                var input = b.DecoderInput.AsSpan(i * b.TargetLength, b.TargetLength).ToArray();
                var labels = b.Labels.AsSpan(i * b.TargetLength, b.TargetLength).ToArray();
                Assert.Equal(G2pVocabulary.BosId, input[0]);
                int n = Array.IndexOf(labels, G2pVocabulary.EosId);
                Assert.True(n > 0);
                Assert.Equal(input[1..(n + 1)], labels[..n]);                              // labels are the input shifted left
                Assert.All(labels[(n + 1)..], l => Assert.Equal(G2pVocabulary.PadId, l));
            }
        }
        Assert.Equal(batches.Select(b => b.Source), data.Batches(2, new Generator(3)).Select(b => b.Source));   // reproducible
        var wordBatches = data.WordBatches(8).ToList();
        Assert.Equal([1, 2, 3], wordBatches.Select(g => g[0].Source.Length));              // one length a batch, shortest first
        Assert.All(wordBatches, g => Assert.Single(g.Select(w => w.Source.Length).Distinct()));
        Assert.Equal(2, wordBatches[^1].Count);
    }

    /// <summary>
    /// Mixed batches cut every example once an epoch whatever its length: each row's spelling comes first and padding
    /// fills the rest up to the batch's longest, the same rows as grouped batches hold, in another order.
    /// </summary>
    [Fact]
    public void MixedBatchesPadShorterSpellingsAndHoldEveryExampleOnce()
    {
        var data = new G2pDataset([.. Entries, new CmuEntry("zebra", [["Z", "IY", "B", "R", "AH"]])], Vocabulary);
        static List<string> Rows(IEnumerable<G2pBatch> batches) =>
            [.. batches.SelectMany(b => Enumerable.Range(0, b.Batch).Select(i =>
                string.Join(' ', b.Source.AsSpan(i * b.SourceLength, b.SourceLength).ToArray().Where(id => id != 0)) + " | " +
                string.Join(' ', b.Labels.AsSpan(i * b.TargetLength, b.TargetLength).ToArray().Where(id => id != 0))))
                .Order()];
        var mixed = Enumerable.Range(0, 8).SelectMany(seed => data.Batches(3, new Generator((ulong)seed), mixedLengths: true))
            .ToList();
        Assert.Contains(mixed, b => Enumerable.Range(0, b.Batch).Select(i => Array.IndexOf(b.Source, 0, i * b.SourceLength,
            b.SourceLength)).Distinct().Count() > 1);                                      // some batch mixes lengths
        foreach (var b in mixed)
        {
            Assert.Equal(b.Batch * b.SourceLength, b.Source.Length);
            var spellings = Enumerable.Range(0, b.Batch)
                .Select(i => b.Source.AsSpan(i * b.SourceLength, b.SourceLength).ToArray()).ToList();
            Assert.Contains(spellings, s => !s.Contains(G2pVocabulary.PadId));             // the longest sets the length
            foreach (var s in spellings)                                                    // letters, then padding only
            {
                int n = Array.IndexOf(s, G2pVocabulary.PadId);
                if (n >= 0) Assert.All(s[n..], id => Assert.Equal(G2pVocabulary.PadId, id));
            }
        }
        var epoch = data.Batches(3, new Generator(5), mixedLengths: true).ToList();
        Assert.Equal([1, 3, 3], epoch.Select(b => b.Batch).Order());
        Assert.Equal(Rows(data.Batches(3, new Generator(5))), Rows(epoch));
        Assert.Equal(epoch.Select(b => b.Source), data.Batches(3, new Generator(5), mixedLengths: true).Select(b => b.Source));
    }
}
