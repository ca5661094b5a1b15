using System.Text;

namespace AttentionSharp.Data;

/// <summary>
/// One token per character, where a character is a Unicode scalar value (a <see cref="Rune"/>), so an emoji is one token,
/// not two UTF-16 halves. Id 0 is <c>&lt;unk&gt;</c> for characters the training text never held (it decodes as U+FFFD);
/// ids 1 … are the training text's distinct characters in code point order. Text made of known characters round-trips exactly.
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    internal const string TypeName = "char";

    /// <summary>The id of characters outside the vocabulary.</summary>
    public const int UnknownId = 0;

    readonly Rune[] _alphabet;               // id - 1 → character
    readonly int[] _asciiIds = new int[128]; // the common case without hashing
    readonly Dictionary<int, int> _ids = [];  // code point → id, for the rest

    /// <summary>A tokenizer over the given characters (duplicates ignored; order does not matter).</summary>
    public CharTokenizer(IEnumerable<Rune> alphabet)
    {
        ArgumentNullException.ThrowIfNull(alphabet);
        _alphabet = alphabet.Distinct().Order().ToArray();
        for (int i = 0; i < _alphabet.Length; i++)
        {
            int codePoint = _alphabet[i].Value;
            if (codePoint < _asciiIds.Length) _asciiIds[codePoint] = i + 1;
            else _ids[codePoint] = i + 1;
        }
    }

    /// <summary>A tokenizer whose vocabulary is the distinct characters of <paramref name="text"/>.</summary>
    public static CharTokenizer Train(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var seen = new HashSet<Rune>();
        foreach (var rune in text.EnumerateRunes()) seen.Add(rune);
        return new CharTokenizer(seen);
    }

    /// <summary>The known characters; character <c>Alphabet[i]</c> has id <c>i + 1</c>.</summary>
    public IReadOnlyList<Rune> Alphabet => _alphabet;

    public int VocabSize => _alphabet.Length + 1;

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length);
        // EnumerateRunes yields U+FFFD for a lone surrogate, which then maps to whatever id U+FFFD has (usually <unk>).
        foreach (var rune in text.EnumerateRunes())
        {
            int codePoint = rune.Value;
            ids.Add(codePoint < _asciiIds.Length ? _asciiIds[codePoint] : _ids.GetValueOrDefault(codePoint, UnknownId));
        }
        return ids.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var text = new StringBuilder(ids.Length);
        Span<char> buffer = stackalloc char[2];
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token ids must lie in [0, {VocabSize}).");
            var rune = id == UnknownId ? Rune.ReplacementChar : _alphabet[id - 1];
            text.Append(buffer[..rune.EncodeToUtf16(buffer)]);
        }
        return text.ToString();
    }

    public string ToJson() => TokenizerJson.Write(TypeName, json =>
    {
        json.WriteNumber("vocab_size", VocabSize);
        json.WriteStartArray("code_points"); // numbers, not a string, so no character needs escaping
        foreach (var rune in _alphabet) json.WriteNumberValue(rune.Value);
        json.WriteEndArray();
    });

    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    internal static CharTokenizer FromJson(TokenizerJson json)
    {
        int[] codePoints = json.Ints("code_points");
        var runes = new Rune[codePoints.Length];
        for (int i = 0; i < codePoints.Length; i++)
            runes[i] = Rune.IsValid(codePoints[i]) ? new Rune(codePoints[i])
                : throw json.Error("code_points", "Unicode scalar values", $"{codePoints[i]} at index {i}");
        var tokenizer = new CharTokenizer(runes);
        int vocabSize = json.Int("vocab_size");
        if (vocabSize != tokenizer.VocabSize)
            throw json.Error("vocab_size", $"{tokenizer.VocabSize} (1 + {runes.Length} distinct code points)", vocabSize.ToString());
        return tokenizer;
    }
}
