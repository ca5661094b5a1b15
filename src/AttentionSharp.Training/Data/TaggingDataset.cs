namespace AttentionSharp.Data;

/// <summary>
/// One sentence for tagging: word ids, universal tag ids, which words never occurred in the training text, and the
/// words' spelling-feature ids (<see cref="WordFeatures.Slots"/> per word; empty when none were computed).
/// </summary>
public sealed record TaggedSentence(int[] Words, int[] Tags, bool[] Unseen)
{
    public int Length => Words.Length;

    /// <summary>(Length, S) spelling-feature ids, row-major, or empty.</summary>
    public int[] Features { get; init; } = [];
}

/// <summary>
/// A padded batch, row-major (B, T): <see cref="Ids"/> hold <see cref="WordVocabulary.Pad"/> and <see cref="Labels"/>
/// hold <see cref="TaggingDataset.IgnoreLabel"/> past each sentence's end. <see cref="Features"/> is (B, T, S) with
/// <see cref="WordFeatures.None"/> at padding, or empty when the sentences carry no spelling features.
/// </summary>
public sealed record TaggingBatch(int[] Ids, int[] Labels, bool[] Unseen, int Batch, int Time)
{
    public int[] Features { get; init; } = [];

    /// <summary>
    /// Empty when every position is scored (tagging): then <see cref="Labels"/> and <see cref="Unseen"/> are (B, T). For
    /// masked-word modelling only the chosen positions are scored: this lists them as flat indices b·T + t, and
    /// <see cref="Labels"/> and <see cref="Unseen"/> hold one entry per listed position.
    /// </summary>
    public int[] Positions { get; init; } = [];

    /// <summary>Rows [first, first + count) as a batch of their own (one rank's share under data parallelism).</summary>
    public TaggingBatch Rows(int first, int count)
    {
        if (first < 0 || count < 1 || first + count > Batch)
            throw new ArgumentOutOfRangeException(nameof(count), $"Rows [{first}, {first + count}) are not within the batch's {Batch}.");
        if (first == 0 && count == Batch) return this;
        int from = first * Time, length = count * Time, slots = Features.Length / Math.Max(1, Ids.Length);
        var features = Features.Length == 0 ? [] : Features.AsSpan(from * slots, length * slots).ToArray();
#pragma warning disable format
        if (Positions.Length == 0)
            return new TaggingBatch(Ids.AsSpan(from, length).ToArray(), Labels.AsSpan(from, length).ToArray(),
                Unseen.AsSpan(from, length).ToArray(), count, Time) { Features = features };
        var kept = Enumerable.Range(0, Positions.Length).Where(i => Positions[i] >= from && Positions[i] < from + length).ToArray();
        return new TaggingBatch(Ids.AsSpan(from, length).ToArray(), [.. kept.Select(i => Labels[i])], [.. kept.Select(i => Unseen[i])],
            count, Time) { Features = features, Positions = [.. kept.Select(i => Positions[i] - from)] };
#pragma warning restore format
    }

    /// <summary>The positions scored in rows [first, first + count).</summary>
    public int ScoredIn(int first, int count)
    {
        int from = first * Time, to = (first + count) * Time;
        return Positions.Length > 0
            ? Positions.Count(p => p >= from && p < to)
            : Labels.AsSpan(from, to - from).Length - Labels.AsSpan(from, to - from).Count(TaggingDataset.IgnoreLabel);
    }
}

/// <summary>
/// Brown sentences as (word ids, universal tag ids) for a word-level tagger. Sentences longer than the model's window are
/// cut into consecutive pieces of at most <c>maxLength</c> words, so every word is tagged exactly once.
/// </summary>
public sealed class TaggingDataset
{
    /// <summary>The label of padding, which no loss or accuracy counts (PyTorch's ignore_index).</summary>
    public const int IgnoreLabel = -100;

    TaggingDataset(IReadOnlyList<TaggedSentence> sentences) => Sentences = sentences;

    public IReadOnlyList<TaggedSentence> Sentences { get; }

    /// <summary>The number of tagged words.</summary>
    public int WordCount => Sentences.Sum(s => s.Length);

