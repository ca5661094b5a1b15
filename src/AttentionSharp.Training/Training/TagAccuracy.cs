namespace AttentionSharp.Training;

/// <summary>
/// Token accuracy of a tagger, overall and on the words that never occurred in the training text (the usual measure of
/// how a tagger generalises). Positions labelled <see cref="Data.TaggingDataset.IgnoreLabel"/> are not counted.
/// </summary>
public sealed class TagAccuracy
{
    public long Correct { get; private set; }
    public long Total { get; private set; }
    public long UnseenCorrect { get; private set; }
    public long UnseenTotal { get; private set; }

    /// <summary>Correct / Total, or NaN when nothing was counted.</summary>
    public double Accuracy => Total == 0 ? double.NaN : (double)Correct / Total;

    /// <summary>UnseenCorrect / UnseenTotal, or NaN when no unseen word was counted.</summary>
    public double UnseenAccuracy => UnseenTotal == 0 ? double.NaN : (double)UnseenCorrect / UnseenTotal;

    /// <summary>
    /// Counts one batch: <paramref name="logits"/> (N, K) row-major with N = labels.Length; the prediction is the arg-max
    /// (the first on ties).
    /// </summary>
    public void Add(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, ReadOnlySpan<bool> unseen)
    {
        if (labels.Length == 0 || logits.Length % labels.Length != 0 || unseen.Length != labels.Length)
            throw new ArgumentException($"Expected logits (N, K) for N = {labels.Length} labels and {labels.Length} unseen flags; got {logits.Length} logits and {unseen.Length} flags.");
        int k = logits.Length / labels.Length;
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] == Data.TaggingDataset.IgnoreLabel) continue;
            var row = logits.Slice(i * k, k);
            int best = 0;
            for (int j = 1; j < k; j++) if (row[j] > row[best]) best = j;
            bool correct = best == labels[i];
            Total++;
            if (correct) Correct++;
            if (!unseen[i]) continue;
            UnseenTotal++;
            if (correct) UnseenCorrect++;
        }
    }
}
