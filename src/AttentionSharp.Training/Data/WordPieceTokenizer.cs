using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
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
public sealed partial class WordPieceTokenizer : ITokenizer
{
    public const string TypeName = "wordpiece";

    /// <summary>
    /// BERT's basic split (google-research/bert tokenization.py): each punctuation character — ASCII's symbols or any
    /// \p{P} — and each CJK ideograph alone, any other run of non-space characters whole. The library's default split
    /// keeps only letters, digits and punctuation, so it would drop "€", "²" or an emoji, which BERT keeps.
    /// </summary>
    [GeneratedRegex(@"[\p{P}!-/:-@\[-`{-~]|[\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF]|[^\s\p{P}!-/:-@\[-`{-~\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF]+",
        RegexOptions.CultureInvariant)]
    private static partial Regex BasicPattern();

    static readonly string[] SpecialTokens = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"];

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
        foreach (var special in SpecialTokens)
            if (!seen.Contains(special)) throw new ArgumentException($"The vocabulary lacks the special token {special}.", nameof(tokens));
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(string.Join("\n", _tokens) + "\n"));
        // An uncased BERT strips accents too (transformers' strip_accents follows do_lower_case unless set).
        _tokenizer = MlBertTokenizer.Create(stream, new MlBertOptions
        {
            LowerCaseBeforeTokenization = lowerCase, RemoveNonSpacingMarks = lowerCase, ApplyBasicTokenization = true,
            IndividuallyTokenizeCjk = true, SplitOnSpecialTokens = true,
            PreTokenizer = new RegexPreTokenizer(BasicPattern(), SpecialTokens.ToDictionary(t => t, t => Array.IndexOf(_tokens, t))),
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
        return [.. _tokenizer.EncodeToIds(Normalize(text), addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true)];
    }

    /// <summary>
    /// An uncased model reads the text lowercased, decomposed (NFD) and stripped of non-spacing marks — "naïve" as
    /// "naive" — before the basic pass, as transformers does. The library's tokenizer does not decompose, so the accents
    /// are stripped here. (transformers also composes the text (NFC) first; under invariant globalization that is not
    /// done, which matters only for text that arrives decomposed.)
    /// </summary>
    string Normalize(string text)
    {
        // BERT deletes control characters (keeping tab, newline and return, which are white space) and U+FFFD.
        var kept = new StringBuilder(text.Length);
        foreach (char ch in text)
            if (ch is '\t' or '\n' or '\r' || ch != '\uFFFD' && CharUnicodeInfo.GetUnicodeCategory(ch) is not
                    (UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned))
                kept.Append(ch);
        return LowerCase ? AccentFolding.Strip(kept.ToString().ToLowerInvariant()) : kept.ToString();
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        TokenIds.CheckRange(ids, VocabSize);
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
