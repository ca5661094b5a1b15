using System.Text.Json.Nodes;
using AttentionSharp.IO;
using AttentionSharp.IO.Onnx;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Models;

/// <summary>
/// Every model family with every positional encoding and attention pattern it accepts: forward and backward give finite
/// values, decoding with the cache gives what decoding without it gives, the refused combinations say why, and JSON
/// written before the fields existed loads as before.
/// </summary>
public class AttentionFamiliesTests
{
    static readonly string[] Patterns = ["full", "sliding:2", "sliding:2:0", "linear"];

    /// <summary>Every (positions, pattern) pair but linear attention with ALiBi, which has no scores to bias.</summary>
    public static TheoryData<PositionalEncodingKind, string> Combinations()
    {
        var data = new TheoryData<PositionalEncodingKind, string>();
        foreach (var positions in Enum.GetValues<PositionalEncodingKind>())
            foreach (var pattern in Patterns)
                if (!(positions == PositionalEncodingKind.Alibi && pattern == "linear")) data.Add(positions, pattern);
        return data;
    }

    static void AssertFiniteGradients(Module model, Tensor output, string what)
    {
        var values = output.ToArray();
        for (int i = 0; i < values.Length; i++)
            Assert.True(float.IsFinite(values[i]), $"{what}: output[{i}] = {values[i]}");
        output.Sum().Backward();
        bool anyNonZero = false;
        foreach (var (name, p) in model.NamedParameters())
        {
            if (p.Grad is null) continue;
            var g = p.Grad.ToArray();
            for (int i = 0; i < g.Length; i++)
            {
                Assert.True(float.IsFinite(g[i]), $"{what}: d{name}[{i}] = {g[i]}");
                anyNonZero |= g[i] != 0;
            }
        }
        Assert.True(anyNonZero, $"{what}: every gradient is zero");
    }

    [Theory]
    [MemberData(nameof(Combinations))]
    public void GptRunsForwardAndBackward(PositionalEncodingKind positions, string pattern)
    {
        var config = new GptConfig
        {
            VocabSize = 11, ContextLength = 8, Layers = 2, Heads = 2, Width = 8, Dropout = 0.1f,
            PositionalEncoding = positions, Attention = AttentionPattern.Parse(pattern),
        };
        var model = new Gpt(config, new Generator(1));
        AssertFiniteGradients(model, model.Forward([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2], 2, 6), $"GPT {positions} {pattern}");
    }

    [Theory]
    [MemberData(nameof(Combinations))]
    public void BertRunsForwardAndBackward(PositionalEncodingKind positions, string pattern)
    {
#pragma warning disable format
        var config = BertConfig.Small(13) with
        {
            MaxPositions = 8, Layers = 2, Heads = 2, Width = 8, IntermediateSize = 16,
            PositionalEncoding = positions, Attention = AttentionPattern.Parse(pattern),
        };
#pragma warning restore format
        Assert.Equal(config, BertConfig.FromJson(JsonNode.Parse(config.ToJson().ToJsonString())!.AsObject()));
        var model = new Bert(config, new Generator(1));
        // Linear attention cannot skip padding keys, so its batch has none.
        int[] ids = pattern == "linear" ? [5, 6, 7, 8, 9, 10, 11, 12, 3, 4] : [5, 6, 7, 8, 0, 9, 10, 11, 12, 3];
        var hidden = model.Forward(ids, 2, 5);
        AssertFiniteGradients(model, model.MlmLogits(hidden), $"BERT {positions} {pattern}");
        Assert.Equal(positions == PositionalEncodingKind.Learned, model.PositionEmbeddings is not null);
    }

