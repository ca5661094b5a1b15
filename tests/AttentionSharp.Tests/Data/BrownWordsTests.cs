using AttentionSharp.Data;

namespace AttentionSharp.Tests.Data;

/// <summary>Typed text splits into words as the Brown corpus writes them.</summary>
public class BrownWordsTests
{
    [Fact]
    public void PunctuationQuotesAndDashesStandApartWhileContractionsAndAbbreviationsStayWhole()
    {
        Assert.Equal(["The", "jury", "said", "it", "didn't", "like", "Mr.", "Smith's", "``", "new", "''", "report", "--", "on", "1,250.5", "voters", "."],
            BrownWords.Tokenize("The jury said it didn't like Mr. Smith's \"new\" report--on 1,250.5 voters."));
        Assert.Equal(["(", "U.S.", "troops", ")", ",", "the", "boys'", "toys", "?"], BrownWords.Tokenize("(U.S. troops), the boys' toys?"));
        Assert.Equal(["J.", "F.", "Kennedy", "won", "!"], BrownWords.Tokenize("J. F. Kennedy won!"));
        Assert.Empty(BrownWords.Tokenize("   "));
    }
}
