using System.Runtime.InteropServices;
using AttentionSharp.Autograd;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Generation;

/// <summary>
/// The batched decoding loop behind <see cref="TextGenerator.GenerateBatch"/>: rows join the cache when their prompt
/// length equals its length, sample, leave when they end, and feed their newest tokens together (see there).
/// Invariant: every row in the cache holds <see cref="KvCache.Length"/> cached positions and its next logits.
/// </summary>
sealed class BatchDecoder(Gpt model, SamplingOptions options, StopConditions stop, Action<int, int>? onToken,
                          Action<int, string>? onText) : IDisposable
{
    readonly KvCache _cache = new(model.Blocks.Count);
    readonly int _context = model.Config.ContextLength;
    readonly int _vocab = model.Config.VocabSize;
    List<Row> _active = [];                                        // rows in the cache, in its batch order

    sealed class Row(int index, int[] prompt, Generator rng, StopConditions stop, int contextLength)
        : GrowingSequence(prompt, rng, stop)
    {
        public int Index { get; } = index;
        public int FirstLength { get; } = Math.Min(prompt.Length, contextLength);   // positions its prefill reads
    }

    public GeneratedSequence[] Run(IReadOnlyList<int[]> prompts, IReadOnlyList<Generator> generators, int maxTokens)
    {
        var rows = new Row[prompts.Count];
        for (int i = 0; i < rows.Length; i++) rows[i] = new Row(i, prompts[i], generators[i], stop, _context);
        model.Eval();
        if (maxTokens > 0)
        {
            var pending = new Queue<Row>(rows.OrderBy(r => r.FirstLength));    // stable: equal lengths keep their order
            using (GradMode.NoGrad())
                while (pending.Count > 0 || _active.Count > 0)
                {
                    Join(pending);
                    Sample(maxTokens);
                    if (_active.Count > 0) Feed();
                }
        }
        return [.. rows.Select(r => r.Result())];
    }

    /// <summary>Reads the prompts whose length equals the cache's (or, with no row left, the shortest prompts).</summary>
    void Join(Queue<Row> pending)
    {
        if (_active.Count == 0 && pending.Count > 0) _cache.Reset();
        while (pending.Count > 0 && (_active.Count == 0 || pending.Peek().FirstLength == _cache.Length))
        {
            int length = pending.Peek().FirstLength;
            var group = new List<Row>();
            while (pending.Count > 0 && pending.Peek().FirstLength == length) group.Add(pending.Dequeue());
            if (_active.Count == 0) { Prefill(_cache, group, length); _active = group; continue; }
            using var side = new KvCache(_cache.Layers);
            Prefill(side, group, length);
            Append(side, _active.Count);
            _active.AddRange(group);
        }
    }

    /// <summary>Draws each row's next token from its own generator; rows that end leave the cache.</summary>
    void Sample(int maxTokens)
    {
        var kept = new List<int>(_active.Count);
        for (int b = 0; b < _active.Count; b++)
        {
            var row = _active[b];
            int next = row.Advance(options, maxTokens, out string shown);
            onToken?.Invoke(row.Index, next);
            if (shown.Length > 0) onText?.Invoke(row.Index, shown);
            if (row.Reason is null) { kept.Add(b); continue; }
            if (row.FinishText() is { Length: > 0 } rest) onText?.Invoke(row.Index, rest);
        }
        if (kept.Count == _active.Count) return;
        if (kept.Count > 0) _cache.Reorder(CollectionsMarshal.AsSpan(kept));
        _active = [.. kept.Select(b => _active[b])];
    }

    /// <summary>Feeds every row's newest token (B, 1), or rebuilds a full cache from the last half-context.</summary>
    void Feed()
    {
        if (_cache.Length == _context) { Prefill(_cache, _active, Math.Max(1, _context / 2)); return; }
        var ids = new int[_active.Count];
        for (int b = 0; b < ids.Length; b++) ids[b] = _active[b].Tokens[^1];
        using var scope = TensorScope.Begin();
        var logits = model.Forward(ids, ids.Length, 1, _cache).Data;                  // (B, 1, V)
        for (int b = 0; b < ids.Length; b++) _active[b].Logits = logits.Slice(b * _vocab, _vocab).ToArray();
    }

    /// <summary>Empties <paramref name="cache"/> and reads the last <paramref name="count"/> tokens of each row.</summary>
    void Prefill(KvCache cache, List<Row> rows, int count)
    {
        cache.Reset();
        var ids = new int[rows.Count * count];
        for (int b = 0; b < rows.Count; b++)
            rows[b].Tokens.CopyTo(rows[b].Tokens.Count - count, ids, b * count, count);
        using var scope = TensorScope.Begin();
        var logits = model.Prefill(ids, rows.Count, count, cache).Data;               // (B, 1, V): the last positions
        for (int b = 0; b < rows.Count; b++) rows[b].Logits = logits.Slice(b * _vocab, _vocab).ToArray();
    }

    /// <summary>
    /// Appends the rows of <paramref name="side"/> (same length) after the <paramref name="rows"/> rows of the cache:
    /// each layer grows to the new batch by repeating row 0, then the new rows are written over the repeats.
    /// </summary>
    void Append(KvCache side, int rows)
    {
        var order = new int[rows + BatchOf(side[0])];                                 // repeats of row 0 at the end
        for (int i = 0; i < rows; i++) order[i] = i;
        _cache.Reorder(order);
        for (int layer = 0; layer < _cache.Layers; layer++)
        {
            var (to, from) = (_cache[layer], side[layer]);
            CopyRows(to.Keys, from.Keys, rows);
            CopyRows(to.Values, from.Values, rows);
            CopyRows(to.LinearState, from.LinearState, rows);
        }
    }

    static int BatchOf(KvCacheLayer layer) => (layer.Keys ?? layer.LinearState)?.Size(0)
        ?? throw new InvalidOperationException("A prefilled cache layer holds no keys and no linear-attention state.");

    static void CopyRows(Tensor? to, Tensor? from, int start)
    {
        if (to is null && from is null) return;
        if (to is null || from is null || to.Rank != from.Rank || to.Size(0) != start + from.Size(0))
            throw new InvalidOperationException("The caches of rows joining the batch do not match the batch's cache.");
        using var slot = to.Narrow(0, start, from.Size(0));
        slot.CopyFrom_(from);                                                         // rows start… of (B, …)
    }


    public void Dispose() => _cache.Dispose();
}
