using AttentionSharp.Autograd;

namespace AttentionSharp.Nn;

/// <summary>
/// The keys and values of past positions for incremental decoding, one <see cref="KvCacheLayer"/> per layer: each step
/// feeds only the new tokens, appends their K and V, and attends over everything so far. The cache holds no autograd
/// history, so it is filled under <see cref="GradMode.NoGrad"/>; it owns its tensors (outside any
/// <see cref="TensorScope"/>) until <see cref="Dispose"/> or <see cref="Reset"/>.
/// </summary>
public sealed class KvCache : IDisposable
{
    readonly KvCacheLayer[] _layers;

    public KvCache(int layers)
    {
        if (layers <= 0) throw new ArgumentOutOfRangeException(nameof(layers), layers, "A K/V cache needs at least one layer.");
        _layers = new KvCacheLayer[layers];
        for (int i = 0; i < layers; i++) _layers[i] = new KvCacheLayer();
    }

    public int Layers => _layers.Length;

    public KvCacheLayer this[int layer] => _layers[layer];

    /// <summary>Positions already cached: the position of the next token fed (the offset for RoPE, ALiBi and absolute encodings).</summary>
    public int Length => _layers[0].Length;

    /// <summary>
    /// Makes batch row i continue from old row rows[i] in every layer (index-select on the batch axis; rows may repeat or
    /// be left out), as beam search needs when beams are pruned and extended. Decode under GradMode.NoGrad().
    /// </summary>
    public void Reorder(ReadOnlySpan<int> rows)
    {
        foreach (var layer in _layers) layer.Reorder(rows);
    }

    /// <summary>Empties every layer, to decode a new sequence.</summary>
    public void Reset()
    {
        foreach (var layer in _layers) layer.Reset();
    }

    public void Dispose() => Reset();
}

/// <summary>
/// The cache one self-attention call appends to: one <see cref="KvCacheLayer"/> for the whole batch (every row at the
/// same position), or one per batch row (independent sequences, each at its own position, as a server decodes them
/// together: <see cref="Models.Gpt.ForwardRows"/>). A layer converts to the first form, and null to no cache.
/// </summary>
public readonly struct LayerCache
{
    LayerCache(KvCacheLayer? batch, IReadOnlyList<KvCacheLayer>? rows) { Batch = batch; Rows = rows; }

    /// <summary>The one cache of the whole batch; null for none or per-row caches.</summary>
    public KvCacheLayer? Batch { get; }

    /// <summary>One cache per batch row; null unless <see cref="PerRow"/> made this.</summary>
    public IReadOnlyList<KvCacheLayer>? Rows { get; }

    public static implicit operator LayerCache(KvCacheLayer? batch) => new(batch, null);

    /// <summary>Row b of the batch appends to <paramref name="rows"/>[b].</summary>
    public static LayerCache PerRow(IReadOnlyList<KvCacheLayer> rows) =>
        new(null, rows ?? throw new ArgumentNullException(nameof(rows)));
}

/// <summary>
/// One layer's cache: self-attention keys and values (B, NKV, T_kept, HS), written in place into preallocated buffers
/// (B, NKV, capacity, HS) whose capacity doubles when full, so a step copies only its new positions; under a causal
/// sliding window only the last w − 1 positions are kept (all a later query can see), so the cache stays O(w). Also the
/// keys and values of the cross-attention memory, computed once on the first step, and for linear attention a recurrent
/// state instead of keys.
/// </summary>
public sealed class KvCacheLayer
{
    /// <summary>The first capacity, in positions (more if the first append brings more).</summary>
    const int InitialCapacity = 64;

    Tensor? _keyBuffer, _valueBuffer; // (B, NKV, capacity, HS)
    int _kept;                        // positions held in the buffers: [0, _kept)

    /// <summary>Self-attention keys held, (B, NKV, T_kept, HS), a view of the buffer; null before the first step.</summary>
    public Tensor? Keys { get; private set; }

    /// <summary>Self-attention values held, (B, NKV, T_kept, HS).</summary>
    public Tensor? Values { get; private set; }

