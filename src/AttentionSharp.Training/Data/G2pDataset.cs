using System.Text.Json.Nodes;

namespace AttentionSharp.Data;

/// <summary>
/// The ids of grapheme-to-phoneme models. Source: 0 is padding, then the letters of <see cref="CmuDict.Alphabet"/>.
/// Target: 0 padding, 1 BOS, 2 EOS, then the phonemes.
/// </summary>
public sealed class G2pVocabulary
{
    public const int PadId = 0, BosId = 1, EosId = 2;
    const int FirstPhonemeId = 3;

    readonly Dictionary<string, int> _phonemeIds;

    public G2pVocabulary(string graphemes, IReadOnlyList<string> phonemes)
    {
        if (string.IsNullOrEmpty(graphemes) || graphemes.Distinct().Count() != graphemes.Length)
            throw new ArgumentException($"The graphemes must be distinct characters; got \"{graphemes}\".", nameof(graphemes));
        if (phonemes.Count == 0 || phonemes.Distinct().Count() != phonemes.Count)
            throw new ArgumentException("The phonemes must be distinct and at least one.", nameof(phonemes));
        Graphemes = graphemes;
        Phonemes = phonemes;
        _phonemeIds = phonemes.Select((p, i) => (p, i)).ToDictionary(x => x.p, x => x.i + FirstPhonemeId, StringComparer.Ordinal);
    }

    /// <summary>The vocabulary of <see cref="CmuDict"/>'s data, with or without stress digits.</summary>
    public static G2pVocabulary ForCmuDict(bool keepStress) =>
        new(CmuDict.Alphabet, keepStress ? CmuDict.StressedPhonemes : CmuDict.Phonemes);

    public string Graphemes { get; }
    public IReadOnlyList<string> Phonemes { get; }

    /// <summary>Source ids: padding and the graphemes.</summary>
    public int SourceSize => Graphemes.Length + 1;

    /// <summary>Target ids: padding, BOS, EOS and the phonemes.</summary>
    public int TargetSize => Phonemes.Count + FirstPhonemeId;

    /// <summary>
    /// A word → source ids. Upper case is read as lower case (the dictionary is lower case); any other character outside
    /// the graphemes throws, naming it and its position.
    /// </summary>
    public int[] EncodeWord(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        if (word.Length == 0) throw new ArgumentException("The word is empty.", nameof(word));
        var ids = new int[word.Length];
        for (int i = 0; i < word.Length; i++)
        {
            char c = char.ToLowerInvariant(word[i]);
            int at = Graphemes.IndexOf(c);
            if (at < 0)
                throw new ArgumentException(
                    $"The word \"{word}\" has the character '{word[i]}' (U+{(int)word[i]:X4}) at position {i + 1}, " +
                    $"which is not in the alphabet \"{Graphemes}\".");
            ids[i] = at + 1;
        }
        return ids;
    }

    /// <summary>Phonemes → target ids (without BOS and EOS).</summary>
    public int[] EncodePhonemes(IReadOnlyList<string> phonemes) =>
        [.. phonemes.Select(p => _phonemeIds.TryGetValue(p, out int id) ? id
            : throw new ArgumentException($"The phoneme '{p}' is not in the vocabulary.", nameof(phonemes)))];

    /// <summary>Target ids → phonemes, stopping at EOS; padding and BOS are skipped.</summary>
    public string[] DecodePhonemes(IEnumerable<int> ids)
    {
        var result = new List<string>();
        foreach (int id in ids)
        {
            if (id == EosId) break;
            if (id >= FirstPhonemeId && id < TargetSize) result.Add(Phonemes[id - FirstPhonemeId]);
        }
        return [.. result];
    }

    public JsonObject ToJson() => new()
    {
        ["type"] = "g2p",
        ["graphemes"] = Graphemes,
        ["phonemes"] = new JsonArray([.. Phonemes.Select(p => (JsonNode)p)]),
    };

    /// <summary>Reads <see cref="ToJson"/>'s output; <paramref name="source"/> names it in errors.</summary>
    public static G2pVocabulary FromJson(string json, string source)
    {
        try
        {
            if (JsonNode.Parse(json) is not JsonObject o || o["type"]?.GetValue<string>() != "g2p"
                || o["graphemes"]?.GetValue<string>() is not { } graphemes || o["phonemes"] is not JsonArray phonemes)
                throw new DataSourceException(
                    $"{source} is not a g2p vocabulary (expected {{\"type\": \"g2p\", \"graphemes\", \"phonemes\"}}).");
            return new G2pVocabulary(graphemes, [.. phonemes.Select(p => p?.GetValue<string>()
                ?? throw new DataSourceException($"{source} has a null phoneme."))]);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or ArgumentException)
        {
            throw new DataSourceException($"{source} is not a valid g2p vocabulary: {e.Message}", e);
        }
    }
}

