using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttentionSharp.Data;

/// <summary>
/// A word-level vocabulary for tagging and masked-word modelling: lowercased words seen at least <c>minCount</c> times in
/// the training text, after the three special ids <see cref="Pad"/> (0), <see cref="Unknown"/> (1) and <see cref="Mask"/>
/// (2). Rarer words read as <see cref="Unknown"/>, so the model learns what to do with words it has never seen; their
/// spelling still reaches the model through <see cref="Features"/>.
/// </summary>
public sealed class WordVocabulary
{
    /// <summary>The padding id; padded positions carry no label.</summary>
    public const int Pad = 0;

    /// <summary>The id of every word outside the vocabulary.</summary>
    public const int Unknown = 1;

    /// <summary>The id a masked-word model reads in place of a hidden word (BERT's [MASK]).</summary>
    public const int Mask = 2;

    public const string PadToken = "<pad>";
    public const string UnknownToken = "<unk>";
    public const string MaskToken = "<mask>";

    /// <summary>Spelling features are kept when they occur at least this often in the training text.</summary>
    public const int FeatureMinCount = 5;

    readonly Dictionary<string, int> _ids;

    WordVocabulary(IReadOnlyList<string> words, WordFeatures features)
    {
        Words = words;
        Features = features;
        _ids = new Dictionary<string, int>(words.Count, StringComparer.Ordinal);
        for (int i = 0; i < words.Count; i++)
            if (!_ids.TryAdd(words[i], i))
                throw new ArgumentException($"The vocabulary lists '{words[i]}' twice (ids {_ids[words[i]]} and {i}).",
                    nameof(words));
    }

    /// <summary>Every entry in id order: <c>&lt;pad&gt;</c>, <c>&lt;unk&gt;</c>, then the words.</summary>
    public IReadOnlyList<string> Words { get; }

    public int Count => Words.Count;

    /// <summary>The spelling features (suffixes, shape) built from the same training words.</summary>
    public WordFeatures Features { get; }

    /// <summary>The ids are those of <paramref name="other"/>: the same words and spelling features in the same order.</summary>
    public bool SameAs(WordVocabulary other) =>
        Words.SequenceEqual(other.Words, StringComparer.Ordinal)
        && Features.Kinds.SequenceEqual(other.Features.Kinds, StringComparer.Ordinal)   // the slot order
        && Features.Names.SequenceEqual(other.Features.Names, StringComparer.Ordinal);

    /// <summary>The key a word is counted and looked up under.</summary>
    public static string Normalize(string word) => word.ToLowerInvariant();

    /// <summary>The id of <paramref name="word"/> (any case), or <see cref="Unknown"/>.</summary>
    public int Id(string word) => _ids.TryGetValue(Normalize(word), out int id) && id > Mask ? id : Unknown;

    /// <summary>
    /// The vocabulary of <paramref name="words"/>: those occurring at least <paramref name="minCount"/> times (after
    /// lowercasing), most frequent first, ties in ordinal order so the ids never depend on hash order; and the spelling
    /// features seen at least <see cref="FeatureMinCount"/> times.
    /// </summary>
    public static WordVocabulary Build(IEnumerable<string> words, int minCount)
    {
        if (minCount < 1)
            throw new ArgumentOutOfRangeException(nameof(minCount), minCount, "The frequency cut-off must be at least 1.");
        var all = words as IReadOnlyCollection<string> ?? words.ToList();
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var w in all) { var key = Normalize(w); counts[key] = counts.GetValueOrDefault(key) + 1; }
        var kept = counts.Where(p => p.Value >= minCount && p.Key is not (PadToken or UnknownToken or MaskToken))
            .OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key);
        return new WordVocabulary([PadToken, UnknownToken, MaskToken, .. kept], WordFeatures.Build(all, FeatureMinCount));
    }

    /// <summary><c>{"type": "words", "words": [...], "features": [...], "feature_kinds": [...]}</c>.</summary>
    public string ToJson() => new JsonObject
    {
        ["type"] = "words",
        ["words"] = new JsonArray(Words.Select(w => (JsonNode)JsonValue.Create(w)).ToArray()),
        ["features"] = Features.ToJson(),
        ["feature_kinds"] = Features.KindsToJson(),
    }.ToJsonString();

    /// <summary>Reads <see cref="ToJson"/>'s output; <paramref name="source"/> names the file in errors.</summary>
    public static WordVocabulary FromJson(string json, string source)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(json); }
        catch (JsonException e) { throw new DataSourceException($"{source} is not valid JSON: {e.Message}"); }
        if (node is not JsonObject o || !(o["type"] is JsonValue t && t.TryGetValue<string>(out var type) && type == "words")
            || o["words"] is not JsonArray array || o["features"] is not JsonArray features)
            throw new DataSourceException(
                $"{source} is not a word vocabulary: expected {{\"type\": \"words\", \"words\": [...], \"features\": [...]}}.");
        var words = array.Select(w => w is JsonValue v && v.TryGetValue<string>(out var word) ? word
            : throw new DataSourceException($"{source} holds a word that is not a string: {w?.ToJsonString() ?? "null"}."))
            .ToArray();
        if (words.Length < 3 || words[Pad] != PadToken || words[Unknown] != UnknownToken || words[Mask] != MaskToken)
            throw new DataSourceException($"{source}: a word vocabulary starts with {PadToken}, {UnknownToken} and {MaskToken}.");
        if (o["feature_kinds"] is { } kinds && kinds is not JsonArray)
            throw new DataSourceException($"{source}: \"feature_kinds\" must be an array of kinds such as \"s1\" and \"shape\".");
        try { return new WordVocabulary(words, WordFeatures.FromJson(features, o["feature_kinds"] as JsonArray, source)); }
        catch (ArgumentException e) { throw new DataSourceException($"{source}: {e.Message}"); }
    }
}
