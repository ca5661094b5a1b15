using AttentionSharp.Autograd;
using AttentionSharp.Models;

namespace AttentionSharp.Generation;

/// <summary>Autoregressive decoding with a <see cref="Gpt"/>: feed the context, sample the next token, append, repeat.</summary>
public static class TextGenerator
{
    /// <summary>
    /// Extends <paramref name="prompt"/> by up to <paramref name="maxTokens"/> tokens; the model sees the last
    /// ContextLength tokens at each step. <paramref name="onToken"/> receives each new token as it is chosen.
    /// </summary>
    public static int[] Generate(Gpt model, ReadOnlySpan<int> prompt, int maxTokens, SamplingOptions options, Generator rng, Action<int>? onToken = null)
    {
        options.Validate();
        if (prompt.Length == 0) throw new ArgumentException("The prompt must contain at least one token.", nameof(prompt));
        if (maxTokens < 0) throw new ArgumentOutOfRangeException(nameof(maxTokens), maxTokens, "The number of tokens to generate cannot be negative.");
        var tokens = new List<int>(prompt.ToArray());
        int context = model.Config.ContextLength, vocab = model.Config.VocabSize;
        model.Eval();
        using (GradMode.NoGrad())
        {
            for (int i = 0; i < maxTokens; i++)
            {
                using var scope = TensorScope.Begin();
                int start = Math.Max(0, tokens.Count - context), t = tokens.Count - start;
                var window = tokens.GetRange(start, t).ToArray();
                var logits = model.Forward(window, 1, t);                       // (1, T, V)
                var last = logits.Data.Slice((t - 1) * vocab, vocab);
                int next = Sampler.Sample(last, options, rng, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(tokens));
                tokens.Add(next);
                onToken?.Invoke(next);
            }
        }
        return [.. tokens];
    }
}
