using System.Text;
using AttentionSharp.Data;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Data;

public class TokenizerTests
{
    /// <summary>Text a tokenizer never saw: accents, CJK, emoji with modifiers and joiners, combining marks, odd whitespace.</summary>
    static readonly string[] SampleTexts =
    [
        "",
        "hello world",
        "Ça coûte 12,50 € — déjà vu, naïve façade.",
        "日本語のテキストと中文文本",
        "emoji 😀👍🏽 family 👨‍👩‍👧 flag 🇳🇴",
        "e\u0301 a\u0308 combining marks",
        "tabs\tand\nnewlines\r\n  and   spaces   ",
        "don't 'quote' it's <|endoftext|> 3.14159",
    ];

    public static TheoryData<string> Samples => new(SampleTexts);

    const string Training =
        "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced " +
        "\"no evidence\" that any irregularities took place. The jury further said in term-end presentments that the " +
        "City Executive Committee, which had over-all charge of the election, \"deserves the praise and thanks of the " +
        "City of Atlanta\" for the manner in which the election was conducted. ";

    static readonly Lazy<ByteBpeTokenizer> Bpe = new(() => ByteBpeTokenizer.Train(string.Concat(Enumerable.Repeat(Training, 3)), 300));

    [Theory]
    [MemberData(nameof(Samples))]
    public void ByteBpeRoundTripsAnyText(string text)
    {
        var ids = Bpe.Value.Encode(text);
        Assert.All(ids, id => Assert.InRange(id, 0, Bpe.Value.VocabSize - 1));
        Assert.Equal(text, Bpe.Value.Decode(ids));
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void TiktokenRoundTripsAnyText(string text)
    {
        foreach (string encoding in TiktokenTokenizer.SupportedEncodings)
        {
            var tokenizer = Tiktoken(encoding);
            var ids = tokenizer.Encode(text);
            Assert.All(ids, id => Assert.InRange(id, 0, tokenizer.VocabSize - 1));
            Assert.Equal(text, tokenizer.Decode(ids));
        }
    }

    [Fact]
    public void TiktokenMatchesTheReferenceIds()
    {
        // Ids from OpenAI's tiktoken: enc.encode("hello world").
        Assert.Equal([15339, 1917], Tiktoken("cl100k_base").Encode("hello world"));
        Assert.Equal([24912, 2375], Tiktoken("o200k_base").Encode("hello world"));
        Assert.Equal(100277, Tiktoken("cl100k_base").VocabSize);
        Assert.Equal(200019, Tiktoken("o200k_base").VocabSize);
        var error = Assert.Throws<ArgumentException>(() => new TiktokenTokenizer("r50k_base"));
        Assert.Contains("expected one of cl100k_base, o200k_base", error.Message);
    }

    [Fact]
    public void CharTokenizerRoundTripsSeenTextAndMarksUnseenCharacters()
    {
        var tokenizer = CharTokenizer.Train("hello world 😀");
        Assert.Equal(1 + 9, tokenizer.VocabSize); // <unk> + " dehlorw😀"
        Assert.Equal(["\u0020", "d", "e", "h", "l", "o", "r", "w", "😀"], tokenizer.Alphabet.Take(9).Select(r => r.ToString()));
        Assert.Equal("hello world 😀", tokenizer.Decode(tokenizer.Encode("hello world 😀")));
        Assert.Single(tokenizer.Encode("😀")); // one scalar value, not two UTF-16 units

        var ids = tokenizer.Encode("hex!");
        Assert.Equal([tokenizer.Encode("h")[0], tokenizer.Encode("e")[0], CharTokenizer.UnknownId, CharTokenizer.UnknownId], ids);
        Assert.Equal("he\uFFFD\uFFFD", tokenizer.Decode(ids));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([tokenizer.VocabSize]));
    }

    [Fact]
    public void SaveAndLoadGiveIdenticalEncodings()
    {
        using var dir = new TempDirectory();
        ITokenizer[] tokenizers = [CharTokenizer.Train(Training + "日本😀"), Bpe.Value, Tiktoken("cl100k_base")];
        foreach (var tokenizer in tokenizers)
        {
            string path = dir.File(tokenizer.GetType().Name + ".json");
            tokenizer.Save(path);
            var loaded = ITokenizer.Load(path);
            Assert.IsType(tokenizer.GetType(), loaded);
            Assert.Equal(tokenizer.VocabSize, loaded.VocabSize);
            foreach (string text in SampleTexts.Append(Training))
                Assert.Equal(tokenizer.Encode(text), loaded.Encode(text));
        }
        Assert.Equal("{\"type\":\"tiktoken\",\"encoding\":\"cl100k_base\"}", Tiktoken("cl100k_base").ToJson());
    }

