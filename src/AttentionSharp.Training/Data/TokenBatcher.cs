namespace AttentionSharp.Data;

/// <summary>
/// A batch for causal language modelling: inputs X and targets Y, both (B, T) row-major, where Y[b, t] = X[b, t + 1] in the
/// stream — the token that follows each input position. <see cref="BatchSize"/> is B for this batch (a final sequential
/// batch may be smaller than the batcher's).
/// </summary>
public sealed record TokenBatch(int[] X, int[] Y, int BatchSize, int ContextLength);

/// <summary>
/// Cuts (x, y) windows from a token stream for next-token prediction. Training draws B window starts uniformly from the
/// stream with the caller's <see cref="Generator"/>, so a run is reproducible from its seed; evaluation walks the stream
/// in order with non-overlapping windows, so every target token is scored once.
/// </summary>
public sealed class TokenBatcher
{
    readonly ReadOnlyMemory<int> _tokens;

    /// <param name="tokens">The token stream.</param>
    /// <param name="batchSize">B, rows per batch.</param>
    /// <param name="contextLength">T, tokens per row.</param>
    /// <param name="description">What the stream is, for the error when it is too short (e.g. "validation text").</param>
    public TokenBatcher(ReadOnlyMemory<int> tokens, int batchSize, int contextLength, string description = "training text")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextLength, 1);
        // A window needs T inputs plus the one target beyond them.
        if (tokens.Length < contextLength + 1)
            throw new DataSourceException(
                $"The {description} has {tokens.Length} tokens; a context of {contextLength} needs at least {contextLength + 1}.");
        _tokens = tokens;
        BatchSize = batchSize;
        ContextLength = contextLength;
    }

    /// <summary>B: rows per batch.</summary>
    public int BatchSize { get; }

    /// <summary>T: tokens per row.</summary>
    public int ContextLength { get; }

    /// <summary>The length of the token stream.</summary>
    public int TokenCount => _tokens.Length;

    /// <summary>The number of non-overlapping windows <see cref="Sequential"/> yields: ⌊(N − 1) / T⌋.</summary>
    public int SequentialWindowCount => (_tokens.Length - 1) / ContextLength;

    /// <summary>A batch of B windows at random starts in [0, N − T − 1].</summary>
    public TokenBatch NextRandom(Generator generator)
    {
        var x = new int[BatchSize * ContextLength];
        var y = new int[BatchSize * ContextLength];
        NextRandom(generator, x, y);
        return new TokenBatch(x, y, BatchSize, ContextLength);
    }

    /// <summary>Fills caller-owned (B, T) buffers, so a training loop allocates nothing per step.</summary>
    public void NextRandom(Generator generator, Span<int> x, Span<int> y)
    {
        ArgumentNullException.ThrowIfNull(generator);
        int size = BatchSize * ContextLength;
        if (x.Length != size || y.Length != size)
            throw new ArgumentException($"x and y must each hold B·T = {BatchSize}·{ContextLength} = {size} ids, got {x.Length} and {y.Length}.");
        var tokens = _tokens.Span;
        int starts = tokens.Length - ContextLength; // start + T ≤ N − 1, so the last target exists
        for (int b = 0; b < BatchSize; b++)
        {
            int start = generator.NextInt(starts);
            tokens.Slice(start, ContextLength).CopyTo(x.Slice(b * ContextLength, ContextLength));
            tokens.Slice(start + 1, ContextLength).CopyTo(y.Slice(b * ContextLength, ContextLength));
        }
    }

    /// <summary>The window at <paramref name="start"/>: x = tokens[start, start + T), y = tokens[start + 1, start + T + 1).</summary>
    public void Window(int start, Span<int> x, Span<int> y)
    {
        if (start < 0 || start > _tokens.Length - ContextLength - 1)
            throw new ArgumentOutOfRangeException(nameof(start), start, $"A window starts in [0, {_tokens.Length - ContextLength - 1}].");
        _tokens.Span.Slice(start, ContextLength).CopyTo(x);
        _tokens.Span.Slice(start + 1, ContextLength).CopyTo(y);
    }

    /// <summary>
    /// Non-overlapping windows starting at 0, T, 2T, …, B to a batch; the last batch holds the remaining windows. Tokens
    /// after the last full window are not scored.
    /// </summary>
    public IEnumerable<TokenBatch> Sequential()
    {
        int windows = SequentialWindowCount;
        for (int first = 0; first < windows; first += BatchSize)
        {
            int rows = Math.Min(BatchSize, windows - first);
            var x = new int[rows * ContextLength];
            var y = new int[rows * ContextLength];
            for (int r = 0; r < rows; r++)
            {
                int start = (first + r) * ContextLength;
                _tokens.Span.Slice(start, ContextLength).CopyTo(x.AsSpan(r * ContextLength));
                _tokens.Span.Slice(start + 1, ContextLength).CopyTo(y.AsSpan(r * ContextLength));
            }
            yield return new TokenBatch(x, y, rows, ContextLength);
        }
    }
}
