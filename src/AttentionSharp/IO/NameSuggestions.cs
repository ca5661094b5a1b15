namespace AttentionSharp.IO;

/// <summary>
/// "Did you mean" for names that were not found: candidates ranked by edit distance. Public so that every loader of named
/// tensors (safetensors here, Hugging Face folders in Interop) suggests names the same way.
/// </summary>
public static class NameSuggestions
{
    /// <summary>Names compared are cut to this many characters, so a hostile header cannot make an error message slow.</summary>
    const int MaxCompared = 256;

    /// <summary>The <paramref name="count"/> candidates closest to <paramref name="wanted"/>, nearest first, ties in ordinal order.</summary>
    public static IEnumerable<string> Closest(string wanted, IEnumerable<string> candidates, int count) => candidates
        .Select(c => (Name: c, Distance: EditDistance(wanted, c)))
        .OrderBy(p => p.Distance)
        .ThenBy(p => p.Name, StringComparer.Ordinal)
        .Take(count)
        .Select(p => p.Name);

    /// <summary>Levenshtein distance (insertions, deletions, substitutions each cost 1), one row at a time.</summary>
    static int EditDistance(string a, string b)
    {
        var s = a.AsSpan(0, Math.Min(a.Length, MaxCompared));
        var t = b.AsSpan(0, Math.Min(b.Length, MaxCompared));
        Span<int> row = stackalloc int[t.Length + 1];
        for (int j = 0; j <= t.Length; j++) row[j] = j;
        for (int i = 1; i <= s.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= t.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(above, row[j - 1]) + 1, diagonal + (s[i - 1] == t[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[t.Length];
    }
}
