using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Generation;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Serving;

/// <summary>What <see cref="CompletionEngine.Submit"/> did with a job.</summary>
public enum SubmitResult
{
    /// <summary>The job waits for (or has) a place among the sequences.</summary>
    Accepted,

    /// <summary>The queue is full; the job was not taken.</summary>
    QueueFull,

    /// <summary>The engine is stopping and takes no new jobs.</summary>
    Stopping,
}

/// <summary>
/// Continuous batching: one thread owns the model and decodes every request in flight together. Each turn of its loop
/// admits waiting requests up to <see cref="ServeOptions.MaxSequences"/> (each prompt read alone into a K/V cache of its
/// own), draws one token for every sequence from its own generator, ends those that are done (max_tokens, a stop string,
/// end-of-text, timeout, cancellation), and feeds the newest token of all the others through one
/// <see cref="Gpt.ForwardRows"/> call. A row's logits do not depend on the rows beside it, so a request gives the same
/// text alone or under load, streamed or not. Requests join and leave between steps; nothing waits for a batch to fill.
/// </summary>
public sealed class CompletionEngine : IDisposable
{
    readonly Gpt _model;
    readonly ServeOptions _options;
    readonly int[] _endOfText;
    readonly TokenDecoder _decode;
    readonly int _vocab;
    readonly Thread _thread;
    readonly object _gate = new();                                    // Monitor: the loop waits on it for work
    readonly List<CompletionJob> _waiting = [];                       // guarded by _gate, in arrival order
    readonly List<DecodingSequence> _active = [];                     // the engine thread's alone
    bool _accepting = true, _cancelAll, _stopped;                     // guarded by _gate
    volatile int _activeCount;                                        // _active.Count, for other threads
    long _completionTokens;                                           // Interlocked: the engine thread adds

