// Sources: Petrov, Das and McDonald, "A Universal Part-of-Speech Tagset" (LREC 2012); the Brown → universal table that
// NLTK applies for brown.tagged_words(tagset="universal") (universal_tagset/en-brown.map), whose choices are kept here,
// including its quirks (CS → ADP, OD → ADJ, PN → NOUN, PP$ → DET, WP$ → DET, AP$ → PRT, ABL/ABN → PRT, EX → PRT,
// UH → PRT, CD$ → NOUN, JJ$ → PRT, RB$ → PRT, and most contractions → PRT), checked entry by entry against that file.
namespace AttentionSharp.Data;

/// <summary>
/// The 12 universal part-of-speech tags (NOUN, VERB, ADJ, ADV, PRON, DET, ADP, NUM, CONJ, PRT, '.', X) and the mapping
/// from the Brown corpus's 87 base tags and their decorated forms onto them.
/// </summary>
/// <remarks>
/// A Brown tag is a base tag with decorations, removed in this order: a <c>fw-</c> prefix marks a foreign word (→ X);
/// the suffixes <c>-tl</c> (title), <c>-hl</c> (headline) and <c>-nc</c> (cited word), in any combination, are dropped;
/// a contraction <c>a+b</c> is PRT when a non-verb is fused with a verb (<c>ppss+bem</c> "I'm", <c>ex+bez</c> "there's",
/// <c>wrb+dod</c> "where'd"), as NLTK's table has it, and otherwise keeps its first part's tag (<c>vb+to</c> "wanna" → VERB,
/// <c>in+in</c> → ADP, <c>jjr+cs</c> → ADJ), with the table's three exceptions: <c>wrb+in</c> → PRT, <c>do+ppss</c> ("d'you")
/// and the three-part forms → X; a trailing <c>*</c> (negation, <c>bez*</c> "isn't")
/// is dropped, while <c>*</c> alone is the negator "not" (→ ADV); a genitive <c>$</c> (<c>np$</c>) maps as its base tag
/// unless the table names the genitive itself (<c>pp$</c>, <c>pp$$</c>, <c>wp$</c>, <c>ap$</c>).
/// A tag that is still not in the table is an error, never a silent X: it would mean the corpus is not the Brown corpus.
/// </remarks>
public static class UniversalTags
{
    /// <summary>The tags in id order.</summary>
    public static readonly IReadOnlyList<string> Names = ["NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", ".", "X"];

    /// <summary>The number of tags (12).</summary>
    public static int Count => Names.Count;

