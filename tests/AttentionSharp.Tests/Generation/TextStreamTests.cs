using AttentionSharp.Data;
using AttentionSharp.Generation;

namespace AttentionSharp.Tests.Generation;

/// <summary>TextStream: what may be shown as tokens arrive, with stop strings held back until settled.</summary>
public class TextStreamTests
{
    static readonly string[] Pieces = ["he", "ll", "o", " wor", "ld", "!"];

    static string Decode(ReadOnlySpan<int> ids) => string.Concat(ids.ToArray().Select(i => Pieces[i]));

    static (string Shown, TextStream Stream) Run(int[] ids, params string[] stops)
    {
        var stream = new TextStream(Decode, stops);
        var shown = string.Concat(ids.Select(stream.Push)) + stream.Finish();
        return (shown, stream);
    }

    [Fact]
    public void WithoutStopsEverythingIsShownAsItArrives()
    {
        var stream = new TextStream(Decode);
        Assert.Equal("he", stream.Push(0));
        Assert.Equal("ll", stream.Push(1));
        Assert.Equal("", stream.Finish());
        Assert.Null(stream.Stop);
    }

    [Fact]
    public void TextThatMayBeginAStopIsHeldBackThenReleased()
    {
        var stream = new TextStream(Decode, ["lo w", "!!"]);
        Assert.Equal("he", stream.Push(0));
        Assert.Equal("l", stream.Push(1));         // "l" could begin "lo w"
        Assert.Equal("l wor", stream.Push(3));     // "hell wor": no stop after all
        Assert.Equal("ld", stream.Push(4));
        Assert.Equal("", stream.Push(5));          // "!" could begin "!!"
        Assert.Equal("!", stream.Finish());
        Assert.Null(stream.Stop);
    }

    [Theory]
    [InlineData("o w", "hell")]         // spans tokens, begins inside one
    [InlineData("llo", "he")]           // two tokens
    [InlineData("!", "hello world")]    // one token
    [InlineData("hello", "")]           // at the very start
    public void AStopStringEndsTheStreamAndIsNeverShown(string stop, string expected)
    {
        var (shown, stream) = Run([0, 1, 2, 3, 4, 5, 0], stop, "absent");
        Assert.Equal(expected, shown);
        Assert.Equal(expected, stream.Text);
        Assert.Equal(stop, stream.Stop);
        Assert.Equal("", stream.Push(1));
    }

    [Fact]
    public void TiktokenHasAnEndOfTextTokenAndCharactersHaveNone()
    {
        var tiktoken = new TiktokenTokenizer("cl100k_base");
        Assert.Equal([100257], EndOfText.Find(tiktoken.Encode, tiktoken.Decode));
        var chars = CharTokenizer.Train("<|endoftext|> and more text");
        Assert.Empty(EndOfText.Find(chars.Encode, chars.Decode));
    }
}
