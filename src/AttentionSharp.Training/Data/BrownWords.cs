namespace AttentionSharp.Data;

/// <summary>
/// Splits typed text into words the way the Brown corpus has them: punctuation apart (<c>,</c> <c>.</c> <c>;</c>
/// <c>?</c> <c>(</c> …), double quotes as <c>``</c> and <c>''</c>, a dash <c>--</c> on its own, while contractions and
/// possessives stay whole (<c>didn't</c>, <c>John's</c>, as the corpus tags them <c>dod*</c>, <c>np$</c>), as do
/// hyphenated words, numbers such as <c>1,250.5</c>, initials and the common abbreviations (<c>U.S.</c>, <c>Mr.</c>).
/// </summary>
public static class BrownWords
{
    static readonly HashSet<string> Abbreviations = new(StringComparer.OrdinalIgnoreCase)
    {
        "mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "mt.", "ft.", "co.", "corp.", "inc.", "ltd.", "vs.", "etc.", "gen.", "gov.", "sen.", "rep.", "rev.", "prof.", "capt.", "col.", "lt.", "sgt.",
        "jan.", "feb.", "aug.", "sept.", "oct.", "nov.", "dec.", "no.",
    };

    const string Leading = "([{`\"'";
    const string Trailing = ".,;:!?)]}\"'";

    /// <summary>The words of <paramref name="text"/> in order.</summary>
    public static IReadOnlyList<string> Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var words = new List<string>();
        foreach (var raw in text.Replace("--", " -- ").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            string token = raw;
            var tail = new List<string>();
            while (token.Length > 0 && Leading.Contains(token[0]))
            {
                if (token.StartsWith("``", StringComparison.Ordinal)) { words.Add("``"); token = token[2..]; continue; }
                words.Add(token[0] == '"' ? "``" : token[0].ToString());
                token = token[1..];
            }
            while (token.Length > 0 && Trailing.Contains(token[^1]) && !KeepsFinalPeriod(token))
            {
                if (token.EndsWith("''", StringComparison.Ordinal)) { tail.Add("''"); token = token[..^2]; continue; }
                // A final apostrophe after s is a plural possessive (the boys'), part of the word.
                if (token[^1] == '\'' && token.Length > 1 && char.ToLowerInvariant(token[^2]) == 's') break;
                tail.Add(token[^1] == '"' ? "''" : token[^1].ToString());
                token = token[..^1];
            }
            if (token.Length > 0) words.Add(token);
            tail.Reverse();
            words.AddRange(tail);
        }
        return words;
    }

    /// <summary>A final period that belongs to the word: initials (J.), dotted abbreviations (U.S.), listed abbreviations (Mr.).</summary>
    static bool KeepsFinalPeriod(string token) =>
        token.EndsWith('.') && token.Length > 1 &&
        ((token.Length == 2 && char.IsLetter(token[0])) || token[..^1].Contains('.') && char.IsLetter(token[^2]) || Abbreviations.Contains(token));
}
