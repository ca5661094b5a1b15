using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Generation;

/// <summary>Autoregressive decoding with a <see cref="Gpt"/>: feed the context, sample the next token, append.</summary>
public static class TextGenerator
{
    /// <summary>
    /// Extends <paramref name="prompt"/> by up to <paramref name="maxTokens"/> tokens. Each new token is fed alone
    /// through the model with a <see cref="KvCache"/> holding the keys and values of everything before it. When the
    /// context is full, the cache is rebuilt from the last half-context of tokens (the model cannot see further back;
    /// within the first full context the result equals recomputing every step without a cache). A prompt longer than
    /// the context is read from its last context's worth of tokens.
    /// <paramref name="onToken"/> receives each new token as it is chosen. Returns the prompt, then the new tokens.
    /// </summary>
    public static int[] Generate(Gpt model, ReadOnlySpan<int> prompt, int maxTokens, SamplingOptions options,
                                 Generator rng, Action<int>? onToken = null)
    {
        int[] ids = prompt.ToArray();
        var result = GenerateBatch(model, [ids], maxTokens, options, [rng],
                                   onToken: onToken is null ? null : (_, id) => onToken(id));
        return [.. ids, .. result[0].Tokens];
    }

    /// <summary>
    /// Continues every prompt by up to <paramref name="maxTokens"/> tokens, all through one K/V cache as a batch.
    /// Row i samples from <paramref name="generators"/>[i] alone (give each row its own generator), so its tokens are
    /// those <see cref="Generate"/> gives for that prompt and generator.
    /// <para>
    /// Prompts of different lengths: the cache holds one length for all its rows and the model one position per step,
    /// so rows join the batch when their prompt's length equals the cache's. The shortest prompts are read first (one
    /// batched prefill per length) and decoded; when the cache has grown to the next prompt length, those prompts are
    /// read in a cache of their own and appended to the batch's rows, and all decode together from then on. Nothing
    /// is padded and nothing masked, so each row computes what it would alone. Rows that end (token budget, a stop
    /// string, end-of-text) leave the batch; a full context is rebuilt from every row's last half-context at once.
    /// </para>
    /// <paramref name="onToken"/> receives (row, token) for each token chosen; <paramref name="onText"/> (row, text)
    /// the text that may be shown, held back while it could still begin a stop string (needs a decoder in
    /// <paramref name="stop"/>). Returns one <see cref="GeneratedSequence"/> per prompt, in order.
    /// </summary>
    public static GeneratedSequence[] GenerateBatch(Gpt model, IReadOnlyList<int[]> prompts, int maxTokens,
                                                    SamplingOptions options, IReadOnlyList<Generator> generators,
                                                    StopConditions? stop = null, Action<int, int>? onToken = null,
                                                    Action<int, string>? onText = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        stop = CheckArguments(prompts, maxTokens, options, generators, stop, onText is not null);
        using var decoder = new BatchDecoder(model, options, stop, onToken, onText);
        return decoder.Run(prompts, generators, maxTokens);
    }

    /// <summary>
    /// The checks of <see cref="GenerateBatch"/>, for every decoding loop: a non-empty prompt and a generator per row, a
    /// budget ≥ 0, valid options, and a decoder when text is streamed. Returns the validated stop conditions.
    /// </summary>
    public static StopConditions CheckArguments(IReadOnlyList<int[]> prompts, int maxTokens, SamplingOptions options,
                                                IReadOnlyList<Generator> generators, StopConditions? stop, bool streamsText)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(generators);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        stop = (stop ?? new StopConditions()).Validate();
        if (maxTokens < 0)
            throw new ArgumentOutOfRangeException(nameof(maxTokens), maxTokens,
                                                  "The number of tokens to generate cannot be negative.");
        if (generators.Count != prompts.Count)
            throw new ArgumentException($"Expected one generator per prompt ({prompts.Count}); got {generators.Count}.",
                                        nameof(generators));
        if (streamsText && stop.Decode is null)
            throw new ArgumentException("Text as it grows needs a decoder in the stop conditions.", "onText");
        for (int i = 0; i < prompts.Count; i++)
            if (prompts[i] is not { Length: > 0 })
                throw new ArgumentException($"Prompt {i} must contain at least one token.", nameof(prompts));
        return stop;
    }

    /// <summary>
    /// Generators for <paramref name="count"/> samples from one <paramref name="seed"/>: the first is
    /// <c>new Generator(seed)</c> (one sample equals what a single generator gives), the others are seeded apart by the
    /// golden-ratio increment, so the set is reproducible and its samples differ.
    /// </summary>
    public static Generator[] SampleGenerators(ulong seed, int count)
    {
        if (count < 0)
            throw new ArgumentOutOfRangeException(nameof(count), count, "The number of samples cannot be negative.");
        var generators = new Generator[count];
        for (int i = 0; i < count; i++) generators[i] = new Generator(seed + (ulong)i * 0x9E3779B97F4A7C15UL);
        return generators;
    }
}
