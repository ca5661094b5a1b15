using System.Net;

namespace AttentionSharp.Serving;

/// <summary>
/// Where the completions server listens and the limits it keeps. The command line binds its options onto this record
/// (`attn serve`); library users set it directly. Limits tied to the model (prompt and completion tokens) are checked
/// against its context by <see cref="Validate"/>.
/// </summary>
public sealed record ServeOptions
{
    /// <summary>The address to listen on: an IP address (127.0.0.1, 0.0.0.0, ::1) or localhost.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>The TCP port; 0 picks a free one (the server's <see cref="CompletionServer.Url"/> says which).</summary>
    public int Port { get; init; } = 8000;

    /// <summary>The model's id in /v1/models and in every response; a request naming another model gets 404.</summary>
    public string ModelName { get; init; } = "gpt";

    /// <summary>The longest prompt, in tokens; null: the model's context − 1 (one position left to generate).</summary>
    public int? MaxPromptTokens { get; init; }

    /// <summary>The most completion tokens a request may ask for (max_tokens); null: the model's context − 1.</summary>
    public int? MaxTokens { get; init; }

    /// <summary>Sequences decoded together; further requests wait in the queue.</summary>
    public int MaxSequences { get; init; } = 16;

    /// <summary>Requests that may wait for a place among the sequences; past that a request gets 503.</summary>
    public int MaxQueue { get; init; } = 64;

    /// <summary>The largest request body, in bytes; a larger one gets 413.</summary>
    public long MaxBodyBytes { get; init; } = 1 << 20;

    /// <summary>
    /// How long one request may take, from arrival (queue included) to its last token; then its sequence ends with
    /// finish_reason "timeout", or a 504 error if it produced nothing yet.
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>After a stop signal, how long sequences in flight may run on before they are cancelled.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The prompt limit for a model of context <paramref name="context"/>.</summary>
    public int PromptLimit(int context) => MaxPromptTokens ?? context - 1;

    /// <summary>The completion limit for a model of context <paramref name="context"/>.</summary>
    public int CompletionLimit(int context) => MaxTokens ?? context - 1;

    /// <summary>Checks every field, the token limits against the model's <paramref name="context"/>.</summary>
    public ServeOptions Validate(int context)
    {
        if (context < 2)
            throw new ArgumentException($"The model's context of {context} leaves no room for a prompt and a token.");
        if (string.IsNullOrWhiteSpace(Host) || (Host != "localhost" && !IPAddress.TryParse(Host, out _)))
            throw new ArgumentException($"--host must be an IP address (such as 127.0.0.1 or 0.0.0.0) or localhost; got '{Host}'.");
        if (Port is < 0 or > 65535) throw new ArgumentException($"--port must be in [0, 65535]; got {Port}.");
        if (string.IsNullOrWhiteSpace(ModelName)) throw new ArgumentException("The model name must not be empty.");
        if (PromptLimit(context) is < 1 || PromptLimit(context) > context - 1)
            throw new ArgumentException($"--max-prompt-tokens must be in [1, {context - 1}] (the model's context is {context}); "
                                        + $"got {MaxPromptTokens}.");
        if (CompletionLimit(context) is < 1 || CompletionLimit(context) > context - 1)
            throw new ArgumentException($"--max-tokens must be in [1, {context - 1}] (the model's context is {context}); "
                                        + $"got {MaxTokens}.");
        if (MaxSequences < 1) throw new ArgumentException($"--max-sequences must be at least 1; got {MaxSequences}.");
        if (MaxQueue < 0) throw new ArgumentException($"--max-queue cannot be negative; got {MaxQueue}.");
        if (MaxBodyBytes < 64) throw new ArgumentException($"--max-body-bytes must be at least 64; got {MaxBodyBytes}.");
        if (Timeout <= TimeSpan.Zero) throw new ArgumentException($"--timeout must be positive; got {Timeout.TotalSeconds} s.");
        if (ShutdownGrace < TimeSpan.Zero)
            throw new ArgumentException($"--shutdown-grace cannot be negative; got {ShutdownGrace.TotalSeconds} s.");
        return this;
    }
}