    [Theory]
    [MemberData(nameof(Combinations))]
    public void VisionTransformerRunsForwardAndBackward(PositionalEncodingKind positions, string pattern)
    {
        var config = new VisionTransformerConfig
        {
            ImageSize = 8, PatchSize = 4, Channels = 1, Classes = 3, Layers = 2, Heads = 2, Width = 8, MlpWidth = 16,
            Dropout = 0.1f, PositionalEncoding = positions, Attention = AttentionPattern.Parse(pattern),
        };
        Assert.Equal(config, VisionTransformerConfig.FromJson(JsonNode.Parse(config.ToJson().ToJsonString())!.AsObject()));
        var model = new VisionTransformer(config, new Generator(1));
        var images = Tensor.Uniform(new Generator(2), 0f, 1f, 2, 1, 8, 8);
        AssertFiniteGradients(model, model.Forward(images), $"ViT {positions} {pattern}");
    }

#pragma warning disable format
    static EncoderDecoderConfig Seq2Seq(PositionalEncodingKind positions, string pattern) => EncoderDecoderConfig.Small(12) with
    {
        EncoderLayers = 2, DecoderLayers = 2, Width = 8, Heads = 2, FeedForwardWidth = 16, MaxLength = 12,
        PositionalEncoding = positions, Attention = AttentionPattern.Parse(pattern),
    };
#pragma warning restore format

    [Theory]
    [MemberData(nameof(Combinations))]
    public void EncoderDecoderRunsForwardAndBackwardAndDecodesWithTheCacheAsWithout(PositionalEncodingKind positions, string pattern)
    {
        var config = Seq2Seq(positions, pattern) with { Dropout = 0.1f };
        Assert.Equal(config, EncoderDecoderConfig.FromJson(JsonNode.Parse(config.ToJson().ToJsonString())!.AsObject()));
        var model = new EncoderDecoder(config, new Generator(1));
        int[] source = [3, 4, 5, 6, 7, 8, 9, 10], target = [1, 4, 5, 6, 1, 7, 8, 2];
        AssertFiniteGradients(model, model.Forward(source, 4, target, 4, 2), $"encoder–decoder {positions} {pattern}");

        model.Eval();
        var cached = model.Greedy(source, 2, 4, maxLength: 7, useCache: true);
        var uncached = model.Greedy(source, 2, 4, maxLength: 7, useCache: false);
        Assert.Equal(uncached.StepLogits.Length, cached.StepLogits.Length);
        for (int step = 0; step < cached.StepLogits.Length; step++)
            TensorAssert.Close(uncached.StepLogits[step], cached.StepLogits[step], 1e-4, 0, $"{positions} {pattern}: step {step} logits");
    }

    [Fact]
    public void LinearAttentionWithAlibiIsRefusedWithAReason()
    {
        var linear = AttentionPattern.LinearAttention;
        var alibi = PositionalEncodingKind.Alibi;
        Exception[] errors =
        [
            Assert.Throws<ArgumentException>(() => new GptConfig { Attention = linear, PositionalEncoding = alibi }.Validate()),
            Assert.Throws<ArgumentException>(() => new BertConfig { Attention = linear, PositionalEncoding = alibi }.Validate()),
            Assert.Throws<ArgumentException>(() => new EncoderDecoderConfig { Attention = linear, PositionalEncoding = alibi }.Validate()),
            Assert.Throws<ArgumentException>(() => new VisionTransformerConfig { Attention = linear, PositionalEncoding = alibi }.Validate()),
        ];
        foreach (var e in errors) Assert.Contains("ALiBi", e.Message);
        var global = Assert.Throws<ArgumentException>(() => new BertConfig { MaxPositions = 8, Attention = AttentionPattern.Sliding(2, 9) }.Validate());
        Assert.Contains("global token position 9", global.Message);
    }