    /// <summary>The memory's keys for cross-attention, (B, NKV, T_memory, HS); null until the first cross-attention call.</summary>
    public Tensor? MemoryKeys { get; private set; }

    /// <summary>The memory's values for cross-attention.</summary>
    public Tensor? MemoryValues { get; private set; }

    /// <summary>
    /// The recurrent state of causal linear attention, (B, NKV, HS·HS + HS): S = Σ_j φ(k_j)·v_jᵀ and z = Σ_j φ(k_j) over
    /// the positions so far; null unless the layer's attention is linear (which then caches no keys).
    /// </summary>
    public Tensor? LinearState { get; private set; }

    /// <summary>T_so_far: the number of positions fed so far (the position of the next one); a window may keep fewer keys.</summary>
    public int Length { get; private set; }

    /// <summary>Positions the buffers hold before they must grow.</summary>
    public int Capacity => _keyBuffer?.Size(2) ?? 0;

    /// <summary>
    /// Causal linear attention of the new positions (q (B, NH, T_new, HS), k and v (B, NKV, T_new, HS)) over everything so
    /// far, through the recurrent state, which then advances: O(T_new·HS²) memory and time per step, whatever the length.
    /// </summary>
    public Tensor AttendLinear(Tensor q, Tensor k, Tensor v)
    {
        RequireNoGrad();
        int hs = k.Size(3), rows = hs * hs + hs;
        if (Keys is not null) throw new InvalidOperationException("This cache holds keys of softmax attention; a linear-attention layer keeps a state instead.");
        if (LinearState is { } old && (old.Size(0) != k.Size(0) || old.Size(1) != k.Size(1) || old.Size(2) != rows))
            throw new ArgumentException($"The new keys {ShapeMath.Format(k.Shape)} do not continue the cached state {ShapeMath.Format(old.Shape)} (B, NKV and HS must match).", nameof(k));
        LinearState ??= Tensor.Zeros(k.Size(0), k.Size(1), rows).DetachFromScope();
        Length += k.Size(2);
        return Tensor.LinearAttentionStep(q, k, v, LinearState);
    }

    /// <summary>
    /// Appends the new positions' k and v (B, NKV, T_new, HS) and returns the keys and values the new queries attend to
    /// (views of the buffers, valid until the next append, reorder or reset). With a causal sliding
    /// <paramref name="window"/> w, only the last w − 1 positions are kept afterwards (all a later query can see): the
    /// returned tensors are then a copy of the kept keys plus the new ones, and the cache stays O(w).
    /// </summary>
    public (Tensor Keys, Tensor Values) Append(Tensor k, Tensor v, int? window = null)
    {
        RequireNoGrad();
        if (LinearState is not null) throw new InvalidOperationException("This cache holds a linear-attention state; softmax attention needs one that keeps keys.");
        if (k.Rank != 4 || !ShapeMath.SameShape(k.Shape, v.Shape))
            throw new ArgumentException($"Keys and values must both be (B, NKV, T_new, HS); got {ShapeMath.Format(k.Shape)} and {ShapeMath.Format(v.Shape)}.", nameof(k));
        if (_keyBuffer is { } buffer && (k.Size(0) != buffer.Size(0) || k.Size(1) != buffer.Size(1) || k.Size(3) != buffer.Size(3)))
            throw new ArgumentException($"The new keys {ShapeMath.Format(k.Shape)} do not continue the cached {ShapeMath.Format(Keys!.Shape)} (B, NKV and HS must match).", nameof(k));
        int added = k.Size(2), total = _kept + added;
        if (total > Capacity) Grow(k, Math.Max(total, Math.Max(2 * Capacity, InitialCapacity)));
        using (var slot = _keyBuffer!.Narrow(2, _kept, added)) slot.CopyFrom_(k);
        using (var slot = _valueBuffer!.Narrow(2, _kept, added)) slot.CopyFrom_(v);
        _kept = total;
        Length += added;
        SetViews();
        int keep = window is { } w ? Math.Max(1, w - 1) : int.MaxValue;
        if (_kept <= keep) return (Keys!, Values!);
        // The new queries still see everything appended so far; a copy of it goes back with the step's scope.
        var all = (Keys!.Copy(), Values!.Copy());
        foreach (var b in new[] { _keyBuffer, _valueBuffer })
        {
            using var tail = b.Narrow(2, _kept - keep, keep).Copy();                           // a copy: the ranges may overlap
            using var front = b.Narrow(2, 0, keep);
            front.CopyFrom_(tail);
        }
        _kept = keep;
        SetViews();
        return all;
    }

