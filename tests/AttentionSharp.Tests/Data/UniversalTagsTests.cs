using AttentionSharp.Data;

namespace AttentionSharp.Tests.Data;

/// <summary>The Brown → universal mapping on real Brown tags, decorated forms included, and its error for an unknown tag.</summary>
public class UniversalTagsTests
{
#pragma warning disable format
    [Theory]
    [InlineData("nn", "NOUN")] [InlineData("nn-tl", "NOUN")] [InlineData("nn-hl", "NOUN")] [InlineData("NN-TL", "NOUN")]
    [InlineData("nns$-tl-hl", "NOUN")] [InlineData("np$", "NOUN")] [InlineData("nps", "NOUN")] [InlineData("nr", "NOUN")] [InlineData("pn", "NOUN")]
    [InlineData("vb", "VERB")] [InlineData("vbd", "VERB")] [InlineData("vbn-tl", "VERB")] [InlineData("bez*", "VERB")] [InlineData("md*", "VERB")]
    [InlineData("hvz*", "VERB")] [InlineData("bedz", "VERB")] [InlineData("doz", "VERB")]
    [InlineData("jj", "ADJ")] [InlineData("jjt", "ADJ")] [InlineData("od", "ADJ")] [InlineData("ap", "ADJ")]
    [InlineData("rb", "ADV")] [InlineData("ql", "ADV")] [InlineData("wrb", "ADV")] [InlineData("rn", "ADV")] [InlineData("*", "ADV")] [InlineData("*-hl", "ADV")]
    [InlineData("ppss", "PRON")] [InlineData("ppo", "PRON")] [InlineData("pp$$", "PRON")]
    [InlineData("at", "DET")] [InlineData("at-tl", "DET")] [InlineData("pp$", "DET")] [InlineData("dt$", "DET")] [InlineData("wdt", "DET")] [InlineData("wp$", "DET")] [InlineData("abx", "DET")]
    [InlineData("in", "ADP")] [InlineData("in-hl", "ADP")] [InlineData("cs", "ADP")]
    [InlineData("cd", "NUM")] [InlineData("cd$", "NOUN")]
    [InlineData("cc", "CONJ")]
    [InlineData("rp", "PRT")] [InlineData("to", "PRT")] [InlineData("abn", "PRT")] [InlineData("ap$", "PRT")]
    [InlineData(".", ".")] [InlineData(",", ".")] [InlineData(":", ".")] [InlineData("(", ".")] [InlineData("(-hl", ".")] [InlineData(")", ".")]
    [InlineData("--", ".")] [InlineData("''", ".")] [InlineData("``", ".")] [InlineData("'", ".")]
    [InlineData("fw-nn", "X")] [InlineData("fw-in+nn-tl", "X")] [InlineData("fw-at-hl", "X")] [InlineData("nil", "X")]
    // as NLTK's en-brown.map: existential "there", interjections, genitives and contractions of a non-verb with a verb
    [InlineData("ex", "PRT")] [InlineData("uh", "PRT")] [InlineData("uh-tl", "PRT")] [InlineData("jj$-tl", "PRT")] [InlineData("rb$", "PRT")]
    [InlineData("ppss+bem", "PRT")] [InlineData("wps+bez-nc", "PRT")] [InlineData("ex+hvz", "PRT")] [InlineData("ppss+bez*", "PRT")] [InlineData("wrb+dod*", "PRT")]
    [InlineData("wrb+in", "PRT")] [InlineData("ppss+vb", "PRT")]
    [InlineData("vb+to", "VERB")] [InlineData("md+hv", "VERB")] [InlineData("in+ppo", "ADP")] [InlineData("jjr+cs", "ADJ")] [InlineData("rb+cs", "ADV")]
    [InlineData("nn+in", "NOUN")] [InlineData("ap+ap-nc", "ADJ")] [InlineData("do+ppss", "X")] [InlineData("wdt+ber+pp", "X")]
#pragma warning restore format
    public void MapsBrownTags(string brown, string expected) => Assert.Equal(expected, UniversalTags.FromBrown(brown, "ca01"));

    [Fact]
    public void UnknownTagIsAnErrorNamingTheTagAndTheDocument()
    {
        var e = Assert.Throws<DataSourceException>(() => UniversalTags.FromBrown("zz-tl", "cb07"));
        Assert.Contains("'zz-tl'", e.Message);
        Assert.Contains("cb07", e.Message);
        Assert.False(UniversalTags.TryFromBrown("fw-", out _));
    }

    [Fact]
    public void TwelveTagsWithIdsInOrder()
    {
        Assert.Equal(12, UniversalTags.Count);
        for (int i = 0; i < UniversalTags.Count; i++) Assert.Equal(i, UniversalTags.Id(UniversalTags.Names[i]));
        Assert.Throws<ArgumentException>(() => UniversalTags.Id("NN"));
    }

    [Fact]
    public void BaseTagDropsDecorations()
    {
        Assert.Equal("nns$", UniversalTags.BaseTag("NNS$-TL-HL"));
        Assert.Equal("ppss", UniversalTags.BaseTag("ppss+bem"));
        Assert.Equal("bez", UniversalTags.BaseTag("bez*-nc"));
        Assert.Equal("*", UniversalTags.BaseTag("*"));
        Assert.Equal("--", UniversalTags.BaseTag("--"));
    }
}
