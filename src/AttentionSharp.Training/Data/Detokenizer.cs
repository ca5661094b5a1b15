using System.Text;

namespace AttentionSharp.Data;

/// <summary>
/// Turns a tokenized sentence stream (Brown / Penn Treebank conventions) back into ordinary prose: no space before closing
/// punctuation and clitics (<c>, . ; : ? ! ) ] n't 's 'll</c> …), no space after opening brackets, <c>``</c> and <c>''</c>
/// become <c>"</c>, and a lone <c>'</c> alternates between opening and closing within a paragraph (Brown marks single
/// quotes that way). Sentences of a paragraph are joined by one space; each paragraph ends with a newline.
/// </summary>
internal sealed class Detokenizer(StringBuilder output)
{
    static readonly HashSet<string> ClosingPunctuation = [",", ".", ";", ":", "?", "!", ")", "]", "}", "%", "...", "''"];
    static readonly HashSet<string> OpeningPunctuation = ["(", "[", "{", "``", "$"];
    static readonly HashSet<string> Clitics = new(StringComparer.OrdinalIgnoreCase) { "n't", "'s", "'re", "'ve", "'ll", "'d", "'m" };

    bool _atParagraphStart = true;
    bool _glueNext;
    bool _singleQuoteOpen;

    public void AppendParagraph(IEnumerable<IEnumerable<string>> sentences)
    {
        foreach (var sentence in sentences)
            foreach (string word in sentence)
                AppendWord(word);
        if (!_atParagraphStart) output.Append('\n');
        _atParagraphStart = true;
        _glueNext = false;
        _singleQuoteOpen = false;
    }

    void AppendWord(string word)
    {
        bool attachToPrevious, attachNext;
        if (word == "'")
        {
            // Opening quote: space before, none after. Closing quote: none before.
            attachToPrevious = _singleQuoteOpen;
            attachNext = !_singleQuoteOpen;
            _singleQuoteOpen = !_singleQuoteOpen;
        }
        else
        {
            attachToPrevious = ClosingPunctuation.Contains(word) || Clitics.Contains(word);
            attachNext = OpeningPunctuation.Contains(word);
        }

        if (!_atParagraphStart && !attachToPrevious && !_glueNext) output.Append(' ');
        output.Append(word switch { "``" or "''" => "\"", _ => word });
        _atParagraphStart = false;
        _glueNext = attachNext;
    }
}
