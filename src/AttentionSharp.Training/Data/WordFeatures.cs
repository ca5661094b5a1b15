// Source: the spelling features of Ratnaparkhi, "A Maximum Entropy Model for Part-of-Speech Tagging" (1996) and the
// word shapes of Collins (2002) / Finkel et al. (2005), used here as embedded ids beside the word's own.
using System.Text;
using System.Text.Json.Nodes;

namespace AttentionSharp.Data;

/// <summary>
/// Spelling features that let a tagger read a word it has never seen: its first and last letters (lowercased: "un-",
/// "re-", "-s", "-ed", "-ing", "-ness") and its shape (capitals, digits, hyphens: "Xx", "x-x", "d.d"). Each of the
/// <see cref="Slots"/> features is an id into one table; id 0 (<see cref="None"/>) stands for padding, a word too short
/// for the prefix or suffix, and a feature too rare in the training text to have its own id.
/// </summary>
public sealed class WordFeatures
{
    /// <summary>
    /// The kinds of feature, one per slot: prefixes of 1–3 letters, suffixes of 1–4, and the shape. Ratnaparkhi's
    /// tagger read prefixes and suffixes up to 4 letters; here the prefixes and the 4-letter suffix lifted the
    /// tagger's accuracy on unseen words (docs/tasks.md).
    /// </summary>
    public static IReadOnlyList<string> DefaultKinds { get; } = ["s1", "s2", "s3", "s4", "p1", "p2", "p3", "shape"];

    /// <summary>The kinds of the vocabularies written before prefixes were read, which name no kinds of their own.</summary>
    public static IReadOnlyList<string> SuffixKinds { get; } = ["s1", "s2", "s3", "shape"];

    /// <summary>The id of padding and of every feature without an id of its own.</summary>
    public const int None = 0;

    const string NoneName = "<none>";
    readonly Dictionary<string, int> _ids;

    WordFeatures(IReadOnlyList<string> kinds, IReadOnlyList<string> names)
    {
        foreach (var kind in kinds) _ = Length(kind);
        if (kinds.Distinct(StringComparer.Ordinal).Count() != kinds.Count)
            throw new DataSourceException($"The spelling-feature kinds [{string.Join(", ", kinds)}] name a kind twice.");
        Kinds = kinds;
        Names = names;
        _ids = new Dictionary<string, int>(names.Count, StringComparer.Ordinal);
        for (int i = 0; i < names.Count; i++)
        {
            if (!_ids.TryAdd(names[i], i))
                throw new DataSourceException(
                    $"The spelling-feature list names '{names[i]}' twice (ids {_ids[names[i]]} and {i}).");
            if (i > None && !kinds.Contains(names[i][..Math.Max(0, names[i].IndexOf(':'))], StringComparer.Ordinal))
                throw new DataSourceException(
                    $"The spelling feature '{names[i]}' (id {i}) is of none of the kinds [{string.Join(", ", kinds)}].");
        }
    }

    /// <summary>The kind of each slot, in slot order: "pN" (the first N letters), "sN" (the last N), "shape".</summary>
    public IReadOnlyList<string> Kinds { get; }

    /// <summary>S: features per word, one per kind.</summary>
    public int Slots => Kinds.Count;

    /// <summary>Every feature in id order: <c>&lt;none&gt;</c>, then names such as "s2:ed", "p1:u" and "shape:Xx".</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>F: the size of the feature table.</summary>
    public int Count => Names.Count;

    /// <summary>
    /// The <see cref="Slots"/> feature names of <paramref name="word"/> (null where the word is too short for the prefix
    /// or suffix).
    /// </summary>
    public string?[] Describe(string word) => Describe(word, Kinds);

    /// <summary>The feature names of <paramref name="word"/> for <paramref name="kinds"/>, one per kind.</summary>
    public static string?[] Describe(string word, IReadOnlyList<string> kinds)
    {
        ArgumentNullException.ThrowIfNull(word);
        var lower = word.ToLowerInvariant();
        var names = new string?[kinds.Count];
        for (int k = 0; k < kinds.Count; k++)
        {
            var kind = kinds[k];
            int n = Length(kind);
            names[k] = n == 0 ? "shape:" + Shape(word)
                : lower.Length <= n ? null
                : kind[0] == 's' ? $"{kind}:{lower[^n..]}" : $"{kind}:{lower[..n]}";
        }
        return names;
    }

    /// <summary>The letters a kind reads (0 for the shape); an unknown kind is refused by name.</summary>
    static int Length(string kind) =>
        kind == "shape" ? 0
        : kind.Length == 2 && kind[0] is 's' or 'p' && kind[1] is >= '1' and <= '9' ? kind[1] - '0'
        : throw new DataSourceException($"'{kind}' is not a spelling-feature kind: use pN or sN (N = 1–9) or shape.");

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
        if (ids.Length != Slots)
            throw new ArgumentException($"Expected room for {Slots} feature ids, got {ids.Length}.", nameof(ids));
        var names = Describe(word, Kinds);
        for (int s = 0; s < Slots; s++) ids[s] = names[s] is { } n && _ids.TryGetValue(n, out int id) ? id : None;
    }

    /// <summary>
    /// The features of <paramref name="words"/> (the training text) that occur at least <paramref name="minCount"/> times,
    /// most frequent first, ties in ordinal order so the ids never depend on hash order; of <paramref name="kinds"/>
    /// (<see cref="DefaultKinds"/> when null).
    /// </summary>
    public static WordFeatures Build(IEnumerable<string> words, int minCount, IReadOnlyList<string>? kinds = null)
    {
        kinds ??= DefaultKinds;
        if (minCount < 1)
            throw new ArgumentOutOfRangeException(nameof(minCount), minCount, "The frequency cut-off must be at least 1.");
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var w in words)
            foreach (var name in Describe(w, kinds))
                if (name is not null) counts[name] = counts.GetValueOrDefault(name) + 1;
        var kept = counts.Where(p => p.Value >= minCount).OrderByDescending(p => p.Value)
            .ThenBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key);
        return new WordFeatures(kinds, [NoneName, .. kept]);
    }

    /// <summary>The feature names in id order, as a JSON array.</summary>
    public JsonArray ToJson() => Strings(Names);

    /// <summary>The kinds in slot order, as a JSON array.</summary>
    public JsonArray KindsToJson() => Strings(Kinds);

    static JsonArray Strings(IEnumerable<string> items) => new(items.Select(n => (JsonNode)JsonValue.Create(n)).ToArray());

    /// <summary>
    /// Reads <see cref="ToJson"/>'s and <see cref="KindsToJson"/>'s output (no kinds: <see cref="SuffixKinds"/>, as
    /// the vocabularies written before kinds were named); <paramref name="source"/> names the file in errors.
    /// </summary>
    public static WordFeatures FromJson(JsonArray json, JsonArray? kinds, string source)
    {
        string[] Read(JsonArray array, string what) => array.Select(n => n is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : throw new DataSourceException($"{source}: the spelling-feature {what} must be strings.")).ToArray();
        var names = Read(json, "names");
        if (names.Length == 0 || names[None] != NoneName)
            throw new DataSourceException($"{source}: the spelling-feature list starts with {NoneName}.");
        try { return new WordFeatures(kinds is null ? SuffixKinds : Read(kinds, "kinds"), names); }
        catch (DataSourceException e) { throw new DataSourceException($"{source}: {e.Message}"); }
    }
}
