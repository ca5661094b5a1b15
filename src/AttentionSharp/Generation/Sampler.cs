namespace AttentionSharp.Generation;

/// <summary>How the next token is drawn from the model's logits.</summary>
public sealed record SamplingOptions
{
    /// <summary>Divides the logits; 0 means greedy (always the most likely token).</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Keep only the K most likely tokens (0 = all).</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of tokens whose probabilities add up to at least P (1 = all).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Divides positive logits (multiplies negative ones) of tokens already generated, as in CTRL (1 = off).</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    public SamplingOptions Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature))
            throw new ArgumentException($"Temperature must be a finite number ≥ 0; got {Temperature}.");
        if (TopK < 0) throw new ArgumentException($"Top-k must be ≥ 0; got {TopK}.");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"Top-p must be in (0, 1]; got {TopP}.");
        if (!(RepetitionPenalty >= 1) || float.IsInfinity(RepetitionPenalty))
            throw new ArgumentException($"The repetition penalty must be ≥ 1; got {RepetitionPenalty}.");
        return this;
    }
}

/// <summary>Picks a token from one row of logits: repetition penalty, temperature, top-k, top-p, then a draw.</summary>
public static class Sampler
{
    public static int Sample(ReadOnlySpan<float> logits, SamplingOptions options, Generator rng,
        ReadOnlySpan<int> history = default)
    {
        var z = logits.ToArray();
        if (options.RepetitionPenalty != 1f)
            foreach (var id in history)
                if ((uint)id < (uint)z.Length) z[id] = z[id] > 0 ? z[id] / options.RepetitionPenalty
                    : z[id] * options.RepetitionPenalty;
        if (options.Temperature == 0) return ArgMax(z);

        // Candidates sorted by logit, most likely first (ties by id); top-k and top-p cut the tail.
        int keep = options.TopK > 0 ? Math.Min(options.TopK, z.Length) : z.Length;
        var order = MostLikely(z, keep);
        double max = z[order[0]];
        var probs = new double[keep];
        double total = 0;
        for (int i = 0; i < keep; i++) { probs[i] = Math.Exp((z[order[i]] - max) / options.Temperature); total += probs[i]; }
        if (options.TopP < 1f)
        {
            double cumulative = 0;
            for (int i = 0; i < keep; i++)
            {
                cumulative += probs[i] / total;
                if (cumulative >= options.TopP) { keep = i + 1; break; }
            }
            total = 0;
            for (int i = 0; i < keep; i++) total += probs[i];
        }
        double r = rng.NextDouble() * total;
        for (int i = 0; i < keep; i++)
        {
            r -= probs[i];
            if (r < 0) return order[i];
        }
        return order[keep - 1];
    }

    /// <summary>
    /// The ids of the <paramref name="count"/> largest logits, largest first and equal logits by id (NaN last): the
    /// first <paramref name="count"/> of the whole vocabulary in that order, found with a heap of that size when it is
    /// small (top-k), so a 50k vocabulary is not sorted for every token. With <paramref name="accept"/>, only the ids
    /// it accepts compete (fewer than <paramref name="count"/> come back when fewer are accepted).
    /// </summary>
    internal static int[] MostLikely(float[] z, int count, Func<int, bool>? accept = null)
    {
        // a before b: larger logit, then smaller id. A total order, so the result is the one sorted order.
        int Compare(int a, int b)
        {
            int c = z[b].CompareTo(z[a]);
            return c != 0 ? c : a.CompareTo(b);
        }
        if (count * 4 >= z.Length)
        {
            var all = new int[z.Length];
            int n = 0;
            for (int i = 0; i < all.Length; i++)
                if (accept is null || accept(i)) all[n++] = i;
            Array.Sort(all, 0, n, Comparer<int>.Create(Compare));
            return n == all.Length && count >= n ? all : all[..Math.Min(count, n)];
        }
        // The heap's root is the least likely of the best so far; a better id replaces it.
        var heap = new PriorityQueue<int, int>(count, Comparer<int>.Create((a, b) => Compare(b, a)));
        for (int i = 0; i < z.Length; i++)
        {
            if (accept is not null && !accept(i)) continue;
            if (heap.Count < count) heap.Enqueue(i, i);
            else if (Compare(i, heap.Peek()) < 0) heap.DequeueEnqueue(i, i);
        }
        var best = new int[heap.Count];
        for (int i = best.Length - 1; i >= 0; i--) best[i] = heap.Dequeue();
        return best;
    }

    static int ArgMax(float[] z)
    {
        int best = 0;
        for (int i = 1; i < z.Length; i++) if (z[i] > z[best]) best = i;
        return best;
    }
}