    /// <summary>New buffers of <paramref name="capacity"/> positions holding what is kept so far.</summary>
    void Grow(Tensor like, int capacity)
    {
        int b = like.Size(0), nkv = like.Size(1), hs = like.Size(3);
        var keys = Tensor.Uninitialized([b, nkv, capacity, hs]).DetachFromScope();
        var values = Tensor.Uninitialized([b, nkv, capacity, hs]).DetachFromScope();
        if (_kept > 0)
        {
            using (var slot = keys.Narrow(2, 0, _kept)) slot.CopyFrom_(Keys!);
            using (var slot = values.Narrow(2, 0, _kept)) slot.CopyFrom_(Values!);
        }
        _keyBuffer?.Dispose(); _valueBuffer?.Dispose();
        _keyBuffer = keys; _valueBuffer = values;
    }

    void SetViews()
    {
        Keys?.Dispose(); Values?.Dispose();
        Keys = _keyBuffer!.Narrow(2, 0, _kept).DetachFromScope();                             // (B, NKV, T_kept, HS)
        Values = _valueBuffer!.Narrow(2, 0, _kept).DetachFromScope();
    }

    /// <summary>Stores the memory's keys and values for cross-attention.</summary>
    public void SetMemory(Tensor k, Tensor v)
    {
        RequireNoGrad();
        MemoryKeys?.Dispose(); MemoryValues?.Dispose();
        MemoryKeys = k.Copy().DetachFromScope();
        MemoryValues = v.Copy().DetachFromScope();
    }

    /// <summary>Row i of every cached tensor becomes old row rows[i] (B' = rows.Length rows afterwards).</summary>
    public void Reorder(ReadOnlySpan<int> rows)
    {
        RequireNoGrad();
        if (_keyBuffer is not null)
        {
            var keys = Keys!.IndexSelect(0, rows).DetachFromScope();                             // (B', NKV, T_kept, HS), its own buffer
            var values = Values!.IndexSelect(0, rows).DetachFromScope();
            Keys.Dispose(); Values!.Dispose(); _keyBuffer.Dispose(); _valueBuffer!.Dispose();
            Keys = Values = null;
            _keyBuffer = keys; _valueBuffer = values;
            SetViews();
        }
        MemoryKeys = Select(MemoryKeys, rows); MemoryValues = Select(MemoryValues, rows);
        LinearState = Select(LinearState, rows);
    }

    static Tensor? Select(Tensor? cached, ReadOnlySpan<int> rows)
    {
        if (cached is null) return null;
        var selected = cached.IndexSelect(0, rows).DetachFromScope();                          // (B', …)
        cached.Dispose();
        return selected;
    }

    /// <summary>Forgets everything cached.</summary>
    public void Reset()
    {
        Keys?.Dispose(); Values?.Dispose(); MemoryKeys?.Dispose(); MemoryValues?.Dispose();
        _keyBuffer?.Dispose(); _valueBuffer?.Dispose(); LinearState?.Dispose();
        Keys = Values = MemoryKeys = MemoryValues = _keyBuffer = _valueBuffer = LinearState = null;
        _kept = 0;
        Length = 0;
    }

    static void RequireNoGrad()
    {
        if (GradMode.IsEnabled)
            throw new InvalidOperationException("The K/V cache keeps no autograd history, so gradients could not reach the cached keys and values; decode inside GradMode.NoGrad().");
    }
}
