namespace AttentionSharp.Data;

/// <summary>One sentence for tagging: word ids, universal tag ids, and which words never occurred in the training text.</summary>
public sealed record TaggedSentence(int[] Words, int[] Tags, bool[] Unseen)
{
    public int Length => Words.Length;
}

/// <summary>
/// A padded batch, row-major (B, T): <see cref="Ids"/> hold <see cref="WordVocabulary.Pad"/> and <see cref="Labels"/>
/// hold <see cref="TaggingDataset.IgnoreLabel"/> past each sentence's end.
/// </summary>
public sealed record TaggingBatch(int[] Ids, int[] Labels, bool[] Unseen, int Batch, int Time);

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
        foreach (var document in documents)
            foreach (var sentence in document.Sentences)
                for (int start = 0; start < sentence.Count; start += maxLength)
                {
                    int n = Math.Min(maxLength, sentence.Count - start);
                    var (words, tags, unseen) = (new int[n], new int[n], new bool[n]);
                    for (int i = 0; i < n; i++)
                    {
                        var w = sentence[start + i];
                        words[i] = vocabulary.Id(w.Word);
                        tags[i] = UniversalTags.Id(UniversalTags.FromBrown(w.Tag, document.Id));
                        unseen[i] = !trainingWords.Contains(WordVocabulary.Normalize(w.Word));
                    }
                    sentences.Add(new TaggedSentence(words, tags, unseen));
                }
        return new TaggingDataset(sentences);
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

    TaggingBatch Pad(ReadOnlySpan<int> rows)
    {
        int time = 0;
        foreach (int r in rows) time = Math.Max(time, Sentences[r].Length);
        var ids = new int[rows.Length * time];                          // (B, T), Pad = 0
        var labels = new int[ids.Length];
        var unseen = new bool[ids.Length];
        Array.Fill(labels, IgnoreLabel);
        for (int b = 0; b < rows.Length; b++)
        {
            var s = Sentences[rows[b]];
            s.Words.CopyTo(ids, b * time);
            s.Tags.CopyTo(labels, b * time);
            s.Unseen.CopyTo(unseen, b * time);
        }
        return new TaggingBatch(ids, labels, unseen, rows.Length, time);
    }
}