/// <summary>A word to pronounce: its text, source ids and every reference pronunciation as target ids.</summary>
public sealed record G2pWord(string Word, int[] Source, IReadOnlyList<int[]> References);

/// <summary>
/// A batch of B words with one reference each: the source (B, S), the decoder input BOS + phonemes and the labels
/// phonemes + EOS (B, T), each padded on the right with <see cref="G2pVocabulary.PadId"/> (a batch of words of one
/// length S holds no source padding).
/// </summary>
public sealed record G2pBatch(int[] Source, int SourceLength, int[] DecoderInput, int[] Labels, int TargetLength, int Batch);

/// <summary>
/// Grapheme-to-phoneme data: every word with its references, and one training example per (word, pronunciation).
/// Batches group words of equal length, which keeps the encoders free of padding (a recurrent encoder's final state is
/// then the state after the word's last letter), or mix every length (a Transformer masks the padding).
/// </summary>
public sealed class G2pDataset
{
    public G2pDataset(IEnumerable<CmuEntry> entries, G2pVocabulary vocabulary)
    {
        ArgumentNullException.ThrowIfNull(entries);
        Vocabulary = vocabulary ?? throw new ArgumentNullException(nameof(vocabulary));
        Words = [.. entries.Select(e =>
            new G2pWord(e.Word, vocabulary.EncodeWord(e.Word), [.. e.Pronunciations.Select(vocabulary.EncodePhonemes)]))];
    }

    public G2pVocabulary Vocabulary { get; }
    public IReadOnlyList<G2pWord> Words { get; }

    /// <summary>Training examples: one per pronunciation.</summary>
    public int ExampleCount => Words.Sum(w => w.References.Count);

    /// <summary>The longest pronunciation, in phonemes.</summary>
    public int MaxTargetLength => Words.Count == 0 ? 0 : Words.Max(w => w.References.Max(r => r.Length));

    /// <summary>
    /// One epoch of training batches of at most <paramref name="batchSize"/> examples: grouped by source length, or with
    /// <paramref name="mixedLengths"/> cut from all examples whatever their length (the sources padded on the right to
    /// the longest in the batch). With <paramref name="shuffle"/> the examples (within a length when grouped) and the
    /// batches' order are shuffled, else both are in dataset order.
    /// </summary>
    public IEnumerable<G2pBatch> Batches(int batchSize, Generator? shuffle = null, bool mixedLengths = false)
    {
        if (batchSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be positive.");
        var examples = Words.SelectMany(w => w.References.Select(r => (w.Source, Target: r))).ToList();
        var chunks = new List<List<(int[] Source, int[] Target)>>();
        IEnumerable<List<(int[] Source, int[] Target)>> groups = mixedLengths ? [examples]
            : examples.GroupBy(e => e.Source.Length).OrderBy(g => g.Key).Select(g => g.ToList());
        foreach (var list in groups)
        {
            if (shuffle is not null) Shuffle(list, shuffle);
            chunks.AddRange(list.Chunk(batchSize).Select(c => c.ToList()));
        }
        if (shuffle is not null) Shuffle(chunks, shuffle);
        foreach (var chunk in chunks) yield return MakeBatch(chunk);
    }

    /// <summary>The words grouped by length in batches of at most <paramref name="batchSize"/>, for decoding.</summary>
    public IEnumerable<IReadOnlyList<G2pWord>> WordBatches(int batchSize)
    {
        if (batchSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be positive.");
        return Words.GroupBy(w => w.Source.Length).OrderBy(g => g.Key).SelectMany(g => g.Chunk(batchSize));
    }

    static G2pBatch MakeBatch(List<(int[] Source, int[] Target)> examples)
    {
        int b = examples.Count, s = examples.Max(e => e.Source.Length), t = examples.Max(e => e.Target.Length) + 1;
        var source = new int[b * s];                         // zeros: PadId after a shorter word
        var input = new int[b * t];
        var labels = new int[b * t];
        for (int i = 0; i < b; i++)
        {
            var (src, target) = examples[i];
            src.CopyTo(source, i * s);
            input[i * t] = G2pVocabulary.BosId;
            target.CopyTo(input, i * t + 1);                 // BOS y_1 … y_n, then padding
            target.CopyTo(labels, i * t);                    // y_1 … y_n EOS, then padding
            labels[i * t + target.Length] = G2pVocabulary.EosId;
        }
        return new G2pBatch(source, s, input, labels, t, b);
    }

    static void Shuffle<T>(List<T> list, Generator rng)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }
}
