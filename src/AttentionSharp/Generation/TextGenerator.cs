using AttentionSharp.Autograd;
using System.Runtime.InteropServices;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Generation;

/// <summary>Autoregressive decoding with a <see cref="Gpt"/>: feed the context, sample the next token, append, repeat.</summary>
public static class TextGenerator
{
    /// <summary>
    /// Extends <paramref name="prompt"/> by up to <paramref name="maxTokens"/> tokens. Each new token is fed alone
    /// through the model with a <see cref="KvCache"/> holding the keys and values of everything before it. When the
    /// context is full, the cache is rebuilt from the last half-context of tokens (the model cannot see further back;
    /// within the first full context the result equals recomputing every step without a cache).
    /// <paramref name="onToken"/> receives each new token as it is chosen.
    /// </summary>
    public static int[] Generate(Gpt model, ReadOnlySpan<int> prompt, int maxTokens, SamplingOptions options, Generator rng, Action<int>? onToken = null)
    {
        options.Validate();
        if (prompt.Length == 0) throw new ArgumentException("The prompt must contain at least one token.", nameof(prompt));
        if (maxTokens < 0) throw new ArgumentOutOfRangeException(nameof(maxTokens), maxTokens, "The number of tokens to generate cannot be negative.");
        var tokens = new List<int>(prompt.ToArray());
        int context = model.Config.ContextLength;
        model.Eval();
        using var cache = new KvCache(model.Blocks.Count);
        using (GradMode.NoGrad())
        {
            float[] last = Prefill(model, cache, tokens, Math.Min(tokens.Count, context));
            for (int i = 0; i < maxTokens; i++)
            {
                int next = Sampler.Sample(last, options, rng, CollectionsMarshal.AsSpan(tokens));
                tokens.Add(next);
                onToken?.Invoke(next);
                if (i == maxTokens - 1) break;
                if (cache.Length == context) { last = Prefill(model, cache, tokens, Math.Max(1, context / 2)); continue; }
                using var scope = TensorScope.Begin();
                last = model.Forward([next], 1, 1, cache).Data.ToArray();            // (1, 1, V)
            }
        }
        return [.. tokens];

        static float[] Prefill(Gpt model, KvCache cache, List<int> tokens, int count)
        {
            cache.Reset();
            using var scope = TensorScope.Begin();
            var window = tokens.GetRange(tokens.Count - count, count).ToArray();
            var logits = model.Forward(window, 1, count, cache);                       // (1, T, V)
            int vocab = model.Config.VocabSize;
            return logits.Data.Slice((count - 1) * vocab, vocab).ToArray();
        }
    }
}
