using System.Text;
using System.Text.Json;
using MlBertOptions = Microsoft.ML.Tokenizers.BertOptions;
using MlBertTokenizer = Microsoft.ML.Tokenizers.BertTokenizer;

namespace AttentionSharp.Data;

/// <summary>
/// BERT's tokenizer (Devlin et al., 2019): a basic pass — control characters dropped, CJK ideographs split apart, text
/// lowercased and accents stripped when the model is uncased, punctuation split off — then WordPiece, greedy
/// longest-match-first, pieces after a word's first carrying "##", and a word with no segmentation read as [UNK].
/// The vocabulary is vocab.txt, one token a line, the line number its id. Encoding runs through Microsoft.ML.Tokenizers'
/// <see cref="MlBertTokenizer"/>. <see cref="Encode"/> adds no [CLS]/[SEP]: a model input wraps the ids itself
/// (<see cref="ClsId"/>, <see cref="SepId"/>). A saved tokenizer holds the vocabulary and the casing.
/// </summary>
public sealed class WordPieceTokenizer : ITokenizer
{
    internal const string TypeName = "wordpiece";

    readonly MlBertTokenizer _tokenizer;
    readonly string[] _tokens;

    /// <summary>A tokenizer over <paramref name="tokens"/> in id order, which must hold [UNK], [CLS], [SEP], [PAD] and [MASK].</summary>
    public WordPieceTokenizer(IEnumerable<string> tokens, bool lowerCase)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        _tokens = [.. tokens];
        LowerCase = lowerCase;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in _tokens)
            if (t.Length == 0 || t.Any(char.IsWhiteSpace) || !seen.Add(t))
                throw new ArgumentException($"The vocabulary's token '{t}' is empty, holds white space or is listed twice.", nameof(tokens));
        foreach (var special in new[] { "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]" })
            if (!seen.Contains(special)) throw new ArgumentException($"The vocabulary lacks the special token {special}.", nameof(tokens));
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(string.Join("\n", _tokens) + "\n"));
        // An uncased BERT strips accents too (transformers' strip_accents follows do_lower_case unless set).
        _tokenizer = MlBertTokenizer.Create(stream, new MlBertOptions
        {
            LowerCaseBeforeTokenization = lowerCase, RemoveNonSpacingMarks = lowerCase, ApplyBasicTokenization = true,
            IndividuallyTokenizeCjk = true, SplitOnSpecialTokens = true,
        });
    }

    /// <summary>Reads transformers' vocab.txt; <paramref name="lowerCase"/> is tokenizer_config.json's do_lower_case.</summary>
    public static WordPieceTokenizer FromFile(string vocabPath, bool lowerCase)
    {
        var tokens = File.ReadAllLines(vocabPath, Encoding.UTF8).Select(line => line.TrimEnd('\r')).ToList();
        while (tokens.Count > 0 && tokens[^1].Length == 0) tokens.RemoveAt(tokens.Count - 1);
        try { return new WordPieceTokenizer(tokens, lowerCase); }
        catch (ArgumentException e) { throw new DataSourceException($"{vocabPath}: {e.Message}", e); }
    }

    /// <summary>Whether text is lowercased and stripped of accents first (an uncased BERT).</summary>
    public bool LowerCase { get; }

    public int VocabSize => _tokens.Length;

    public int ClsId => _tokenizer.ClassificationTokenId;
    public int SepId => _tokenizer.SeparatorTokenId;
    public int PadId => _tokenizer.PaddingTokenId;
    public int MaskId => _tokenizer.MaskingTokenId;

    /// <summary>Every token in id order, as vocab.txt lists them.</summary>
    public IReadOnlyList<string> Tokens => _tokens;

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. _tokenizer.EncodeToIds(text, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true)];
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        foreach (int id in ids)
            if ((uint)id >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token ids must lie in [0, {VocabSize}).");
        return _tokenizer.Decode(ids.ToArray()) ?? "";
    }

    /// <summary><c>{"type": "wordpiece", "lower_case": true, "vocab": ["[PAD]", …]}</c>, the vocabulary in id order as vocab.txt lists it.</summary>
    public string ToJson() => TokenizerJson.Write(TypeName, json =>
    {
        json.WriteBoolean("lower_case", LowerCase);
        json.WriteStartArray("vocab");
        foreach (var t in _tokens) json.WriteStringValue(t);
        json.WriteEndArray();
    });

    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    internal static WordPieceTokenizer FromJson(TokenizerJson json)
    {
        bool lower = json.Bool("lower_case");
        var tokens = json.Field("vocab", JsonValueKind.Array).EnumerateArray()
            .Select(t => t.ValueKind == JsonValueKind.String ? t.GetString()! : throw json.Error("vocab", "an array of strings", t.GetRawText())).ToList();
        try { return new WordPieceTokenizer(tokens, lower); }
        catch (ArgumentException e) { throw json.Error("vocab", "distinct tokens with [UNK], [CLS], [SEP], [PAD] and [MASK]", e.Message); }
    }
}
