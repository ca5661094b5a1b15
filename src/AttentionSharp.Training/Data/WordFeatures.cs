// Source: the spelling features of Ratnaparkhi, "A Maximum Entropy Model for Part-of-Speech Tagging" (1996) and the
// word shapes of Collins (2002) / Finkel et al. (2005), used here as embedded ids beside the word's own.
using System.Text;
using System.Text.Json.Nodes;

namespace AttentionSharp.Data;

/// <summary>
/// Spelling features that let a tagger read a word it has never seen: its last one, two and three letters (lowercased:
/// "-s", "-ed", "-ing", "-ly") and its shape (capitals, digits, hyphens: "Xx", "x-x", "d.d"). Each of the
/// <see cref="Slots"/> features is an id into one table; id 0 (<see cref="None"/>) stands for padding, a word too short
/// for the suffix, and a suffix or shape too rare in the training text to have its own id.
/// </summary>
public sealed class WordFeatures
{
    /// <summary>S: features per word — suffixes of 1, 2 and 3 letters, and the shape.</summary>
    public const int Slots = 4;

    /// <summary>The id of padding and of every feature without an id of its own.</summary>
    public const int None = 0;

    const string NoneName = "<none>";
    readonly Dictionary<string, int> _ids;

    WordFeatures(IReadOnlyList<string> names)
    {
        Names = names;
        _ids = new Dictionary<string, int>(names.Count, StringComparer.Ordinal);
        for (int i = 0; i < names.Count; i++)
            if (!_ids.TryAdd(names[i], i)) throw new DataSourceException($"The spelling-feature list names '{names[i]}' twice (ids {_ids[names[i]]} and {i}).");
    }

    /// <summary>Every feature in id order: <c>&lt;none&gt;</c>, then "s1:…", "s2:…", "s3:…" suffixes and "shape:…" shapes.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>F: the size of the feature table.</summary>
    public int Count => Names.Count;

    /// <summary>The <see cref="Slots"/> feature names of <paramref name="word"/> (null where the word is too short for the suffix).</summary>
    public static string?[] Describe(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        var lower = word.ToLowerInvariant();
        return [Suffix(lower, 1), Suffix(lower, 2), Suffix(lower, 3), "shape:" + Shape(word)];
    }

    static string? Suffix(string lower, int n) => lower.Length > n ? $"s{n}:{lower[^n..]}" : null;

    /// <summary>
    /// The word's shape: capitals → X, other letters → x, digits → d, anything else kept, with runs of the same class
    /// collapsed ("McDonald" → "XxXx", "1,250.5" → "d,d.d", "e-mail" → "x-x").
    /// </summary>
    public static string Shape(string word)
    {
        var shape = new StringBuilder(Math.Min(word.Length, 8));
        foreach (char ch in word)
        {
            char c = char.IsUpper(ch) ? 'X' : char.IsLetter(ch) ? 'x' : char.IsDigit(ch) ? 'd' : ch;
            if (shape.Length == 0 || shape[^1] != c) shape.Append(c);
        }
        return shape.ToString();
    }

    /// <summary>Writes the <see cref="Slots"/> feature ids of <paramref name="word"/> into <paramref name="ids"/>.</summary>
    public void Write(string word, Span<int> ids)
    {
        if (ids.Length != Slots) throw new ArgumentException($"Expected room for {Slots} feature ids, got {ids.Length}.", nameof(ids));
        var names = Describe(word);
        for (int s = 0; s < Slots; s++) ids[s] = names[s] is { } n && _ids.TryGetValue(n, out int id) ? id : None;
    }

    /// <summary>
    /// The features of <paramref name="words"/> (the training text) that occur at least <paramref name="minCount"/> times,
    /// most frequent first, ties in ordinal order so the ids never depend on hash order.
    /// </summary>
    public static WordFeatures Build(IEnumerable<string> words, int minCount)
    {
        if (minCount < 1) throw new ArgumentOutOfRangeException(nameof(minCount), minCount, "The frequency cut-off must be at least 1.");
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var w in words)
            foreach (var name in Describe(w))
                if (name is not null) counts[name] = counts.GetValueOrDefault(name) + 1;
        var kept = counts.Where(p => p.Value >= minCount).OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key);
        return new WordFeatures([NoneName, .. kept]);
    }

    public JsonArray ToJson() => new(Names.Select(n => (JsonNode)JsonValue.Create(n)).ToArray());

    /// <summary>Reads <see cref="ToJson"/>'s output; <paramref name="source"/> names the file in errors.</summary>
    public static WordFeatures FromJson(JsonArray json, string source)
    {
        var names = json.Select(n => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new DataSourceException($"{source}: the spelling features must be strings.")).ToArray();
        if (names.Length == 0 || names[None] != NoneName) throw new DataSourceException($"{source}: the spelling-feature list starts with {NoneName}.");
        return new WordFeatures(names);
    }
}