    /// <summary>
    /// Serves <paramref name="model"/> (which the engine's thread then owns: use it nowhere else) with
    /// <paramref name="tokenizer"/> under <paramref name="options"/>' limits.
    /// </summary>
    public CompletionEngine(Gpt model, ITokenizer tokenizer, ServeOptions options)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        ArgumentNullException.ThrowIfNull(tokenizer);
        _options = (options ?? throw new ArgumentNullException(nameof(options))).Validate(model.Config.ContextLength);
        if (tokenizer.VocabSize != model.Config.VocabSize)
            throw new ArgumentException(
                $"The tokenizer has {tokenizer.VocabSize} ids but the model expects {model.Config.VocabSize}.");
        Tokenizer = tokenizer;
        _decode = tokenizer.Decode;
        _endOfText = EndOfText.Find(tokenizer.Encode, _decode);
        _vocab = model.Config.VocabSize;
        _model.Eval();
        Reader = new CompletionRequestReader(tokenizer, Context, _options);
        _thread = new Thread(Loop) { IsBackground = true, Name = "completion engine" };
        _thread.Start();
    }

    public ITokenizer Tokenizer { get; }

    /// <summary>The model's context length (prompt plus completion tokens).</summary>
    public int Context => _model.Config.ContextLength;

    public ServeOptions Options => _options;

    /// <summary>Reads request bodies under this engine's limits.</summary>
    public CompletionRequestReader Reader { get; }

    /// <summary>Sequences decoding now (as of the end of the engine's last step).</summary>
    public int ActiveSequences => _activeCount;

    /// <summary>Completion tokens drawn by the sequences that have ended since the engine started.</summary>
    public long CompletionTokens => Interlocked.Read(ref _completionTokens);

    /// <summary>False once <see cref="StopAccepting"/> was called.</summary>
    public bool Accepting
    {
        get { lock (_gate) return _accepting; }
    }

    /// <summary>Queues <paramref name="job"/>; its text and outcome arrive through the job.</summary>
    public SubmitResult Submit(CompletionJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        lock (_gate)
        {
            if (!_accepting) return SubmitResult.Stopping;
            if (_waiting.Count >= _options.MaxQueue + Math.Max(0, _options.MaxSequences - _activeCount))
                return SubmitResult.QueueFull;
            _waiting.Add(job);
            Monitor.Pulse(_gate);
        }
        return SubmitResult.Accepted;
    }

    /// <summary>Takes no new jobs; those accepted go on.</summary>
    public void StopAccepting()
    {
        lock (_gate) _accepting = false;
    }

    /// <summary>Takes no new jobs and ends every one in flight (finish_reason cancelled) at the next step.</summary>
    public void CancelAll()
    {
        lock (_gate) { _accepting = false; _cancelAll = true; Monitor.Pulse(_gate); }
    }

    /// <summary>Cancels what is in flight and stops the engine's thread.</summary>
    public void Dispose()
    {
        lock (_gate) { _accepting = false; _cancelAll = true; _stopped = true; Monitor.Pulse(_gate); }
        _thread.Join();
    }

    void Loop()
    {
        using var noGrad = GradMode.NoGrad();
        while (true)
        {
            var admitted = new List<CompletionJob>();
            var ended = new List<(CompletionJob Job, string Reason)>();
            bool cancelAll;
            lock (_gate)
            {
                while (_active.Count == 0 && _waiting.Count == 0 && !_stopped) Monitor.Wait(_gate);
                if (_stopped && _active.Count == 0 && _waiting.Count == 0) return;
                cancelAll = _cancelAll;
                foreach (var job in _waiting)
                    if ((cancelAll ? FinishReason.Cancelled : job.CancelReason) is { } reason) ended.Add((job, reason));
                    else if (_active.Count + admitted.Count < _options.MaxSequences) admitted.Add(job);
                _waiting.RemoveAll(j => admitted.Contains(j) || ended.Any(e => e.Job == j));
            }
            foreach (var (job, reason) in ended) job.Finish(new CompletionResult("", reason, job.Request.PromptIds.Length, 0));
            foreach (var job in admitted)
                if (Prefill(job) is { } sequence) _active.Add(sequence);
            _activeCount = _active.Count;
            Step(cancelAll);
            _activeCount = _active.Count;
        }
    }

    /// <summary>Reads the job's prompt alone into a cache of its own; null (the job failed) if the model throws.</summary>
    DecodingSequence? Prefill(CompletionJob job)
    {
        var ids = job.Request.PromptIds;
        var cache = new KvCache(_model.Blocks.Count);
        try
        {
            using var scope = TensorScope.Begin();
            var last = _model.Prefill(ids, 1, ids.Length, cache).Data.ToArray();          // (1, 1, V): the last position
            job.Start();
            return new DecodingSequence(job, cache, last, _endOfText, _decode);
        }
        catch (Exception e)
        {
            cache.Dispose();
            job.Finish(new CompletionResult("", FinishReason.Cancelled, ids.Length, 0,
                $"Reading the prompt failed: {e.Message}"));
            return null;
        }
    }

    /// <summary>One token for every sequence; those that end leave, the others decode together.</summary>
    void Step(bool cancelAll)
    {
        for (int i = _active.Count - 1; i >= 0; i--)
        {
            var sequence = _active[i];
            string? reason = cancelAll ? FinishReason.Cancelled : sequence.Job.CancelReason;
            string? failure = null;
            try { reason ??= sequence.Advance(); }
            catch (Exception e) { (reason, failure) = (FinishReason.Cancelled, $"Decoding failed: {e.Message}"); }
            if (reason is null) continue;
            End(sequence, reason, failure);
            _active.RemoveAt(i);
        }
        if (_active.Count == 0) return;
        var ids = new int[_active.Count];
        var caches = new KvCache[_active.Count];
        for (int b = 0; b < ids.Length; b++) (ids[b], caches[b]) = (_active[b].Last, _active[b].Cache);
        try
        {
            using var scope = TensorScope.Begin();
            var logits = _model.ForwardRows(ids, caches).Data;                             // (B, 1, V)
            for (int b = 0; b < ids.Length; b++) logits.Slice(b * _vocab, _vocab).CopyTo(_active[b].Logits);
        }
        catch (Exception e)
        {
            foreach (var sequence in _active) End(sequence, FinishReason.Cancelled, $"Decoding failed: {e.Message}");
            _active.Clear();
        }
    }

    void End(DecodingSequence sequence, string reason, string? failure)
    {
        Interlocked.Add(ref _completionTokens, sequence.Generated);
        sequence.Finish(reason, failure);
        sequence.Dispose();
    }
}
