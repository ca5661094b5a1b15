namespace AttentionSharp.Data;

/// <summary>A word and its part-of-speech tag as the Brown corpus writes them, e.g. ("Atlanta's", "np$").</summary>
public readonly record struct TaggedWord(string Word, string Tag)
{
    public override string ToString() => $"{Word}/{Tag}";
}

/// <summary>
/// One file of the Brown corpus: its id (the file name, e.g. <c>ca01</c>), its category (e.g. <c>news</c>) and its text as
/// paragraphs of sentences of tagged words.
/// </summary>
public sealed class BrownDocument
{
    public BrownDocument(string id, string category, IReadOnlyList<IReadOnlyList<IReadOnlyList<TaggedWord>>> paragraphs)
    {
        Id = id;
        Category = category;
        Paragraphs = paragraphs;
        Sentences = paragraphs.SelectMany(p => p).ToArray();
    }

    /// <summary>The file name, e.g. <c>ca01</c>: 'c', the genre letter a–r, two digits.</summary>
    public string Id { get; }

    /// <summary>The category from <c>cats.txt</c>, e.g. <c>news</c>, <c>fiction</c>, <c>learned</c>.</summary>
    public string Category { get; }

    /// <summary>Paragraphs in order, each a list of sentences.</summary>
    public IReadOnlyList<IReadOnlyList<IReadOnlyList<TaggedWord>>> Paragraphs { get; }

    /// <summary>All sentences in order, paragraphs flattened.</summary>
    public IReadOnlyList<IReadOnlyList<TaggedWord>> Sentences { get; }

    /// <summary>The number of tagged words.</summary>
    public int WordCount => Sentences.Sum(s => s.Count);

    public override string ToString() => $"{Id} ({Category}, {Sentences.Count} sentences)";
}
