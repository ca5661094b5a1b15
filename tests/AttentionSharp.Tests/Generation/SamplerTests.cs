using AttentionSharp.Generation;

namespace AttentionSharp.Tests.Generation;

/// <summary>
/// Sampler.Sample against the plain form of its rule (every candidate sorted by logit, ties by id, then the cuts and the
/// draw): the same token for the same generator, with top-k small and large, top-p, ties and NaN logits.
/// </summary>
public class SamplerTests
{
    /// <summary>The rule written plainly: a full stable sort of the vocabulary for every draw.</summary>
    static int Plain(float[] logits, SamplingOptions options, Generator rng)
    {
        var z = logits;
        if (options.Temperature == 0) return Array.IndexOf(z, z.Max());
        var order = Enumerable.Range(0, z.Length).OrderByDescending(i => z[i]).ThenBy(i => i).ToArray();
        int keep = options.TopK > 0 ? Math.Min(options.TopK, order.Length) : order.Length;
        double max = z[order[0]];
        var probs = Enumerable.Range(0, keep).Select(i => Math.Exp((z[order[i]] - max) / options.Temperature)).ToArray();
        double total = probs.Sum();
        if (options.TopP < 1f)
        {
            double cumulative = 0;
            for (int i = 0; i < keep; i++)
            {
                cumulative += probs[i] / total;
                if (cumulative >= options.TopP) { keep = i + 1; break; }
            }
            total = probs.Take(keep).Sum();
        }
        double r = rng.NextDouble() * total;
        for (int i = 0; i < keep; i++)
        {
            r -= probs[i];
            if (r < 0) return order[i];
        }
        return order[keep - 1];
    }

    [Theory]
    [InlineData(0, 1f)]
    [InlineData(1, 1f)]
    [InlineData(5, 1f)]
    [InlineData(40, 0.9f)]
    [InlineData(0, 0.8f)]
    [InlineData(700, 1f)]
    [InlineData(5000, 1f)]
    public void Draws_the_token_the_plain_rule_draws(int topK, float topP)
    {
        var random = new Random(topK * 31 + (int)(topP * 100));
        foreach (int vocab in new[] { 1, 2, 7, 97, 2048 })
            for (int trial = 0; trial < 20; trial++)
            {
                // Logits on a coarse grid, so many are equal, and now and then a NaN.
                var z = Enumerable.Range(0, vocab)
                    .Select(_ => random.Next(20) == 0 && vocab > 1 ? float.NaN : random.Next(-8, 9) * 0.5f)
                    .ToArray();
                if (z.All(float.IsNaN)) z[0] = 1f;
                var options = new SamplingOptions { Temperature = 0.7f, TopK = topK, TopP = topP };
                ulong seed = (ulong)(trial * 1000 + vocab);
                int expected = Plain(z, options, new Generator(seed));
                Assert.Equal(expected, Sampler.Sample(z, options, new Generator(seed)));
            }
    }
}
