using AttentionSharp.Data;

namespace AttentionSharp.Tests.Data;

/// <summary>The CMU dictionary reader on slices in the npm package's format, and the split by word.</summary>
public class CmuDictTests
{
    /// <summary>The package's layout: a type comment with braces, the object literal, comments, alternates, a trailing comma.</summary>
    const string Slice = """
        /** @type {{ [word: string]: string }} */
        export const dictionary = {
          "'bout": "B AW1 T",
          "a": "AH0",
          "a(2)": "EY1",
          "a.d.": "EY2 D IY1",
          "aalborg": "AO1 L B AO0 R G # place, danish",
          "aalborg(2)": "AA1 L B AO0 R G",
          "café": "K AE0 F EY1",
          "x-ray": "EH1 K S R EY2",
        }
        """;

    [Fact]
    public void ReadsWordsAlternatesAndCommentsAndStripsStressByDefault()
    {
        var dict = CmuDict.Parse(Slice, "slice");
        Assert.False(dict.KeepStress);
        Assert.Equal(["'bout", "a", "a.d.", "aalborg", "x-ray"], dict.Entries.Select(e => e.Word));
        var a = dict.Entries[1];
        Assert.Equal(2, a.Pronunciations.Count);
        Assert.Equal(["AH"], a.Pronunciations[0]);
        Assert.Equal(["EY"], a.Pronunciations[1]);
        Assert.Equal(["AO", "L", "B", "AO", "R", "G"], dict.Entries[3].Pronunciations[0]);    // the comment is dropped
        Assert.Equal(7, dict.PronunciationCount);
    }

    [Fact]
    public void KeepsStressWhenAsked()
    {
        var dict = CmuDict.Parse(Slice, "slice", keepStress: true);
        Assert.Equal(["EH1", "K", "S", "R", "EY2"], dict.Entries[^1].Pronunciations[0]);
        Assert.Equal(69, CmuDict.StressedPhonemes.Count);
        Assert.Equal(39, CmuDict.Phonemes.Count);
    }

    [Fact]
    public void EntriesSpelledOutsideTheAlphabetAreSkippedAndCounted()
    {
        var dict = CmuDict.Parse(Slice, "slice");
        Assert.Equal(1, dict.SkippedEntries);
        Assert.Equal(["café"], dict.SkippedExamples);
        Assert.DoesNotContain(dict.Entries, e => e.Word == "café");
    }

    [Fact]
    public void AlternatesAreOrderedByTheirNumberWhereverTheyAppear()
    {
        var dict = CmuDict.Parse("""{"read(3)": "R IY1 D", "read": "R EH1 D", "read(2)": "R IY1 D Z"}""", "json");
        Assert.Equal([["R", "EH", "D"], ["R", "IY", "D", "Z"], ["R", "IY", "D"]], dict.Entries[0].Pronunciations.Select(p => p.ToArray()));
    }

    [Theory]
    [InlineData("""{"a": "AH0 QQ"}""", "'QQ'")]
    [InlineData("""{"a": "AH"}""", "'AH'")]                         // a vowel without its stress digit
    [InlineData("""{"a": "B1"}""", "'B1'")]                         // a consonant with one
    [InlineData("""{"a": "# only a comment"}""", "no phonemes")]
    [InlineData("""{"a(1)": "AH0"}""", "WORD(N) with N ≥ 2")]
    [InlineData("""{"a": "AH0", "a": "EY1"}""", "appears twice")]
    [InlineData("""{"a": 3}""", "Number")]
    [InlineData("export const dictionary = [];", "no braces")]
    [InlineData("{\n  \"a\": \"AH0\"\n  \"b\": \"B IY1\"\n}", "line 3")]
    [InlineData("{}", "no usable entries")]
    public void MalformedDataIsAClearError(string text, string mention)
    {
        var e = Assert.Throws<DataSourceException>(() => CmuDict.Parse(text, "dict.js"));
        Assert.Contains("dict.js", e.Message);
        Assert.Contains(mention, e.Message);
    }

    [Fact]
    public void AMissingFileNamesThePackage()
    {
        var e = Assert.Throws<DataSourceException>(() => CmuDict.Load(Path.Combine(Path.GetTempPath(), "no-such-dir-" + Guid.NewGuid().ToString("N"), "index.js")));
        Assert.Contains(CmuDict.Package.Spec, e.Message);
    }

    [Fact]
    public void TheSplitIsByWordDeterministicAndNinetyFiveFive()
    {
        var words = Enumerable.Range(0, 4000).Select(i => $"w{(char)('a' + i % 26)}{(char)('a' + i / 26 % 26)}{(char)('a' + i / 676)}").ToArray();
        string text = "{" + string.Join(",", words.SelectMany(w => new[] { $"\"{w}\": \"W AH0\"", $"\"{w}(2)\": \"W EH1\"" })) + "}";
        var split = CmuDict.Parse(text, "synthetic").Split();
        var parts = new[] { split.Train, split.Validation, split.Test };
        Assert.Equal(words.Length, parts.Sum(p => p.Count));
        Assert.All(parts.SelectMany(p => p), e => Assert.Equal(2, e.Pronunciations.Count));   // alternates stay with their word
        Assert.Empty(split.Train.Select(e => e.Word).Intersect(split.Test.Select(e => e.Word)));
        Assert.InRange(split.Validation.Count, 140, 260);                                     // 5 % of 4,000 is 200
        Assert.InRange(split.Test.Count, 140, 260);
        // The part depends on the word alone: a subset of the words keeps each word's part.
        var again = CmuDict.Parse("{" + string.Join(",", words.Where((_, i) => i % 3 == 0).Select(w => $"\"{w}\": \"W AH0\"")) + "}", "subset").Split();
        Assert.All(again.Test, e => Assert.Contains(split.Test, f => f.Word == e.Word));
        Assert.All(again.Validation, e => Assert.Contains(split.Validation, f => f.Word == e.Word));
        Assert.Equal(19u, CmuDict.PartOf(split.Test[0].Word));
    }
}
