using AttentionSharp.Data;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Data;

public class BrownCorpusTests
{
    // The layout of the real files: a sentence a line, a tab opening a paragraph, blank lines between paragraphs.
    internal const string News =
        "\n\n\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at investigation/nn of/in " +
        "Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` no/at evidence/nn ''/'' that/cs any/dti " +
        "irregularities/nns took/vbd place/nn ./.\n\n\n" +
        "\t``/`` Everything/pn went/vbd real/ql smooth/jj ''/'' ,/, the/at sheriff/nn said/vbd ./.\n" +
        "``/`` There/ex wasn't/bedz* a/at bit/nn of/in trouble/nn ''/'' ./.\n\n";

    // Single quotes, a fraction, a hyphenated word, brackets, and Treebank-style clitics split from their words.
    internal const string Humor =
        "\n\n\tHe/pps said/vbd :/: '/' I/ppss do/do n't/* know/vb '/' ;/. it/pps cost/vbd 1/2/cd dollar/nn " +
        "(/( or/cc less/ap )/) at/in term-end/nn ?/.\n" +
        "John/np 's/$ dog/nn 'll/md come/vb !/.\n\n";

    static BrownDocument NewsDocument => BrownCorpus.Parse("ca01", "news", News);
    static BrownDocument HumorDocument => BrownCorpus.Parse("cr09", "humor", Humor);

    [Fact]
    public void ParsesWordsTagsSentencesAndParagraphs()
    {
        var news = NewsDocument;
        Assert.Equal("ca01", news.Id);
        Assert.Equal("news", news.Category);
        Assert.Equal(2, news.Paragraphs.Count);
        Assert.Equal(3, news.Sentences.Count);
        Assert.Equal(new TaggedWord("The", "at"), news.Sentences[0][0]);
        Assert.Equal(new TaggedWord("Atlanta's", "np$"), news.Sentences[0][10]);
        Assert.Equal(new TaggedWord("wasn't", "bedz*"), news.Sentences[2][2]);
        Assert.Equal(new TaggedWord(".", "."), news.Sentences[0][^1]);
        Assert.Equal(25 + 11 + 9, news.WordCount);

        var humor = HumorDocument;
        Assert.Contains(new TaggedWord("1/2", "cd"), humor.Sentences[0]); // the tag follows the last '/'
        Assert.Contains(new TaggedWord("term-end", "nn"), humor.Sentences[0]);
        Assert.Equal(new TaggedWord("'s", "$"), humor.Sentences[1][1]);
    }

    [Fact]
    public void PlainTextReadsLikeProse()
    {
        Assert.Equal(
            "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced " +
            "\"no evidence\" that any irregularities took place.\n" +
            "\"Everything went real smooth\", the sheriff said. \"There wasn't a bit of trouble\".\n",
            BrownCorpus.ToPlainText(NewsDocument));
        Assert.Equal(
            "He said: 'I don't know'; it cost 1/2 dollar (or less) at term-end? John's dog'll come!\n",
            BrownCorpus.ToPlainText(HumorDocument));
        Assert.Equal(
            BrownCorpus.ToPlainText(NewsDocument) + "\n" + BrownCorpus.ToPlainText(HumorDocument),
            BrownCorpus.PlainText([NewsDocument, HumorDocument]));
    }

    [Fact]
    public void LoadsTheNltkLayoutInIdOrder()
    {
        using var dir = new TempDirectory();
        dir.Write("cats.txt", "cr09 humor\nca01 news\n");
        dir.Write("ca01", News);
        dir.Write("cr09", Humor);
        var corpus = BrownCorpus.Load(dir.Path);
        Assert.Equal(["ca01", "cr09"], corpus.Documents.Select(d => d.Id));
        Assert.Equal(["news", "humor"], corpus.Documents.Select(d => d.Category));
        Assert.Equal(3, corpus.Documents[0].Sentences.Count);
    }

    [Fact]
    public void LoadErrorsNameTheFileAndLine()
    {
        using var dir = new TempDirectory();
        var missingCategories = Assert.Throws<DataSourceException>(() => BrownCorpus.Load(dir.Path));
        Assert.Contains("cats.txt", missingCategories.Message);

        dir.Write("cats.txt", "ca01 news\n");
        var missingFile = Assert.Throws<DataSourceException>(() => BrownCorpus.Load(dir.Path));
        Assert.Contains("lists ca01", missingFile.Message);

        dir.Write("ca01", "\n\n\tThe/at jury/nn said\n");
        var badToken = Assert.Throws<DataSourceException>(() => BrownCorpus.Load(dir.Path));
        Assert.Equal("Brown file ca01 line 3: expected WORD/TAG, got 'said'.", badToken.Message);
    }

    [Fact]
    public void SplitIsByDocumentDeterministicAndEightyTenTen()
    {
        var documents = Enumerable.Range(0, 40).Select(i => BrownCorpus.Parse($"c{(char)('a' + i / 10)}{i % 10:D2}", "news", News)).ToArray();
        // The split depends on the sorted ids only, not on the order documents arrive in.
        var split = BrownCorpus.FromDocuments(documents.Reverse()).Split();
        var again = BrownCorpus.FromDocuments(documents).Split();

        Assert.Equal((32, 4, 4), (split.Train.Count, split.Validation.Count, split.Test.Count));
        Assert.Equal(["ca08", "cb08", "cc08", "cd08"], split.Validation.Select(d => d.Id));
        Assert.Equal(["ca09", "cb09", "cc09", "cd09"], split.Test.Select(d => d.Id));
        Assert.Equal(split.Train.Select(d => d.Id), again.Train.Select(d => d.Id));
        var all = split.Train.Concat(split.Validation).Concat(split.Test).Select(d => d.Id).ToList();
        Assert.Equal(40, all.Distinct().Count());
    }
}
