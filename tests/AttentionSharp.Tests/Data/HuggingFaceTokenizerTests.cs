using AttentionSharp.Data;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Data;

/// <summary>
/// GPT-2's byte-level BPE and BERT's WordPiece read from the files transformers writes give the ids of the reference
/// tokenizers in tests/fixtures/make_fixtures.py, on a text with spaces, punctuation, digits and non-ASCII characters.
/// </summary>
public class HuggingFaceTokenizerTests
{
    static string Folder(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    static (string Text, int[] Ids) Expected(string name)
    {
        var file = Fixtures.Open(name + "_expected.safetensors");
        return (file.Metadata["text"], file.Ints("ids"));
    }

    static TempDirectory CopyWithout(string name, string left)
    {
        var dir = new TempDirectory();
        foreach (var file in Directory.GetFiles(Folder(name)))
            if (Path.GetFileName(file) != left) File.Copy(file, dir.File(Path.GetFileName(file)));
        return dir;
    }

    [Fact]
    public void Gpt2BpeGivesTheReferenceIdsAndDecodesBackExactly()
    {
        var (text, ids) = Expected("hf_gpt2_bpe");
        var tokenizer = HuggingFaceTokenizer.LoadGpt2(Folder("hf_gpt2_bpe"));
        Assert.Equal(ids, tokenizer.Encode(text));
        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
        Assert.Equal(tokenizer.VocabSize - 1, tokenizer.IdOf("<|endoftext|>"));
        // As transformers' GPT2Tokenizer: the end-of-text token spelled in the text is that one id, the rest as before.
        Assert.Equal([.. tokenizer.Encode("Hello"), tokenizer.VocabSize - 1, .. tokenizer.Encode(" world")], tokenizer.Encode("Hello<|endoftext|> world"));
        var back = ITokenizer.FromJson(tokenizer.ToJson());
        Assert.IsType<Gpt2BpeTokenizer>(back);
        Assert.Equal(tokenizer.VocabSize, back.VocabSize);
        Assert.Equal(ids, back.Encode(text));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([tokenizer.VocabSize]));
    }

    [Fact]
    public void WordPieceGivesTheReferenceIds()
    {
        var (text, ids) = Expected("hf_bert_wordpiece");
        var tokenizer = HuggingFaceTokenizer.LoadBert(Folder("hf_bert_wordpiece"));
        Assert.True(tokenizer.LowerCase);
        Assert.Equal(ids, tokenizer.Encode(text));
        Assert.Equal((0, 2, 3, 4), (tokenizer.PadId, tokenizer.ClsId, tokenizer.SepId, tokenizer.MaskId));
        var back = ITokenizer.FromJson(tokenizer.ToJson());
        Assert.IsType<WordPieceTokenizer>(back);
        Assert.Equal(ids, back.Encode(text));
        Assert.StartsWith("hello, world!", tokenizer.Decode(ids), StringComparison.Ordinal);
    }

    [Fact]
    public void TokenizerJsonServesWhenTheVocabularyFilesAreAbsent()
    {
        var (text, ids) = Expected("hf_gpt2_bpe");
        var gpt2 = HuggingFaceTokenizer.LoadGpt2(Folder("hf_gpt2_bpe"));
        using var dir = CopyWithout("hf_gpt2_bpe", "vocab.json");
        File.Delete(dir.File("merges.txt"));
        var vocab = File.ReadAllText(Path.Combine(Folder("hf_gpt2_bpe"), "vocab.json"));
        var merges = File.ReadAllLines(Path.Combine(Folder("hf_gpt2_bpe"), "merges.txt")).Skip(1).Where(l => l.Length > 0)
            .Select(l => System.Text.Json.JsonSerializer.Serialize(l.Split(' ')));
        dir.Write("tokenizer.json", $"{{\"version\": \"1.0\", \"model\": {{\"type\": \"BPE\", \"vocab\": {vocab}, \"merges\": [{string.Join(", ", merges)}]}}}}");
        Assert.Equal(ids, HuggingFaceTokenizer.LoadGpt2(dir.Path).Encode(text));
        Assert.Equal(gpt2.VocabSize, HuggingFaceTokenizer.LoadGpt2(dir.Path).VocabSize);

        var (bertText, bertIds) = Expected("hf_bert_wordpiece");
        using var bert = CopyWithout("hf_bert_wordpiece", "vocab.txt");
        var tokens = File.ReadAllLines(Path.Combine(Folder("hf_bert_wordpiece"), "vocab.txt")).Where(l => l.Length > 0)
            .Select((t, i) => $"{System.Text.Json.JsonSerializer.Serialize(t)}: {i}");
        bert.Write("tokenizer.json", $"{{\"model\": {{\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {{{string.Join(", ", tokens)}}}}}}}");
        Assert.Equal(bertIds, HuggingFaceTokenizer.LoadBert(bert.Path).Encode(bertText));
    }

    [Fact]
    public void AMissingVocabularyFileIsNamed()
    {
        using (var dir = CopyWithout("hf_gpt2_bpe", "merges.txt"))
            Assert.Contains("has no merges.txt", Assert.Throws<DataSourceException>(() => HuggingFaceTokenizer.LoadGpt2(dir.Path)).Message);
        using (var dir = CopyWithout("hf_gpt2_bpe", "vocab.json"))
            Assert.Contains("has no vocab.json", Assert.Throws<DataSourceException>(() => HuggingFaceTokenizer.LoadGpt2(dir.Path)).Message);
        using (var dir = CopyWithout("hf_bert_wordpiece", "vocab.txt"))
            Assert.Contains("has no vocab.txt", Assert.Throws<DataSourceException>(() => HuggingFaceTokenizer.LoadBert(dir.Path)).Message);
    }
}
