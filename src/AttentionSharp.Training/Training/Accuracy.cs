namespace AttentionSharp.Training;

/// <summary>Classification accuracy from logits.</summary>
public static class Accuracy
{
    /// <summary>How many rows of the (N, classes) <paramref name="logits"/> have their largest value at the label's index (the first maximum on ties).</summary>
    public static int Correct(ReadOnlySpan<float> logits, int classes, ReadOnlySpan<int> labels)
    {
        if (classes <= 0 || logits.Length != labels.Length * classes)
            throw new ArgumentException($"{labels.Length} labels over {classes} classes need {labels.Length * classes} logits; got {logits.Length}.");
        int correct = 0;
        for (int i = 0; i < labels.Length; i++)
            if (Argmax(logits.Slice(i * classes, classes)) == labels[i]) correct++;
        return correct;
    }

    /// <summary>The index of the first largest value; NaN never wins.</summary>
    public static int Argmax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best] || float.IsNaN(values[best])) best = i;
        return best;
    }
}
