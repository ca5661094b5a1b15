using System.Threading.Channels;

namespace AttentionSharp.Serving;

/// <summary>Why a completion ended, as its finish_reason says.</summary>
public static class FinishReason
{
    /// <summary>It generated max_tokens tokens.</summary>
    public const string Length = "length";

    /// <summary>Its text reached a stop string, or it generated the tokenizer's end-of-text token.</summary>
    public const string Stop = "stop";

    /// <summary>The request ran past the server's per-request timeout.</summary>
    public const string Timeout = "timeout";

    /// <summary>The server stopped (shutdown grace over) or the client went away.</summary>
    public const string Cancelled = "cancelled";
}

/// <summary>
/// How one completion ended: its text (without a stop string), why it ended, and the tokens it read and generated.
/// <paramref name="Failure"/> is the server's error message when decoding failed (then the other fields say how far
/// it came).
/// </summary>
public sealed record CompletionResult(string Text, string FinishReason, int PromptTokens, int CompletionTokens,
                                      string? Failure = null);

/// <summary>
/// One request inside the <see cref="CompletionEngine"/>: the engine writes its text as it grows to
/// <see cref="Deltas"/> and its outcome to <see cref="Completion"/>; whoever submitted it reads them. The request ends
/// early when <paramref name="timeout"/> fires (finish_reason timeout) or <paramref name="abandoned"/> does (the client
/// went away: cancelled).
/// </summary>
public sealed class CompletionJob(CompletionRequest request, CancellationToken timeout = default,
                                  CancellationToken abandoned = default)
{
    readonly Channel<string> _deltas = Channel.CreateUnbounded<string>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    readonly TaskCompletionSource<bool> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly TaskCompletionSource<CompletionResult> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public CompletionRequest Request { get; } = request ?? throw new ArgumentNullException(nameof(request));

    /// <summary>The text as it may be shown, piece by piece; complete once the job has ended.</summary>
    public ChannelReader<string> Deltas => _deltas.Reader;

    /// <summary>
    /// True once the prompt has been read and the sequence decodes among the others; false when the job ended while
    /// still waiting in the queue (timeout or shutdown).
    /// </summary>
    public Task<bool> Started => _started.Task;

    /// <summary>The outcome, once the job has ended.</summary>
    public Task<CompletionResult> Completion => _done.Task;

    /// <summary>The finish reason a cancellation gives the job now; null while it may go on.</summary>
    internal string? CancelReason =>
        abandoned.IsCancellationRequested ? FinishReason.Cancelled
        : timeout.IsCancellationRequested ? FinishReason.Timeout
        : null;

    internal void Start() => _started.TrySetResult(true);

    internal void Emit(string text)
    {
        if (text.Length > 0) _deltas.Writer.TryWrite(text);
    }

    internal void Finish(CompletionResult result)
    {
        _started.TrySetResult(false);
        _done.TrySetResult(result);
        _deltas.Writer.TryComplete();
    }
}
