// Source: Press, Smith and Lewis, "Train Short, Test Long: Attention with Linear Biases Enables Input Length
// Extrapolation" (ICLR 2022), §3, and the authors' reference code (ofirpress/attention_with_linear_biases, get_slopes).
namespace AttentionSharp.Nn;

/// <summary>
/// ALiBi: no position embeddings; instead head h adds −m_h·(i − j) to the score of query i against key j, a penalty that
/// grows linearly with distance at a rate set per head by a fixed geometric sequence of slopes.
/// </summary>
/// <remarks>
/// The paper defines the bias for causal attention, where j ≤ i. For bidirectional attention the symmetric form
/// −m_h·|i − j| is used here, which equals the paper's wherever a causal mask allows a key.
/// </remarks>
public static class Alibi
{
    /// <summary>
    /// The slopes m_1 … m_n. For n a power of two, m_h = 2^(−8h/n): the geometric sequence that starts at 2^(−8/n) with
    /// that ratio. Otherwise, with 2^k the largest power of two below n, the 2^k slopes of that count followed by the
    /// slopes of 2^(k+1) heads at odd h (1, 3, 5, …), as many as needed to reach n.
    /// </summary>
    public static float[] Slopes(int heads)
    {
        if (heads <= 0) throw new ArgumentOutOfRangeException(nameof(heads), heads, "ALiBi needs a positive number of heads.");
        return [.. SlopesOf(heads).Select(s => (float)s)];
    }

    static IEnumerable<double> SlopesOf(int n)
    {
        if ((n & (n - 1)) == 0)
            return Enumerable.Range(1, n).Select(h => Math.Pow(2, -8.0 * h / n));              // m_h = 2^(−8h/n)
        int closest = 1 << (int)Math.Floor(Math.Log2(n));
        return SlopesOf(closest).Concat(SlopesOf(2 * closest).Where((_, i) => i % 2 == 0).Take(n - closest));
    }

    /// <summary>
    /// The (1, NH, Tq, Tk) bias −m_h·|i − j|, where query i sits at position (Tk − Tq) + i: the queries are the last Tq
    /// positions, as when decoding with a K/V cache (the same alignment as the causal mask).
    /// </summary>
    public static Tensor Bias(ReadOnlySpan<float> slopes, int queries, int keys)
    {
        if (queries > keys) throw new ArgumentException($"ALiBi needs at least as many keys as queries; got Tq = {queries}, Tk = {keys}.");
        int nh = slopes.Length, shift = keys - queries;
        var bias = Tensor.Zeros(1, nh, queries, keys);
        var d = bias.Data;
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < queries; i++)
                for (int j = 0; j < keys; j++)
                    d[(h * queries + i) * keys + j] = -slopes[h] * Math.Abs(shift + i - j);
        return bias;
    }
}