    [Fact]
    public void ConfigJsonWrittenBeforeTheFieldsExistedLoadsAsBefore()
    {
        var bert = JsonNode.Parse("""
            {"model_type": "bert", "vocab_size": 50, "max_position_embeddings": 16, "type_vocab_size": 2, "num_hidden_layers": 1,
             "num_attention_heads": 2, "hidden_size": 8, "intermediate_size": 16, "hidden_dropout_prob": 0.1,
             "attention_probs_dropout_prob": 0.1, "layer_norm_eps": 1e-12, "pad_token_id": 0, "num_labels": 0}
            """)!.AsObject();
        var b = BertConfig.FromJson(bert);
        Assert.Equal(PositionalEncodingKind.Learned, b.PositionalEncoding);
        Assert.Equal(AttentionPattern.Full, b.Attention);
        Assert.Equal(bert.Select(p => p.Key), b.ToJson().Select(p => p.Key));   // a default BERT writes exactly the old fields
        Assert.Equal(b, BertConfig.FromJson(JsonNode.Parse(b.ToJson().ToJsonString())!.AsObject()));
        var hf = bert.DeepClone().AsObject();
        hf["position_embedding_type"] = "absolute";                           // as Hugging Face writes it
        Assert.Equal(PositionalEncodingKind.Learned, BertConfig.FromJson(hf).PositionalEncoding);

        var vit = new VisionTransformerConfig { ImageSize = 8, PatchSize = 4, Channels = 1, Classes = 3, Layers = 1, Heads = 2, Width = 8, MlpWidth = 16 };
        var vitJson = vit.ToJson();
        Assert.Null(vitJson["position_embedding_type"]);
        Assert.Null(vitJson["attention_type"]);
        Assert.Equal(vit, VisionTransformerConfig.FromJson(JsonNode.Parse(vitJson.ToJsonString())!.AsObject()));

        var seq = EncoderDecoderConfig.Small(12);
        var seqJson = seq.ToJson();
        Assert.Null(seqJson["attention_type"]);
        Assert.Equal(seq, EncoderDecoderConfig.FromJson(JsonNode.Parse(seqJson.ToJsonString())!.AsObject()));
    }

    [Fact]
    public void ExportsRefuseWhatTheyCannotExpress()
    {
#pragma warning disable format
        var rotary = new Bert(BertConfig.Small(13) with { MaxPositions = 8, Layers = 1, Heads = 2, Width = 8, IntermediateSize = 16,
            PositionalEncoding = PositionalEncodingKind.Rotary }, new Generator(1));
#pragma warning restore format
        Assert.Contains("Rotary", Assert.Throws<ArgumentException>(() => BertOnnx.Build(rotary)).Message);
        var dir = Path.Combine(Path.GetTempPath(), "attn-refused-" + Guid.NewGuid().ToString("N"));
        Assert.Contains("Rotary", Assert.Throws<ArgumentException>(() => HuggingFaceBert.Export(rotary, dir)).Message);
        Assert.False(Directory.Exists(dir));
#pragma warning disable format
        var sliding = new Gpt(new GptConfig { VocabSize = 11, ContextLength = 8, Layers = 1, Heads = 2, Width = 8,
            Attention = AttentionPattern.Sliding(2) }, new Generator(1));
#pragma warning restore format
        Assert.Contains("sliding:2", Assert.Throws<ArgumentException>(() => GptOnnx.Build(sliding)).Message);
    }

    [Fact]
    public void AGptBatchsLaterRowsDropWhatTheWholeBatchDropsThereWhenTheGeneratorIsTold()
    {
        const int First = 1, Rows = 3, Time = 5;
        var config = new GptConfig { VocabSize = 11, ContextLength = 8, Layers = 2, Heads = 2, Width = 8, Dropout = 0.3f };
        int[] ids = [.. Enumerable.Range(0, Rows * Time).Select(i => (i * 7 + 3) % 11)];
        var whole = new Gpt(config, new Generator(4)).Forward(ids, Rows, Time).ToArray();
        var rank = new Gpt(config, new Generator(4));
        rank.DropoutGenerator.FirstRow = First;
        var part = rank.Forward(ids.AsSpan(First * Time), Rows - First, Time).ToArray();
        TensorAssert.Close(whole.AsSpan(First * Time * 11), part, 1e-5, 1e-5, $"logits of rows {First}…");
    }
}
