namespace AttentionSharp.Training;

/// <summary>
/// Phoneme and word error rates of grapheme-to-phoneme predictions, accumulated word by word. Each prediction is compared
/// with every reference pronunciation of its word and the closest one counts (the fewest edits; the first listed on a
/// tie), as is usual for dictionaries with alternates:
/// PER = Σ_words Levenshtein(prediction, closest reference) / Σ_words |closest reference|;
/// WER = the fraction of words whose prediction equals none of the references.
/// </summary>
public sealed class G2pErrorRates
{
    long _edits, _referenceLength;
    int _words, _wrongWords;

    /// <summary>Words scored so far.</summary>
    public int Words => _words;

    /// <summary>Edits (insertions, deletions, substitutions) against the closest references, summed.</summary>
    public long Edits => _edits;

    /// <summary>The closest references' phonemes, summed.</summary>
    public long ReferenceLength => _referenceLength;

    /// <summary>Phoneme error rate; NaN before any word.</summary>
    public double PhonemeErrorRate => _referenceLength == 0 ? double.NaN : (double)_edits / _referenceLength;

    /// <summary>Word error rate; NaN before any word.</summary>
    public double WordErrorRate => _words == 0 ? double.NaN : (double)_wrongWords / _words;

    /// <summary>Scores one word's prediction against its references; returns the edit distance to the closest one.</summary>
    public int Add<T>(ReadOnlySpan<T> prediction, IReadOnlyList<T[]> references) where T : IEquatable<T>
    {
        if (references.Count == 0) throw new ArgumentException("A word needs at least one reference pronunciation.", nameof(references));
        int best = -1, bestLength = 0;
        foreach (var reference in references)
        {
            int d = EditDistance(prediction, reference);
            if (best < 0 || d < best) (best, bestLength) = (d, reference.Length);
        }
        _edits += best;
        _referenceLength += bestLength;
        _words++;
        if (best > 0) _wrongWords++;
        return best;
    }

    /// <summary>
    /// Levenshtein distance: the fewest insertions, deletions and substitutions turning a into b, by the two-row dynamic
    /// programme D[i][j] = min(D[i−1][j] + 1, D[i][j−1] + 1, D[i−1][j−1] + [a_i ≠ b_j]).
    /// </summary>
    public static int EditDistance<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : IEquatable<T>
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(previous[j] + 1, current[j - 1] + 1), previous[j - 1] + (a[i - 1].Equals(b[j - 1]) ? 0 : 1));
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
