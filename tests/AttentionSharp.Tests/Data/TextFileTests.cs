using AttentionSharp.Data;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Data;

public class TextFileTests
{
    [Fact]
    public void ReadsUtf8AndDropsTheByteOrderMark()
    {
        using var dir = new TempDirectory();
        string path = dir.File("a.txt");
        File.WriteAllBytes(path, [0xEF, 0xBB, 0xBF, .. "héllo 😀"u8]);
        Assert.Equal("héllo 😀", TextFile.Read(path));
    }

    [Theory]
    [InlineData(new byte[] { (byte)'a', (byte)'b', (byte)'c', 0xFF, (byte)'d' }, 3)]
    [InlineData(new byte[] { 0xEF, 0xBB, 0xBF, (byte)'a', (byte)'b', 0xC0, 0x80 }, 5)] // overlong encoding, offset counts the BOM
    [InlineData(new byte[] { (byte)'a', (byte)'b', 0xE2, 0x82 }, 2)] // ends inside a character
    public void InvalidUtf8NamesTheFileAndOffset(byte[] bytes, int offset)
    {
        using var dir = new TempDirectory();
        string path = dir.File("bad.txt");
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<DataSourceException>(() => TextFile.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains($"not valid UTF-8 at byte offset {offset}", error.Message);
    }

    [Fact]
    public void EmptyAndMissingFilesAreClearErrors()
    {
        using var dir = new TempDirectory();
        string empty = dir.Write("empty.txt", "");
        Assert.Equal($"The data file {empty} is empty; it needs some UTF-8 text.", Assert.Throws<DataSourceException>(() => TextFile.Read(empty)).Message);
        string bomOnly = dir.File("bom.txt");
        File.WriteAllBytes(bomOnly, [0xEF, 0xBB, 0xBF]);
        Assert.Contains("is empty", Assert.Throws<DataSourceException>(() => TextFile.Read(bomOnly)).Message);
        string missing = dir.File("missing.txt");
        Assert.Equal($"The data file {missing} does not exist.", Assert.Throws<DataSourceException>(() => TextFile.Read(missing)).Message);
    }

    [Fact]
    public void SplitKeepsTheLastTenthForValidation()
    {
        string text = string.Concat(Enumerable.Range(0, 100).Select(i => (char)('a' + i % 26)));
        var split = TextFile.Split(text);
        Assert.Equal(90, split.Train.Length);
        Assert.Equal(text, split.Train + split.Validation);
        Assert.Equal(split, TextFile.Split(text));

        // A surrogate pair at the cut moves the cut rather than breaking the character.
        string emoji = new string('a', 9) + "😀" + new string('b', 9);
        var around = TextFile.Split(emoji, 0.5);
        Assert.Equal(emoji, around.Train + around.Validation);
        Assert.False(char.IsLowSurrogate(around.Validation[0]));
    }
}
