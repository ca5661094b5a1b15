using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.Models;
using AttentionSharp.Training;

namespace AttentionSharp.Tests.Models;

/// <summary>BERT: MLM corruption statistics, padding invisibility, learning a pattern, the heads, clear errors.</summary>
public class BertTests
{
    const int Pad = 0, Cls = 1, Sep = 2, MaskId = 3;

    static readonly BertConfig Shape = new()
    {
        VocabSize = 16, MaxPositions = 16, Layers = 2, Heads = 2, Width = 32, IntermediateSize = 64, Dropout = 0f, AttentionDropout = 0f,
    };

    [Fact]
    public void MlmMaskingChoosesFifteenPercentAndSplitsThemEightyTenTen()
    {
        var rng = new Generator(3);
        var ids = Enumerable.Range(0, 40_000).Select(i => i % 50 == 0 ? Pad : 4 + rng.NextInt(96)).ToArray();
        var batch = MlmMasking.Mask(ids, vocabSize: 100, MaskId, new Generator(9), specialIds: [Pad, Cls, Sep]);
        int eligible = ids.Count(i => i != Pad), chosen = 0, masked = 0, random = 0, kept = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            if (batch.Labels[i] == Bert.IgnoreIndex) { Assert.Equal(ids[i], batch.Inputs[i]); continue; }
            Assert.NotEqual(Pad, ids[i]);
            Assert.Equal(ids[i], batch.Labels[i]);
            chosen++;
            if (batch.Inputs[i] == MaskId) masked++;
            else if (batch.Inputs[i] == ids[i]) kept++;
            else { random++; Assert.True(batch.Inputs[i] is not (Pad or Cls or Sep), $"special id {batch.Inputs[i]} drawn as a replacement"); }
        }
        // With ~5900 chosen of ~39200, the binomial standard deviations are ~0.2 % (chosen) and ~0.5 % (split); the bounds are 4σ–5σ.
        Assert.InRange(chosen / (double)eligible, 0.14, 0.16);
        Assert.InRange(masked / (double)chosen, 0.78, 0.82);
        Assert.InRange(random / (double)chosen, 0.085, 0.115);
        Assert.InRange(kept / (double)chosen, 0.085, 0.115);
        Assert.Equal(chosen, batch.Chosen);

