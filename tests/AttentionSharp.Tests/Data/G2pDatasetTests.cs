using AttentionSharp.Data;

namespace AttentionSharp.Tests.Data;

/// <summary>G2P ids and batches: the alphabet's errors, batches of one source length, BOS/EOS placement.</summary>
public class G2pDatasetTests
{
    static readonly G2pVocabulary Vocabulary = G2pVocabulary.ForCmuDict(keepStress: false);

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
        var entries = new[]
        {
            new CmuEntry("cat", [["K", "AE", "T"]]),
            new CmuEntry("dog", [["D", "AO", "G"], ["D", "AA", "G"]]),
            new CmuEntry("a", [["AH"], ["EY"]]),
            new CmuEntry("ox", [["AA", "K", "S"]]),
        };
        var data = new G2pDataset(entries, Vocabulary);
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
}
