using AttentionSharp.Training;

namespace AttentionSharp.Tests.Training;

/// <summary>Phoneme and word error rates: Levenshtein distance, the closest of several references, the totals.</summary>
public class G2pErrorRatesTests
{
    [Theory]
    [InlineData("", "", 0)]
    [InlineData("abc", "", 3)]
    [InlineData("", "ab", 2)]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("flaw", "lawn", 2)]
    [InlineData("abc", "abc", 0)]
    [InlineData("abcd", "acbd", 2)]                                    // a transposition is two edits
    public void EditDistanceIsLevenshtein(string a, string b, int expected)
    {
        Assert.Equal(expected, G2pErrorRates.EditDistance<char>(a, b));
        Assert.Equal(expected, G2pErrorRates.EditDistance<char>(b, a));
    }

    [Fact]
    public void TheClosestReferenceCountsAndWerCountsWordsWithAnyError()
    {
        var rates = new G2pErrorRates();
        // "read": predicted R IY D; references R EH D and R IY D → exact match with the second.
        Assert.Equal(0, rates.Add<string>(["R", "IY", "D"], [["R", "EH", "D"], ["R", "IY", "D"]]));
        // "either": predicted IY DH ER; references IY DH ER Z (1 edit, 4 long) and AY DH ER (1 edit, 3 long): the first listed wins the tie.
        Assert.Equal(1, rates.Add<string>(["IY", "DH", "ER"], [["IY", "DH", "ER", "Z"], ["AY", "DH", "ER"]]));
        // "cat": predicted K AA T AH against K AE T: 2 edits in 3.
        Assert.Equal(2, rates.Add<string>(["K", "AA", "T", "AH"], [["K", "AE", "T"]]));
        Assert.Equal(3, rates.Words);
        Assert.Equal(3, rates.Edits);
        Assert.Equal(3 + 4 + 3, rates.ReferenceLength);
        Assert.Equal(3.0 / 10, rates.PhonemeErrorRate, 12);
        Assert.Equal(2.0 / 3, rates.WordErrorRate, 12);
    }

    [Fact]
    public void NothingScoredIsNaNAndAWordNeedsAReference()
    {
        var rates = new G2pErrorRates();
        Assert.True(double.IsNaN(rates.PhonemeErrorRate));
        Assert.True(double.IsNaN(rates.WordErrorRate));
        Assert.Throws<ArgumentException>(() => rates.Add<int>([1], []));
    }
}