        var again = MlmMasking.Mask(ids, vocabSize: 100, MaskId, new Generator(9), specialIds: [Pad, Cls, Sep]);
        Assert.Equal(batch.Inputs, again.Inputs);                                           // the same seed, the same batch
        Assert.Equal(batch.Labels, again.Labels);
    }

    [Fact]
    public void PaddingIsInvisibleToRealTokens()
    {
        var model = new Bert(Shape, new Generator(1));
        var shortRow = model.Forward([Cls, 5, 6, 7, Sep, Pad], 1, 6).ToArray();
        var longRow = model.Forward([Cls, 5, 6, 7, Sep, Pad, Pad, Pad, Pad], 1, 9).ToArray();
        // Real positions see the same keys either way: only masked-out padding differs.
        Support.TensorAssert.Close(shortRow.AsSpan(0, 5 * 32), longRow.AsSpan(0, 5 * 32), 1e-5, 0, "hidden states of real tokens");
    }

    [Fact]
    public void AFewStepsOfMlmTrainingLowerTheLossOnAFixedPattern()
    {
        // Every sequence is [CLS] then "4 5 6 7 8 9" repeated from a random phase, then [SEP]: each masked token is
        // predictable from its neighbours.
        const int batch = 16, time = 14;
        var model = new Bert(Shape, new Generator(2));
        var optimizer = new AdamW(model.Parameters(), lr: 3e-3f, weightDecay: 0f);
        var rng = new Generator(4);
        var losses = new List<float>();
        for (int step = 0; step < 40; step++)
        {
            var ids = new int[batch * time];
            for (int b = 0; b < batch; b++)
            {
                int phase = rng.NextInt(6);
                ids[b * time] = Cls;
                for (int t = 1; t < time - 1; t++) ids[b * time + t] = 4 + (phase + t) % 6;
                ids[b * time + time - 1] = Sep;
            }
            var masked = MlmMasking.Mask(ids, Shape.VocabSize, MaskId, rng, specialIds: [Pad, Cls, Sep]);
            using var scope = TensorScope.Begin();
            optimizer.ZeroGrad();
            var loss = model.MlmLoss(model.MlmLogits(model.Forward(masked.Inputs, batch, time)), masked.Labels);
            loss.Backward();
            optimizer.Step();
            losses.Add(loss.Item());
        }
        Assert.True(losses[^5..].Average() < losses[..5].Average() - 0.5, $"loss did not fall: {string.Join(", ", losses.Select(l => l.ToString("F3")))}");
    }

    [Fact]
    public void TheTaggingHeadScoresEveryPositionAndNeedsLabels()
    {
        var model = new Bert(Shape with { NumLabels = 4 }, new Generator(1));
        var hidden = model.Forward([Cls, 5, 6, Sep, Cls, 7, Sep, Pad], 2, 4, [0, 0, 0, 0, 0, 1, 1, 1]);
        var logits = model.TagLogits(hidden);
        Assert.Equal([2, 4, 4], logits.Shape.ToArray());
        float loss = model.TagLoss(logits, [Bert.IgnoreIndex, 1, 2, Bert.IgnoreIndex, Bert.IgnoreIndex, 3, Bert.IgnoreIndex, Bert.IgnoreIndex]).Item();
        Assert.True(float.IsFinite(loss) && loss > 0);
        Assert.Equal([4, 32], model.StateDict()["classifier.weight"].Shape.ToArray());
        var noHead = new Bert(Shape, new Generator(1));
        var e = Assert.Throws<InvalidOperationException>(() => noHead.TagLogits(hidden));
        Assert.Contains("BertConfig.NumLabels is 0", e.Message);
    }

    [Fact]
    public void ParameterNamesAreHuggingFaces()
    {
        var names = new Bert(Shape, new Generator(1)).StateDict().Keys.ToHashSet();
        foreach (var name in new[]
        {
            "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight",
            "embeddings.LayerNorm.weight", "encoder.layer.1.attention.self.query.weight", "encoder.layer.1.attention.self.key.bias",
            "encoder.layer.1.attention.self.value.weight", "encoder.layer.1.attention.output.dense.weight",
            "encoder.layer.1.attention.output.LayerNorm.bias", "encoder.layer.1.intermediate.dense.weight",
            "encoder.layer.1.output.dense.weight", "encoder.layer.1.output.LayerNorm.weight",
            "cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.weight", "cls.predictions.bias",
        })
            Assert.Contains(name, names);
        Assert.Equal(5 + 2 * 16 + 5, names.Count);
    }

    [Fact]
    public void ConfigRoundTripsThroughJson()
    {
        var config = Shape with { NumLabels = 7, PadTokenId = 2, LayerNormEps = 1e-6f };
        Assert.Equal(config, BertConfig.FromJson(JsonNode.Parse(config.ToJson().ToJsonString())!.AsObject()));
        BertConfig.Base.Validate();
        BertConfig.Small(100).Validate();
        var e = Assert.Throws<ArgumentException>(() => BertConfig.FromJson(new JsonObject { ["model_type"] = "gpt2" }));
        Assert.Contains("gpt2", e.Message);
    }

    public static TheoryData<BertConfig, string[]> BadConfigs() => new()
    {
        { Shape with { Width = 30, Heads = 4 }, ["BertConfig.Width (30)", "BertConfig.Heads (4)"] },
        { Shape with { PadTokenId = 16 }, ["BertConfig.PadTokenId (16)", "[0, 16)"] },
        { Shape with { TypeVocabSize = 0 }, ["BertConfig.TypeVocabSize", "0"] },
        { Shape with { AttentionDropout = 1.5f }, ["BertConfig.AttentionDropout", "1.5"] },
        { Shape with { NumLabels = -1 }, ["BertConfig.NumLabels", "-1"] },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void BadConfigsNameTheFieldAndValues(BertConfig config, string[] mentions)
    {
        var e = Assert.Throws<ArgumentException>(() => new Bert(config, new Generator(1)));
        foreach (var m in mentions) Assert.Contains(m, e.Message);
    }

    [Fact]
    public void BadInputsAreClearErrors()
    {
        var model = new Bert(Shape with { MaxPositions = 4 }, new Generator(1));
        var e = Assert.Throws<ArgumentException>(() => model.Forward([Cls, 5, 6, 7, Sep], 1, 5));
        Assert.Contains("5 tokens", e.Message);
        Assert.Contains("BertConfig.MaxPositions = 4", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.Forward([Cls, 5, 6, Sep], 1, 4, [0, 0, 2, 1]));
        Assert.Contains("Segment id 2 at index 2", e.Message);
        Assert.Contains("BertConfig.TypeVocabSize = 2", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.Forward([Cls, 5, 6], 1, 4));
        Assert.Contains("1×4 = 4", e.Message);
    }
}
