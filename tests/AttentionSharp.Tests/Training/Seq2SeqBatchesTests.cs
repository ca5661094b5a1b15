using AttentionSharp.Data;
using AttentionSharp.Models;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Tests.Training;

/// <summary>The G2P training loss: each batch's mean over its targets, or per token (<c>--loss-average</c>).</summary>
public class Seq2SeqBatchesTests
{
    [Fact]
    public void PerTokenLossWeighsEveryTargetAlikeWhateverTheBatchOrSliceHolds()
    {
        var vocabulary = G2pVocabulary.ForCmuDict(keepStress: false);
        string[] phones = ["K", "AE", "T", "S"];
        // Eight words of three letters with 1 to 4 phonemes: 2 to 5 targets each with EOS, 3.5 on average.
        var entries = Enumerable.Range(0, 8).Select(i => new CmuEntry($"{(char)('a' + i)}ox", [phones[..(1 + i % 4)]])).ToArray();
        var data = new G2pDataset(entries, vocabulary);
        var model = new EncoderDecoder(EncoderDecoderConfig.Small(vocabulary.TargetSize) with
        {
            SourceVocabSize = vocabulary.SourceSize,
            ShareEmbeddings = false,
            Width = 32,
            Heads = 4,
            FeedForwardWidth = 64,
            EncoderLayers = 1,
            DecoderLayers = 1,
            PadId = G2pVocabulary.PadId,
            BosId = G2pVocabulary.BosId,
            EosId = G2pVocabulary.EosId,
        }, new Generator(1));
        var mean = new Seq2SeqBatches(model, data, 8, 1, seed: 3);
        var perToken = new Seq2SeqBatches(model, data, 8, 1, seed: 3, perToken: true);
        Assert.Equal(8, mean.NextBatch());
        Assert.Equal(8, perToken.NextBatch());
        long targets = perToken.Items(0, 8);
        Assert.Equal(28, targets);
        float whole = mean.Loss(0, 8).Item();
        // 28 targets where 8 words bring 8 × 3.5 on average: the mean itself.
        Assert.Equal(whole, perToken.Loss(0, 8).Item(), 5);

        // A slice of rows (a rank's share) is weighed by its targets: the slices' losses, each times its share of the
        // rows, add up to the whole batch's, though the slices hold different numbers of targets per word.
        float first = perToken.Loss(0, 3).Item(), rest = perToken.Loss(3, 5).Item();
        Assert.NotEqual(perToken.Items(0, 3) * 5, perToken.Items(3, 5) * 3);
        Assert.Equal(whole, (3 * first + 5 * rest) / 8, 5);
        Assert.Equal(mean.Loss(0, 3).Item() * perToken.Items(0, 3) / (3 * 3.5), first, 5);
    }

    [Fact]
    public void TheTransformersPresetAveragesPerTokenAndOldRunsResumeAsTheyTrained()
    {
        var transformer = TaskPresets.For("g2p", "transformer");
        Assert.Equal("token", transformer.LossAverage);
        Assert.Equal("batch", TaskPresets.For("g2p", "lstm").LossAverage);
        Assert.Null(TaskPresets.For("pos", "transformer").LossAverage);
        var batch = transformer with { LossAverage = "batch" };
        Assert.Equal("batch", TrainOptions.FromJson(batch.ToJson(), transformer).LossAverage);
        var before = transformer.ToJson();
        before.Remove("loss_average");                       // a checkpoint saved before the option existed
        Assert.Equal("batch", TrainOptions.FromJson(before, transformer).LossAverage);
        Assert.Equal("--loss-average must be one of batch, token; got 'word'.",
            Assert.Throws<ArgumentException>(() => (transformer with { LossAverage = "word" }).Validate()).Message);
    }

    [Fact]
    public void TheScheduleFloorIsAFractionOfThePeak()
    {
        var transformer = TaskPresets.For("g2p", "transformer");
        Assert.Equal(0.1f, transformer.MinLearningRateRatio);
        Assert.Equal("--min-lr-ratio must be in [0, 1]; got 1.5.",
            Assert.Throws<ArgumentException>(() => (transformer with { MinLearningRateRatio = 1.5f }).Validate()).Message);
    }
}
