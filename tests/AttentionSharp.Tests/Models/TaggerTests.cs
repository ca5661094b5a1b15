using AttentionSharp.Data;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Data;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Tests.Models;

/// <summary>The taggers learn the tiny corpus; accuracy overall and on unseen words on a hand-made example.</summary>
public class TaggerTests
{
    static TaggingDataset TinyData(out int vocabSize) => TinyData(out vocabSize, out _);

    static TaggingDataset TinyData(out int vocabSize, out int featureCount)
    {
        var vocabulary = WordVocabulary.Build(TaggingDatasetTests.Tiny.SelectMany(d => d.Sentences).SelectMany(s => s).Select(w => w.Word), minCount: 1);
        vocabSize = vocabulary.Count;
        featureCount = vocabulary.Features.Count;
        return TaggingDataset.Build(TaggingDatasetTests.Tiny, vocabulary, TaggingDataset.WordSet(TaggingDatasetTests.Tiny), maxLength: 16);
    }

    static readonly TrainOptions FewSteps = new() { Steps = 30, Batch = 3, LearningRate = 2e-2f, WarmupSteps = 0, EvalInterval = 0, WeightDecay = 0f };

    static void AssertTrainingLowersLoss(Module model, Func<TaggingBatch, Tensor> logits, TaggingDataset data)
    {
        var trainer = new Trainer(model, model.Parameters().Select(p => (p, p.Rank >= 2)), new TaggingBatches(data, logits, 3, 1, 7), FewSteps);
        var (before, _) = TaggerEvaluation.Evaluate(model, logits, data.Batches(3));
        trainer.Run(_ => { }, _ => { }, CancellationToken.None);
        var (after, accuracy) = TaggerEvaluation.Evaluate(model, logits, data.Batches(3));
        Assert.Equal(FewSteps.Steps, trainer.Step);
        Assert.True(after < 0.5f * before, $"loss before {before}, after {after}: expected at least halved");
        Assert.Equal(13, accuracy.Total);
    }

    [Fact]
    public void BertTaggerLearnsTheTinyCorpus()
    {
        var data = TinyData(out int vocabSize);
        var model = new Bert(new BertConfig
        {
            VocabSize = vocabSize, MaxPositions = 16, TypeVocabSize = 1, Layers = 1, Heads = 2, Width = 16, IntermediateSize = 32,
            Dropout = 0f, AttentionDropout = 0f, NumLabels = UniversalTags.Count,
        }, new Generator(1));
        AssertTrainingLowersLoss(model, b => model.TagLogits(model.Forward(b.Ids, b.Batch, b.Time)), data);
    }

    [Fact]
    public void BertTaggerWithSpellingFeaturesLearnsTheTinyCorpus()
    {
        var data = TinyData(out int vocabSize, out int featureCount);
        var model = new Bert(new BertConfig
        {
            VocabSize = vocabSize, MaxPositions = 16, TypeVocabSize = 1, Layers = 1, Heads = 2, Width = 16, IntermediateSize = 32,
            Dropout = 0f, AttentionDropout = 0f, NumLabels = UniversalTags.Count, FeatureVocabSize = featureCount,
            FeatureSlots = WordFeatures.DefaultKinds.Count,
        }, new Generator(1));
        Assert.Contains(model.NamedParameters(), p => p.Name == "embeddings.feature_embeddings.weight");
        AssertTrainingLowersLoss(model, b => model.TagLogits(model.Forward(b.Ids, b.Batch, b.Time, features: b.Features)), data);
        Assert.Throws<ArgumentException>(() => model.Forward([3, 4], 1, 2));   // the features are required
    }