    [Fact]
    public void MalformedTokenizerFilesAreClearErrors()
    {
        Assert.Equal("tok.json: the field 'type' should be one of char, byte-bpe, tiktoken, gpt2-bpe, wordpiece, got 'sentencepiece'.",
            Assert.Throws<DataSourceException>(() => ITokenizer.FromJson("{\"type\":\"sentencepiece\"}", "tok.json")).Message);
        Assert.Equal("tok.json: the field 'merges' is missing.",
            Assert.Throws<DataSourceException>(() => ITokenizer.FromJson("{\"type\":\"byte-bpe\",\"pattern\":\"gpt2\"}", "tok.json")).Message);
        Assert.Contains("should be merges of existing ids",
            Assert.Throws<DataSourceException>(() => ITokenizer.FromJson("{\"type\":\"byte-bpe\",\"pattern\":\"gpt2\",\"vocab_size\":257,\"merges\":[[1,900]]}", "tok.json")).Message);
        Assert.Contains("is not valid JSON", Assert.Throws<DataSourceException>(() => ITokenizer.FromJson("{", "tok.json")).Message);
    }

    [Fact]
    public void BpeTrainingIsDeterministicAndRespectsTheVocabularySize()
    {
        string text = string.Concat(Enumerable.Repeat(Training, 3));
        var a = ByteBpeTokenizer.Train(text, 300);
        var b = ByteBpeTokenizer.Train(text, 300);
        Assert.Equal(300, a.VocabSize);
        Assert.Equal(a.Merges, b.Merges);
        Assert.True(a.Encode(Training).Length < Encoding.UTF8.GetByteCount(Training) * 3 / 4, $"44 merges should compress the training text: {a.Encode(Training).Length} tokens for {Encoding.UTF8.GetByteCount(Training)} bytes");
        Assert.Equal(256, ByteBpeTokenizer.Train(text, 256).VocabSize);
        // A tiny text runs out of pairs seen twice before reaching the requested size.
        Assert.InRange(ByteBpeTokenizer.Train("abab", 1000).VocabSize, 257, 1000);
        Assert.Throws<ArgumentOutOfRangeException>(() => ByteBpeTokenizer.Train(text, 255));
    }

    [Fact]
    public void IncrementalBpeTrainingMatchesNaiveRecounting()
    {
        string text = string.Concat(Enumerable.Repeat(Training, 2)) + "aaaa aaaaa bbbbbb abababab 日本語日本語 😀😀😀";
        var incremental = ByteBpeTokenizer.Train(text, 400);
        Assert.Equal(NaiveMerges(text, 400), incremental.Merges);
    }

    [Fact]
    public void BpeMergesStayWithinPreTokenizedPieces()
    {
        var tokenizer = ByteBpeTokenizer.Train(string.Concat(Enumerable.Repeat("the cat. the cat. the cat. ", 20)), 1000);
        foreach (int id in tokenizer.Encode("the cat. the cat."))
        {
            string piece = Encoding.UTF8.GetString(tokenizer.BytesOf(id));
            // A token never joins a letter to the punctuation after it ("t." would cross a piece boundary).
            Assert.False(piece.Length > 1 && char.IsLetter(piece[^2]) && piece[^1] == '.', $"token '{piece}' crosses a piece boundary");
        }
    }

    static TiktokenTokenizer Tiktoken(string encoding) => TiktokenCache.GetOrAdd(encoding, e => new TiktokenTokenizer(e));

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, TiktokenTokenizer> TiktokenCache = new();

    /// <summary>The textbook algorithm: count every pair in every piece, merge the most frequent (ties: smallest pair), repeat.</summary>
    static List<(int Left, int Right)> NaiveMerges(string text, int vocabSize)
    {
        var pieces = new List<string>();
        ByteBpeTokenizer.ForEachPiece(text, piece => pieces.Add(piece.ToString()));
        var words = pieces.GroupBy(p => p, StringComparer.Ordinal)
            .Select(g => (Symbols: Encoding.UTF8.GetBytes(g.Key).Select(b => (int)b).ToList(), Count: (long)g.Count())).ToList();
        var merges = new List<(int, int)>();
        while (256 + merges.Count < vocabSize)
        {
            var counts = new Dictionary<(int, int), long>();
            foreach (var (symbols, count) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    counts[(symbols[i], symbols[i + 1])] = counts.GetValueOrDefault((symbols[i], symbols[i + 1])) + count;
            if (counts.Count == 0) break;
            var best = counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key.Item1).ThenBy(kv => kv.Key.Item2).First();
            if (best.Value < 2) break;
            merges.Add(best.Key);
            foreach (var (symbols, _) in words) ByteBpeTokenizer.MergeInPlace(symbols, best.Key.Item1, best.Key.Item2, 256 + merges.Count - 1);
        }
        return merges;
    }
}
