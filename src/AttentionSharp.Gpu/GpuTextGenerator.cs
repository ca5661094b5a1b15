using AttentionSharp.Generation;

namespace AttentionSharp.Gpu;

/// <summary>
/// Autoregressive decoding with a <see cref="GpuGpt"/>, for <c>attn sample --device cuda</c>: the same per-row state,
/// sampling and stop rules as the CPU's <see cref="TextGenerator"/> (<see cref="GrowingSequence"/>), but without a K/V
/// cache on the device yet: each new token runs a full forward pass of the row's last T ≤ context tokens and reads back
/// the last position's logits. Within the first context this computes what the CPU's cached decoding computes; past
/// it, the window slides one token at a time, where the CPU rebuilds its cache from the last half-context.
/// </summary>
public static class GpuTextGenerator
{
    /// <summary>
    /// Continues every prompt by up to <paramref name="maxTokens"/> tokens, one row after another, row i drawing from
    /// <paramref name="generators"/>[i]; <paramref name="onText"/> receives (row, text) as it may be shown (needs a
    /// decoder in <paramref name="stop"/>). Returns one <see cref="GeneratedSequence"/> per prompt, in order.
    /// </summary>
    public static GeneratedSequence[] GenerateBatch(GpuGpt model, IReadOnlyList<int[]> prompts, int maxTokens,
        SamplingOptions options, IReadOnlyList<Generator> generators, StopConditions? stop = null,
        Action<int, string>? onText = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        stop = TextGenerator.CheckArguments(prompts, maxTokens, options, generators, stop, onText is not null);
        int context = model.Config.ContextLength;
        var results = new GeneratedSequence[prompts.Count];
        for (int row = 0; row < prompts.Count; row++)
        {
            var prompt = prompts[row];
            var sequence = new GrowingSequence(prompt, generators[row], stop) { Logits = new float[model.Config.VocabSize] };
            while (maxTokens > 0 && sequence.Reason is null)
            {
                int time = Math.Min(sequence.Tokens.Count, context);
                var window = sequence.Tokens.GetRange(sequence.Tokens.Count - time, time).ToArray();
                model.Forward(window, 1, time);                                   // (1, T, V) on the device
                model.CopyLogits(0, time - 1, sequence.Logits);                   // the next position's logits
                sequence.Advance(options, maxTokens, out string shown);
                if (shown.Length > 0) onText?.Invoke(row, shown);
            }
            if (sequence.FinishText() is { Length: > 0 } rest) onText?.Invoke(row, rest);
            results[row] = sequence.Result();
        }
        return results;
    }
}
