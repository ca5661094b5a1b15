using AttentionSharp.Autograd;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Tests.Generation;

/// <summary>
/// Gpt.Prefill reads prompts into a cache and forms logits for each row's last position only: they match Forward's
/// last position (the head's product runs on B rows instead of B·T, so the sums may round differently), and the cache
/// it leaves is the one Forward leaves, so decoding continues the same.
/// </summary>
public class PrefillTests
{
    static Gpt Model(PositionalEncodingKind positions)
    {
        var config = new GptConfig
        {
            VocabSize = 13, ContextLength = 32, Layers = 2, Heads = 2, Width = 16, PositionalEncoding = positions,
        };
        var model = new Gpt(config, new Generator(8));
        model.Eval();
        return model;
    }

    [Theory]
    [InlineData(PositionalEncodingKind.Learned, 1, 1)]
    [InlineData(PositionalEncodingKind.Learned, 3, 7)]
    [InlineData(PositionalEncodingKind.Rotary, 2, 12)]
    [InlineData(PositionalEncodingKind.Sinusoidal, 2, 5)]
    public void Last_position_logits_and_cache_match_forward(PositionalEncodingKind positions, int batch, int time)
    {
        var model = Model(positions);
        using var noGrad = GradMode.NoGrad();
        var rng = new Random(3);
        var ids = Enumerable.Range(0, batch * time).Select(_ => rng.Next(13)).ToArray();
        using var full = new KvCache(2);
        using var last = new KvCache(2);
        var all = model.Forward(ids, batch, time, full).ToArray();                       // (B, T, V)
        var prefill = model.Prefill(ids, batch, time, last);
        Assert.Equal([batch, 1, 13], prefill.Shape.ToArray());
        var got = prefill.ToArray();
        for (int b = 0; b < batch; b++)
            for (int v = 0; v < 13; v++)
                Assert.Equal(all[((b * time) + time - 1) * 13 + v], got[b * 13 + v], 5e-5f);
        Assert.Equal(full.Length, last.Length);
        // The next step reads the same cache either way: the same logits, bit for bit.
        int[] next = [.. Enumerable.Range(0, batch).Select(b => b % 13)];
        Assert.Equal(model.Forward(next, batch, 1, full).ToArray(), model.Prefill(next, batch, 1, last).ToArray());
    }

    [Fact]
    public void Prefill_after_cached_positions_continues_them()
    {
        var model = Model(PositionalEncodingKind.Learned);
        using var noGrad = GradMode.NoGrad();
        using var cache = new KvCache(2);
        model.Prefill([1, 2, 3], 1, 3, cache);
        var logits = model.Prefill([4, 5], 1, 2, cache).ToArray();
        var whole = model.Forward([1, 2, 3, 4, 5], 1, 5).ToArray();
        for (int v = 0; v < 13; v++) Assert.Equal(whole[4 * 13 + v], logits[v], 5e-5f);
        Assert.Equal(5, cache.Length);
    }

    [Fact]
    public void An_empty_prompt_or_a_full_context_is_refused_with_a_sentence()
    {
        var model = Model(PositionalEncodingKind.Learned);
        using var noGrad = GradMode.NoGrad();
        using var cache = new KvCache(2);
        var empty = Assert.Throws<ArgumentException>(() => model.Prefill([], 1, 0, cache));
        Assert.Contains("at least one token", empty.Message);
        var tooLong = Assert.Throws<ArgumentException>(() => model.Prefill(new int[33], 1, 33, cache));
        Assert.Contains("context is 32", tooLong.Message);
        Assert.Throws<ArgumentNullException>(() => model.Prefill([1], 1, 1, null!));
    }
}
