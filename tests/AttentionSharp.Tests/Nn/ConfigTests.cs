using AttentionSharp.Nn;

namespace AttentionSharp.Tests.Nn;

/// <summary>Bad configurations fail at construction with a message naming the field and the values.</summary>
public class ConfigTests
{
    [Fact]
    public void PresetsAreValid()
    {
        TransformerConfig.Base.Validate();
        TransformerConfig.Big.Validate();
        TransformerConfig.Small.Validate();
        MultiHeadAttentionConfig.Base.Validate();
        Assert.Equal(64, TransformerConfig.Base.Attention.HeadSize);
    }

    public static TheoryData<TransformerConfig, string[]> BadTransformerConfigs() => new()
    {
        { new TransformerConfig { Width = 100, Heads = 8 }, ["TransformerConfig.Width (100)", "TransformerConfig.Heads (8)"] },
        { new TransformerConfig { Heads = 0 }, ["TransformerConfig.Heads", "0"] },
        { new TransformerConfig { KvHeads = 3 }, ["TransformerConfig.KvHeads (3)", "Heads (8)"] },
        { new TransformerConfig { Width = 24, Heads = 8, PositionalEncoding = PositionalEncodingKind.Rotary }, ["TransformerConfig.PositionalEncoding", "Rotary", "24 / 8 = 3", "odd"] },
        { new TransformerConfig { PositionalEncoding = PositionalEncodingKind.Rotary, RotaryBase = 1f }, ["TransformerConfig.RotaryBase", "1"] },
        { new TransformerConfig { Layers = 0 }, ["TransformerConfig.Layers", "0"] },
        { new TransformerConfig { FeedForwardWidth = -4 }, ["TransformerConfig.FeedForwardWidth", "-4"] },
        { new TransformerConfig { Dropout = 1f }, ["TransformerConfig.Dropout", "[0, 1)", "1"] },
        { new TransformerConfig { LayerNormEps = 0f }, ["TransformerConfig.LayerNormEps", "0"] },
        { new TransformerConfig { MaxLength = 0 }, ["TransformerConfig.MaxLength", "0"] },
        { new TransformerConfig { Activation = (FeedForwardActivation)9 }, ["TransformerConfig.Activation", "9"] },
    };

    [Theory]
    [MemberData(nameof(BadTransformerConfigs))]
    public void BadTransformerConfigsNameTheFieldAndValues(TransformerConfig config, string[] mentions)
    {
        var e = Assert.Throws<ArgumentException>(() => new TransformerEncoder(config, new Generator(1)));
        foreach (var m in mentions) Assert.Contains(m, e.Message);
    }

    [Fact]
    public void BadAttentionConfigsNameTheFieldAndValues()
    {
        var e = Assert.Throws<ArgumentException>(() => new MultiHeadAttention(new MultiHeadAttentionConfig { Width = 30, Heads = 4 }, new Generator(1)));
        Assert.Contains("MultiHeadAttentionConfig.Width (30)", e.Message);
        Assert.Contains("MultiHeadAttentionConfig.Heads (4)", e.Message);
        e = Assert.Throws<ArgumentException>(() => new MultiHeadAttentionConfig { Dropout = -0.1f }.Validate());
        Assert.Contains("MultiHeadAttentionConfig.Dropout", e.Message);
        Assert.Contains("-0.1", e.Message);
    }
}