    static readonly Dictionary<string, int> Ids = Names.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i, StringComparer.Ordinal);

    // Base Brown tags (lowercase, as the NLTK files write them) → universal tag.
    static readonly Dictionary<string, string> BaseTags = new(StringComparer.Ordinal)
    {
        // punctuation
        ["."] = ".", [","] = ".", [":"] = ".", ["("] = ".", [")"] = ".", ["--"] = ".", ["'"] = ".", ["''"] = ".", ["``"] = ".",
        // negator "not", "n't"
        ["*"] = "ADV",
        // pre-qualifiers / pre-quantifiers (quite, all, both) and the quantifier "each"-class
        ["abl"] = "PRT", ["abn"] = "PRT", ["abx"] = "DET", ["ap"] = "ADJ", ["ap$"] = "PRT",
        // genitives the table maps apart from their base tag
        ["cd$"] = "NOUN", ["jj$"] = "PRT", ["rb$"] = "PRT",
        ["at"] = "DET",
        // be, do, have and modals
        ["be"] = "VERB", ["bed"] = "VERB", ["bedz"] = "VERB", ["beg"] = "VERB", ["bem"] = "VERB", ["ben"] = "VERB",
        ["ber"] = "VERB", ["bez"] = "VERB",
        ["do"] = "VERB", ["dod"] = "VERB", ["doz"] = "VERB",
        ["hv"] = "VERB", ["hvd"] = "VERB", ["hvg"] = "VERB", ["hvn"] = "VERB", ["hvz"] = "VERB",
        ["md"] = "VERB",
        ["vb"] = "VERB", ["vbd"] = "VERB", ["vbg"] = "VERB", ["vbn"] = "VERB", ["vbz"] = "VERB",
        // conjunctions: coordinating → CONJ; subordinating → ADP (as the Penn Treebank's IN)
        ["cc"] = "CONJ", ["cs"] = "ADP",
        ["cd"] = "NUM", ["od"] = "ADJ",
        // determiners; existential "there" is PRT in NLTK's table
        ["dt"] = "DET", ["dti"] = "DET", ["dts"] = "DET", ["dtx"] = "DET", ["ex"] = "PRT", ["wdt"] = "DET",
        ["in"] = "ADP",
        ["jj"] = "ADJ", ["jjr"] = "ADJ", ["jjs"] = "ADJ", ["jjt"] = "ADJ",
        // nouns, proper nouns, adverbial nouns, nominal pronouns (everybody)
        ["nn"] = "NOUN", ["nns"] = "NOUN", ["np"] = "NOUN", ["nps"] = "NOUN", ["nr"] = "NOUN", ["nrs"] = "NOUN", ["pn"] = "NOUN",
        // pronouns; the possessive determiner (my, our) is DET, the possessive pronoun (mine, ours) PRON
        ["pp$"] = "DET", ["pp$$"] = "PRON", ["ppl"] = "PRON", ["ppls"] = "PRON", ["ppo"] = "PRON", ["pps"] = "PRON",
        ["ppss"] = "PRON", ["wp$"] = "DET", ["wpo"] = "PRON", ["wps"] = "PRON",
        // adverbs and qualifiers
        ["ql"] = "ADV", ["qlp"] = "ADV", ["rb"] = "ADV", ["rbr"] = "ADV", ["rbt"] = "ADV", ["rn"] = "ADV", ["wql"] = "ADV", ["wrb"] = "ADV",
        // particles, infinitival "to"
        ["rp"] = "PRT", ["to"] = "PRT",
        // interjections (PRT in NLTK's table), and the few tokens the corpus leaves untagged
        ["uh"] = "PRT", ["nil"] = "X",
    };

    static readonly string[] Suffixes = ["-tl", "-hl", "-nc"];

    /// <summary>The id (index into <see cref="Names"/>) of a universal tag.</summary>
    public static int Id(string universalTag) => Ids.TryGetValue(universalTag, out int id)
        ? id : throw new ArgumentException($"'{universalTag}' is not a universal tag; expected one of {string.Join(" ", Names)}.", nameof(universalTag));

    /// <summary>
    /// The universal tag of a Brown tag (any case). <paramref name="documentId"/> names where the tag came from in the
    /// error raised for a tag the table does not know.
    /// </summary>
    public static string FromBrown(string brownTag, string documentId) => TryFromBrown(brownTag, out var tag)
        ? tag
        : throw new DataSourceException($"Brown document {documentId}: the tag '{brownTag}' has no universal tag (its base tag '{BaseTag(brownTag)}' is not a Brown tag).");

    /// <summary>The universal tag of a Brown tag, or false when its base tag is unknown.</summary>
    public static bool TryFromBrown(string brownTag, out string universalTag)
    {
        ArgumentNullException.ThrowIfNull(brownTag);
        string tag = brownTag.ToLowerInvariant();
        if (tag.StartsWith("fw-", StringComparison.Ordinal) && tag.Length > 3) { universalTag = "X"; return true; }
        if (Contraction(tag) is { } fused) { universalTag = fused; return true; }
        string b = BaseTag(tag);
        if (BaseTags.TryGetValue(b, out universalTag!)) return true;
        if (b.Length > 1 && b.EndsWith('$') && BaseTags.TryGetValue(b[..^1], out universalTag!)) return true;
        universalTag = "";
        return false;
    }

    // Base tags of verbs: be, have, do, modals and lexical verbs.
    static bool IsVerb(string baseTag) => BaseTags.TryGetValue(baseTag, out var u) && u == "VERB";

    /// <summary>
    /// The universal tag of a contraction (two or more base tags joined by <c>+</c>), or null when <paramref name="tag"/> is
    /// none or its parts are not all known: NLTK's table makes a non-verb fused with a verb PRT, and every other pair its
    /// first part's tag, apart from the exceptions named in the class remarks.
    /// </summary>
    static string? Contraction(string tag)
    {
        var parts = StripSuffixes(tag).Split('+');
        if (parts.Length < 2) return null;
        if (parts.Length > 2) return "X";
        for (int i = 0; i < parts.Length; i++)
        {
            if (parts[i].Length > 1 && parts[i].EndsWith('*')) parts[i] = parts[i][..^1];
            if (!BaseTags.ContainsKey(parts[i])) return null;
        }
        if (parts[0] == "do" && parts[1] == "ppss") return "X";
        if (parts[0] == "wrb" && parts[1] == "in") return "PRT";
        return !IsVerb(parts[0]) && IsVerb(parts[1]) ? "PRT" : BaseTags[parts[0]];
    }

    static string StripSuffixes(string tag)
    {
        for (bool stripped = true; stripped;)
        {
            stripped = false;
            foreach (var suffix in Suffixes)
                if (tag.Length > suffix.Length && tag.EndsWith(suffix, StringComparison.Ordinal)) { tag = tag[..^suffix.Length]; stripped = true; }
        }
        return tag;
    }

    /// <summary>The tag with its title/headline/citation suffixes, contraction tail and negation mark removed (lowercase).</summary>
    public static string BaseTag(string brownTag)
    {
        string tag = StripSuffixes(brownTag.ToLowerInvariant());
        int plus = tag.IndexOf('+');
        if (plus > 0) tag = tag[..plus];
        if (tag.Length > 1 && tag.EndsWith('*')) tag = tag[..^1];
        return tag;
    }
}
