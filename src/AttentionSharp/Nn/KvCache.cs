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
/// One layer's cache: self-attention keys and values (B, NKV, T_so_far, HS), grown by appending (or the last w − 1 of them
/// under a causal sliding window), and the keys and values
/// of the cross-attention memory, computed once on the first step.
/// </summary>
public sealed class KvCacheLayer
{
    /// <summary>Self-attention keys so far, (B, NKV, T_so_far, HS); null before the first step.</summary>
    public Tensor? Keys { get; private set; }

    /// <summary>Self-attention values so far, (B, NKV, T_so_far, HS).</summary>
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

    /// <summary>T_so_far: the number of positions fed so far (the position of the next one); a window may keep fewer keys.</summary>
    public int Length { get; private set; }

    /// <summary>
    /// Appends the new positions' k and v (B, NKV, T_new, HS) and returns the keys and values the new queries attend to.
    /// With a causal sliding <paramref name="window"/> w, only the last w − 1 positions are kept afterwards (all a later
    /// query can see): the returned tensors are then the kept keys plus the new ones, and the cache stays O(w).
    /// </summary>
    public (Tensor Keys, Tensor Values) Append(Tensor k, Tensor v, int? window = null)
    {
        RequireNoGrad();
        if (LinearState is not null) throw new InvalidOperationException("This cache holds a linear-attention state; softmax attention needs one that keeps keys.");
        Tensor allK, allV;
        if (Keys is { } oldK && Values is { } oldV)
        {
            if (k.Size(0) != oldK.Size(0) || k.Size(1) != oldK.Size(1) || k.Size(3) != oldK.Size(3))
                throw new ArgumentException($"The new keys {ShapeMath.Format(k.Shape)} do not continue the cached {ShapeMath.Format(oldK.Shape)} (B, NKV and HS must match).", nameof(k));
            allK = Tensor.Cat([oldK, k], 2);                                                  // (B, NKV, T_kept + T_new, HS)
            allV = Tensor.Cat([oldV, v], 2);
            oldK.Dispose(); oldV.Dispose();
        }
        else
        {
            allK = k.Copy();
            allV = v.Copy();
        }
        Length += k.Size(2);
        int kept = allK.Size(2);
        if (window is { } w && kept > Math.Max(1, w - 1))
        {
            // Keep the last w − 1 positions; the step's own tensors go back with its scope.
            int keep = Math.Max(1, w - 1);
            Keys = allK.Narrow(2, kept - keep, keep).Contiguous().Copy().DetachFromScope();
            Values = allV.Narrow(2, kept - keep, keep).Contiguous().Copy().DetachFromScope();
            return (allK, allV);
        }
        Keys = allK.DetachFromScope();
        Values = allV.DetachFromScope();
        return (Keys, Values);
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
        Keys = Select(Keys, rows); Values = Select(Values, rows);
        MemoryKeys = Select(MemoryKeys, rows); MemoryValues = Select(MemoryValues, rows);
    }

    static Tensor? Select(Tensor? cached, ReadOnlySpan<int> rows)
    {
        if (cached is null) return null;
        var selected = cached.IndexSelect(0, rows).DetachFromScope();                          // (B', NKV, T, HS)
        cached.Dispose();
        return selected;
    }

    /// <summary>Forgets everything cached.</summary>
    public void Reset()
    {
        Keys?.Dispose(); Values?.Dispose(); MemoryKeys?.Dispose(); MemoryValues?.Dispose();
        LinearState?.Dispose();
        Keys = Values = MemoryKeys = MemoryValues = LinearState = null;
        Length = 0;
    }

    static void RequireNoGrad()
    {
        if (GradMode.IsEnabled)
            throw new InvalidOperationException("The K/V cache keeps no autograd history, so gradients could not reach the cached keys and values; decode inside GradMode.NoGrad().");
    }
}