    /// <summary>The lowercased words of <paramref name="documents"/> (what "seen in training" means).</summary>
    public static HashSet<string> WordSet(IEnumerable<BrownDocument> documents) =>
        documents.SelectMany(d => d.Sentences).SelectMany(s => s).Select(w => WordVocabulary.Normalize(w.Word)).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// The sentences of <paramref name="documents"/> with tags mapped by <see cref="UniversalTags.FromBrown"/> (an
    /// unknown tag throws, naming the tag and the document).
    /// </summary>
    public static TaggingDataset Build(IEnumerable<BrownDocument> documents, WordVocabulary vocabulary, IReadOnlySet<string> trainingWords, int maxLength)
    {
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "The longest piece must hold at least one word.");
        var sentences = new List<TaggedSentence>();
        int slots = vocabulary.Features.Slots;
        foreach (var document in documents)
            foreach (var sentence in document.Sentences)
                for (int start = 0; start < sentence.Count; start += maxLength)
                {
                    int n = Math.Min(maxLength, sentence.Count - start);
                    var (words, tags, unseen, features) = (new int[n], new int[n], new bool[n], new int[n * slots]);
                    for (int i = 0; i < n; i++)
                    {
                        var w = sentence[start + i];
                        words[i] = vocabulary.Id(w.Word);
                        tags[i] = UniversalTags.Id(UniversalTags.FromBrown(w.Tag, document.Id));
                        unseen[i] = !trainingWords.Contains(WordVocabulary.Normalize(w.Word));
                        vocabulary.Features.Write(w.Word, features.AsSpan(i * slots, slots));
                    }
                    sentences.Add(new TaggedSentence(words, tags, unseen) { Features = features });
                }
        return new TaggingDataset(sentences);
    }

    /// <summary>
    /// Words to tag that carry no tags (a sentence typed by a user): ids and spelling features, tags all
    /// <see cref="IgnoreLabel"/>, unseen where the word is not in <paramref name="trainingWords"/> (null: none unseen).
    /// </summary>
    public static TaggedSentence Untagged(IReadOnlyList<string> words, WordVocabulary vocabulary, IReadOnlySet<string>? trainingWords = null)
    {
        int n = words.Count, slots = vocabulary.Features.Slots;
        var (ids, tags, unseen, features) = (new int[n], new int[n], new bool[n], new int[n * slots]);
        Array.Fill(tags, IgnoreLabel);
        for (int i = 0; i < n; i++)
        {
            ids[i] = vocabulary.Id(words[i]);
            unseen[i] = trainingWords is not null && !trainingWords.Contains(WordVocabulary.Normalize(words[i]));
            vocabulary.Features.Write(words[i], features.AsSpan(i * slots, slots));
        }
        return new TaggedSentence(ids, tags, unseen) { Features = features };
    }

    /// <summary>A dataset of sentences already in hand.</summary>
    public static TaggingDataset FromSentences(IEnumerable<TaggedSentence> sentences) => new(sentences.ToArray());

    /// <summary>
    /// Batches of up to <paramref name="batchSize"/> sentences of similar length (sorted by length, then cut), so padding
    /// stays small — which also keeps a bidirectional LSTM's backward pass from reading long runs of padding. With
    /// <paramref name="shuffle"/> the batch order is a random permutation (one epoch); without, it is by length.
    /// </summary>
    public IEnumerable<TaggingBatch> Batches(int batchSize, Generator? shuffle = null)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "A batch holds at least one sentence.");
        var order = Enumerable.Range(0, Sentences.Count).OrderBy(i => Sentences[i].Length).ThenBy(i => i).ToArray();
        int batches = (order.Length + batchSize - 1) / batchSize;
        var batchOrder = Enumerable.Range(0, batches).ToArray();
        if (shuffle is not null)
            for (int i = batches - 1; i > 0; i--)   // Fisher–Yates
            {
                int j = shuffle.NextInt(i + 1);
                (batchOrder[i], batchOrder[j]) = (batchOrder[j], batchOrder[i]);
            }
        foreach (int b in batchOrder)
            yield return Pad(order.AsSpan(b * batchSize, Math.Min(batchSize, order.Length - b * batchSize)));
    }

    /// <summary>One padded batch of the sentences at <paramref name="rows"/>, in that order.</summary>
    public TaggingBatch Pad(ReadOnlySpan<int> rows)
    {
        int time = 0;
        foreach (int r in rows) time = Math.Max(time, Sentences[r].Length);
        var ids = new int[rows.Length * time];                          // (B, T), Pad = 0
        var labels = new int[ids.Length];
        var unseen = new bool[ids.Length];
        var first = Sentences[rows[0]];
        int slots = first.Features.Length / Math.Max(1, first.Length);                  // S, 0 without features
        var features = new int[ids.Length * slots];                                     // (B, T, S), None = 0
        Array.Fill(labels, IgnoreLabel);
        for (int b = 0; b < rows.Length; b++)
        {
            var s = Sentences[rows[b]];
            s.Words.CopyTo(ids, b * time);
            s.Tags.CopyTo(labels, b * time);
            s.Unseen.CopyTo(unseen, b * time);
            if (s.Features.Length != s.Length * slots)
                throw new InvalidOperationException(
                    $"Sentence {rows[b]} has {s.Features.Length} spelling-feature ids for {s.Length} words; the batch's " +
                    $"first sentence has {slots} per word, and every sentence of a batch has the same.");
            s.Features.CopyTo(features, b * time * slots);
        }
        return new TaggingBatch(ids, labels, unseen, rows.Length, time) { Features = features };
    }
}
