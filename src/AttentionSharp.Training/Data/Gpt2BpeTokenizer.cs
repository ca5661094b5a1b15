using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace AttentionSharp.Data;

/// <summary>
/// GPT-2's own byte-level BPE (Radford et al., 2019) with a published vocabulary: vocab.json maps each token, spelled in
/// GPT-2's printable stand-ins for bytes ("Ġ" for a space), to its id, and merges.txt lists the merges in rank order.
/// Encoding runs through Microsoft.ML.Tokenizers' byte-level <see cref="BpeTokenizer"/> after GPT-2's pre-tokenization
/// pattern, with no prefix space and no begin/end token added, and "&lt;|endoftext|&gt;" in the text read as that one
/// token — the ids transformers' GPT2Tokenizer gives. (The library's CodeGenTokenizer is not used: it adds CodeGen's
/// tokens for runs of spaces, ids GPT-2 does not have.) A saved tokenizer holds the vocabulary and the merges, so a
/// checkpoint needs no other file.
/// </summary>
/// <remarks>
/// Unlike <see cref="ByteBpeTokenizer"/>, whose ids are 256 bytes then one per merge, ids here are whatever the
/// vocabulary says; <see cref="VocabSize"/> is one more than the largest.
/// </remarks>
public sealed partial class Gpt2BpeTokenizer : ITokenizer
{
    internal const string TypeName = "gpt2-bpe";

    /// <summary>GPT-2's end-of-text token, which text may spell out.</summary>
    public const string EndOfText = "<|endoftext|>";

    /// <summary>GPT-2's pre-tokenization (openai/gpt-2, src/encoder.py): merges never cross these pieces.</summary>
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant)]
    private static partial Regex Gpt2Pattern();

    readonly BpeTokenizer _tokenizer;
    readonly KeyValuePair<string, int>[] _vocab;
    readonly string[] _merges;

    /// <summary>
    /// A tokenizer with <paramref name="vocab"/> (token → id, ids distinct and ≥ 0) and <paramref name="merges"/> in
    /// rank order, each "left right" as merges.txt writes it.
    /// </summary>
    public Gpt2BpeTokenizer(IEnumerable<KeyValuePair<string, int>> vocab, IEnumerable<string> merges)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        ArgumentNullException.ThrowIfNull(merges);
        _vocab = [.. vocab.OrderBy(p => p.Value)];
        _merges = [.. merges];
        if (_vocab.Length == 0) throw new ArgumentException("The vocabulary is empty.", nameof(vocab));
        if (_vocab[0].Value < 0) throw new ArgumentException($"The token '{_vocab[0].Key}' has the negative id {_vocab[0].Value}.", nameof(vocab));
        for (int i = 1; i < _vocab.Length; i++)
            if (_vocab[i].Value == _vocab[i - 1].Value)
                throw new ArgumentException($"The tokens '{_vocab[i - 1].Key}' and '{_vocab[i].Key}' share the id {_vocab[i].Value}.", nameof(vocab));
        foreach (var merge in _merges)
            if (merge.Split(' ') is not [{ Length: > 0 }, { Length: > 0 }])
                throw new ArgumentException($"The merge '{merge}' should be two tokens separated by one space.", nameof(merges));
        VocabSize = _vocab[^1].Value + 1;
        var special = _vocab.Where(p => p.Key == EndOfText).ToDictionary(p => p.Key, p => p.Value);
        _tokenizer = BpeTokenizer.Create(new BpeOptions(_vocab)
        {
            Merges = _merges, ByteLevel = true, SpecialTokens = special, PreTokenizer = new RegexPreTokenizer(Gpt2Pattern(), special),
        });
    }

    /// <summary>Reads transformers' vocab.json and merges.txt.</summary>
    public static Gpt2BpeTokenizer FromFiles(string vocabPath, string mergesPath)
    {
        Dictionary<string, int> vocab;
        try
        {
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(vocabPath))
                ?? throw new DataSourceException($"{vocabPath} should be a JSON object mapping tokens to ids; it is null.");
        }
        catch (JsonException e) { throw new DataSourceException($"{vocabPath} should be a JSON object mapping tokens to ids: {e.Message}", e); }
        var merges = File.ReadAllLines(mergesPath, Encoding.UTF8)
            .Where((line, i) => line.Length > 0 && !(i == 0 && line.StartsWith("#version", StringComparison.Ordinal)));
        try { return new Gpt2BpeTokenizer(vocab, merges); }
        catch (ArgumentException e) { throw new DataSourceException($"{vocabPath} and {mergesPath}: {e.Message}", e); }
    }

    public int VocabSize { get; }

    /// <summary>The id of <paramref name="token"/> as vocab.json spells it (e.g. "&lt;|endoftext|&gt;"), or null.</summary>
    public int? IdOf(string token) => _tokenizer.Vocabulary.TryGetValue(token, out int id) ? id : null;

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. _tokenizer.EncodeToIds(text)];
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        TokenIds.CheckRange(ids, VocabSize);
        return _tokenizer.Decode(ids.ToArray()) ?? "";
    }

    /// <summary><c>{"type": "gpt2-bpe", "vocab": {token: id, …}, "merges": ["left right", …]}</c>, as vocab.json and merges.txt hold them.</summary>
    public string ToJson() => TokenizerJson.Write(TypeName, json =>
    {
        json.WriteStartObject("vocab");
        foreach (var (token, id) in _vocab) json.WriteNumber(token, id);
        json.WriteEndObject();
        json.WriteStartArray("merges");
        foreach (var merge in _merges) json.WriteStringValue(merge);
        json.WriteEndArray();
    });

    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    internal static Gpt2BpeTokenizer FromJson(TokenizerJson json)
    {
        var vocab = new List<KeyValuePair<string, int>>();
        foreach (var p in json.Field("vocab", JsonValueKind.Object).EnumerateObject())
            vocab.Add(new(p.Name, p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out int id) ? id
                : throw json.Error("vocab", "an object mapping tokens to integer ids", $"'{p.Name}': {p.Value.GetRawText()}")));
        var merges = json.Field("merges", JsonValueKind.Array).EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.String ? m.GetString()! : throw json.Error("merges", "an array of strings", m.GetRawText())).ToList();
        try { return new Gpt2BpeTokenizer(vocab, merges); }
        catch (ArgumentException e) { throw json.Error("vocab", "distinct ids ≥ 0 and merges of two tokens", e.Message); }
    }
}