    [Fact]
    public void BertLearnsMaskedWordsOfTheTinyCorpus()
    {
        var data = TinyData(out int vocabSize);
        var model = new Bert(new BertConfig
        {
            VocabSize = vocabSize, MaxPositions = 16, TypeVocabSize = 1, Layers = 1, Heads = 2, Width = 16, IntermediateSize = 32,
            Dropout = 0f, AttentionDropout = 0f,
        }, new Generator(4));
        Tensor Logits(TaggingBatch b) => model.MlmLogits(MaskedWords.Gather(model.Forward(b.Ids, b.Batch, b.Time), b));
        var rng = new Generator(5);
        // Every word masked, so the fixed evaluation batches and the training draws score the same thing.
        var batches = new TaggingBatches(data, Logits, 3, 1, 7, b => MaskedWords.Mask(b, vocabSize, rng, probability: 1f));
        var trainer = new Trainer(model, model.Parameters().Select(p => (p, p.Rank >= 2)), batches, FewSteps with { Steps = 60, LearningRate = 1e-2f });
        var evaluation = data.Batches(3).Select(b => MaskedWords.Mask(b, vocabSize, new Generator(6), probability: 1f)).ToList();
        var (before, _) = TaggerEvaluation.Evaluate(model, Logits, evaluation);
        trainer.Run(_ => { }, _ => { }, CancellationToken.None);
        var (after, accuracy) = TaggerEvaluation.Evaluate(model, Logits, evaluation);
        Assert.True(after < 0.7f * before, $"masked-word loss before {before}, after {after}");
        Assert.Equal(13, accuracy.Total);
    }

    [Theory]
    [InlineData("rnn")]
    [InlineData("lstm")]
    [InlineData("gru")]
    public void RecurrentTaggerLearnsTheTinyCorpus(string cell)
    {
        var data = TinyData(out int vocabSize, out int featureCount);
        var model = new RecurrentTagger(new RecurrentTaggerConfig
        {
            Cell = cell, VocabSize = vocabSize, EmbeddingSize = 16, HiddenSize = 16, Layers = 1, NumLabels = UniversalTags.Count,
            FeatureVocabSize = featureCount, FeatureSlots = WordFeatures.DefaultKinds.Count,
        }, new Generator(2));
        AssertTrainingLowersLoss(model, b => model.Forward(b.Ids, b.Batch, b.Time, b.Features), data);
    }

    [Fact]
    public void RecurrentTaggerShapesAndConfigRoundTrip()
    {
        var config = new RecurrentTaggerConfig { Cell = "gru", VocabSize = 10, EmbeddingSize = 4, HiddenSize = 3, Layers = 2, NumLabels = 5, Dropout = 0.25f };
        // Through text, as a checkpoint's config.json is read.
        Assert.Equal(config, RecurrentTaggerConfig.FromJson((System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(config.ToJson().ToJsonString())!));
        var model = new RecurrentTagger(config, new Generator(3));
        var logits = model.Forward([1, 2, 3, 4, 5, 0], 2, 3);
        Assert.Equal([2, 3, 5], logits.Shape);
        Assert.Contains(model.NamedParameters(), p => p.Name == "gru.weight_hh_l1_reverse");
        Assert.Throws<ArgumentException>(() => model.Forward([1, 2, 3], 2, 3));
        Assert.Throws<ArgumentException>(() => model.Forward([1, 2, 3, 4, 5, 0], 2, 3, new int[24]));   // no feature table
        Assert.Throws<ArgumentException>(() => (config with { HiddenSize = 0 }).Validate());
        var e = Assert.Throws<ArgumentException>(() => (config with { Cell = "transformer" }).Validate());
        Assert.Contains("rnn, lstm, gru", e.Message);
        Assert.Throws<ArgumentException>(() => (config with { FeatureVocabSize = 7 }).Validate());
    }

    [Fact]
    public void AccuracyCountsOverallAndUnseenAndSkipsPadding()
    {
        // Four positions, three tags: predictions (arg-max) 2, 0, 1, 1; the last position is padding.
#pragma warning disable format
        float[] logits = [0, 1, 5,   3, 1, 2,   0, 4, 1,   0, 9, 0];
#pragma warning restore format
        int[] labels = [2, 1, 1, TaggingDataset.IgnoreLabel];
        bool[] unseen = [true, true, false, true];
        var a = new TagAccuracy();
        a.Add(logits, labels, unseen);
        Assert.Equal((2L, 3L), (a.Correct, a.Total));
        Assert.Equal((1L, 2L), (a.UnseenCorrect, a.UnseenTotal));
        Assert.Equal(2 / 3.0, a.Accuracy, 12);
        Assert.Equal(0.5, a.UnseenAccuracy, 12);
        Assert.True(double.IsNaN(new TagAccuracy().Accuracy));
        Assert.Throws<ArgumentException>(() => a.Add(logits, labels, [true]));
    }
}
