using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttentionSharp.Data;

/// <summary>
/// A word-level vocabulary for tagging: lowercased words seen at least <c>minCount</c> times in the training text, after
/// the two special ids <see cref="Pad"/> (0) and <see cref="Unknown"/> (1). Rarer words read as <see cref="Unknown"/>, so
/// the model learns what to do with words it has never seen.
/// </summary>
public sealed class WordVocabulary
{
    /// <summary>The padding id; padded positions carry no label.</summary>
    public const int Pad = 0;

    /// <summary>The id of every word outside the vocabulary.</summary>
    public const int Unknown = 1;

    public const string PadToken = "<pad>";
    public const string UnknownToken = "<unk>";

    readonly Dictionary<string, int> _ids;

    WordVocabulary(IReadOnlyList<string> words)
    {
        Words = words;
        _ids = new Dictionary<string, int>(words.Count, StringComparer.Ordinal);
        for (int i = 0; i < words.Count; i++)
            if (!_ids.TryAdd(words[i], i)) throw new ArgumentException($"The vocabulary lists '{words[i]}' twice (ids {_ids[words[i]]} and {i}).", nameof(words));
    }

    /// <summary>Every entry in id order: <c>&lt;pad&gt;</c>, <c>&lt;unk&gt;</c>, then the words.</summary>
    public IReadOnlyList<string> Words { get; }

    public int Count => Words.Count;

    /// <summary>The key a word is counted and looked up under.</summary>
    public static string Normalize(string word) => word.ToLowerInvariant();

    /// <summary>The id of <paramref name="word"/> (any case), or <see cref="Unknown"/>.</summary>
    public int Id(string word) => _ids.TryGetValue(Normalize(word), out int id) && id > Unknown ? id : Unknown;

    /// <summary>
    /// The vocabulary of <paramref name="words"/>: those occurring at least <paramref name="minCount"/> times (after
    /// lowercasing), most frequent first, ties in ordinal order so the ids never depend on hash order.
    /// </summary>
    public static WordVocabulary Build(IEnumerable<string> words, int minCount)
    {
        if (minCount < 1) throw new ArgumentOutOfRangeException(nameof(minCount), minCount, "The frequency cut-off must be at least 1.");
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var w in words) { var key = Normalize(w); counts[key] = counts.GetValueOrDefault(key) + 1; }
        var kept = counts.Where(p => p.Value >= minCount && p.Key is not (PadToken or UnknownToken))
            .OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key);
        return new WordVocabulary([PadToken, UnknownToken, .. kept]);
    }

    /// <summary><c>{"type": "words", "words": [...]}</c>.</summary>
    public string ToJson() => new JsonObject
    {
        ["type"] = "words",
        ["words"] = new JsonArray(Words.Select(w => (JsonNode)JsonValue.Create(w)).ToArray()),
    }.ToJsonString();

    /// <summary>Reads <see cref="ToJson"/>'s output; <paramref name="source"/> names the file in errors.</summary>
    public static WordVocabulary FromJson(string json, string source)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(json); }
        catch (JsonException e) { throw new DataSourceException($"{source} is not valid JSON: {e.Message}"); }
        if (node is not JsonObject o || !(o["type"] is JsonValue t && t.TryGetValue<string>(out var type) && type == "words") || o["words"] is not JsonArray array)
            throw new DataSourceException($"{source} is not a word vocabulary: expected {{\"type\": \"words\", \"words\": [...]}}.");
        var words = array.Select(w => w is JsonValue v && v.TryGetValue<string>(out var word) ? word : throw new DataSourceException($"{source} holds a word that is not a string: {w?.ToJsonString() ?? "null"}.")).ToArray();
        if (words.Length < 2 || words[Pad] != PadToken || words[Unknown] != UnknownToken)
            throw new DataSourceException($"{source}: a word vocabulary starts with {PadToken} and {UnknownToken}.");
        return new WordVocabulary(words);
    }
}
