namespace AttentionSharp.Training.Tasks;

/// <summary>
/// The periodic validation sample of the tasks that validate on examples (sentences, images, words): drawn once, with a
/// fixed seed, uniformly from all of the validation split, so every pass scores the same examples and the estimate is
/// unbiased for the whole split.
/// </summary>
public static class ValidationSample
{
    /// <summary><paramref name="count"/> distinct indices of [0, n), drawn uniformly, in increasing order.</summary>
    public static int[] Indices(int n, int count, Generator rng)
    {
        if (count < 0 || count > n) throw new ArgumentOutOfRangeException(nameof(count), count, $"A sample holds 0 to {n} of the {n} examples.");
        var all = Enumerable.Range(0, n).ToArray();
        for (int i = 0; i < count; i++)   // a partial Fisher–Yates shuffle
        {
            int j = i + rng.NextInt(n - i);
            (all[i], all[j]) = (all[j], all[i]);
        }
        return [.. all.Take(count).Order()];
    }
}
