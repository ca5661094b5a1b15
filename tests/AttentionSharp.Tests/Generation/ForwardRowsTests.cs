using AttentionSharp.Autograd;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Tests.Generation;

/// <summary>
/// Gpt.ForwardRows, the decoding step of independent sequences with one cache each: every row's logits equal, bit for
/// bit, that sequence decoded alone, whatever else is in the batch (sizes past one product group, rows at different
/// positions, every positional encoding and attention pattern a cache serves).
/// </summary>
public class ForwardRowsTests
{
    const int Vocab = 11;
    const int Context = 24;

    static Gpt Model(PositionalEncodingKind positions, AttentionPattern attention)
    {
        var config = new GptConfig
        {
            VocabSize = Vocab, ContextLength = Context, Layers = 2, Heads = 2, Width = 16,
            PositionalEncoding = positions, Attention = attention,
        };
        return new Gpt(config, new Generator(21));
    }

    public static TheoryData<PositionalEncodingKind, string> Kinds() => new()
    {
        { PositionalEncodingKind.Learned, "full" },
        { PositionalEncodingKind.Sinusoidal, "full" },
        { PositionalEncodingKind.Rotary, "full" },
        { PositionalEncodingKind.Alibi, "full" },
        { PositionalEncodingKind.Learned, "window" },
        { PositionalEncodingKind.Rotary, "linear" },
    };

    static AttentionPattern Pattern(string name) => name switch
    {
        "window" => AttentionPattern.Sliding(4),
        "linear" => AttentionPattern.LinearAttention,
        _ => AttentionPattern.Full,
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Each_row_equals_its_sequence_decoded_alone(PositionalEncodingKind positions, string attention)
    {
        var model = Model(positions, Pattern(attention));
        model.Eval();
        using var noGrad = GradMode.NoGrad();
        const int rows = 9;                                  // more than one product group
        var rng = new Random(5);
        var prompts = Enumerable.Range(0, rows).Select(r => Enumerable.Range(0, 1 + r % 6).Select(_ => rng.Next(Vocab)).ToArray()).ToArray();
        var batched = prompts.Select(p => Prefill(model, p)).ToArray();
        var alone = prompts.Select(p => Prefill(model, p)).ToArray();
        try
        {
            for (int step = 0; step < 5; step++)
            {
                int[] ids = [.. Enumerable.Range(0, rows).Select(r => (r * 3 + step) % Vocab)];
                using var scope = TensorScope.Begin();
                // Rows leave and come back in a different order: a row's result must not depend on its company.
                int[] order = step % 2 == 0 ? [.. Enumerable.Range(0, rows)] : [.. Enumerable.Range(0, rows).Reverse().Take(rows - step)];
                var logits = model.ForwardRows([.. order.Select(r => ids[r])], [.. order.Select(r => batched[r])]).Data.ToArray();
                for (int i = 0; i < order.Length; i++)
                {
                    int r = order[i];
                    var single = model.Forward([ids[r]], 1, 1, alone[r]).Data.ToArray();
                    Assert.Equal(single, logits.AsSpan(i * Vocab, Vocab).ToArray());
                }
                // The rows left out this step are fed alone on both sides, to keep their positions equal.
                foreach (int r in Enumerable.Range(0, rows).Except(order))
                {
                    model.ForwardRows([ids[r]], [batched[r]]);
                    model.Forward([ids[r]], 1, 1, alone[r]);
                }
            }
        }
        finally
        {
            foreach (var c in batched.Concat(alone)) c.Dispose();
        }
    }

    static KvCache Prefill(Gpt model, int[] prompt)
    {
        var cache = new KvCache(model.Blocks.Count);
        using var scope = TensorScope.Begin();
        model.Forward(prompt, 1, prompt.Length, cache);
        return cache;
    }

    [Fact]
    public void Bad_calls_are_refused_with_the_reason()
    {
        var model = Model(PositionalEncodingKind.Learned, AttentionPattern.Full);
        using var noGrad = GradMode.NoGrad();
        using var cache = new KvCache(2);
        using var wrong = new KvCache(3);
        Assert.Contains("one new token per cache", Assert.Throws<ArgumentException>(() => model.ForwardRows([1, 2], [cache])).Message);
        Assert.Contains("3 layers", Assert.Throws<ArgumentException>(() => model.ForwardRows([1], [wrong])).Message);
        using var scope = TensorScope.Begin();
        model.Forward(new int[Context], 1, Context, cache);
        Assert.Contains("exceeds the model's context", Assert.Throws<ArgumentException>(() => model.ForwardRows([1], [cache])).Message);
    }
}
