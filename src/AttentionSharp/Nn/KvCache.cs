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
/// One layer's cache: self-attention keys and values (B, NKV, T_so_far, HS), grown by appending, and the keys and values
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

    /// <summary>T_so_far: the number of positions cached.</summary>
    public int Length => Keys?.Size(2) ?? 0;

    /// <summary>Appends the new positions' k and v (B, NKV, T_new, HS) and returns all keys and values so far.</summary>
    public (Tensor Keys, Tensor Values) Append(Tensor k, Tensor v)
    {
        RequireNoGrad();
        if (Keys is { } oldK && Values is { } oldV)
        {
            if (k.Size(0) != oldK.Size(0) || k.Size(1) != oldK.Size(1) || k.Size(3) != oldK.Size(3))
                throw new ArgumentException($"The new keys {ShapeMath.Format(k.Shape)} do not continue the cached {ShapeMath.Format(oldK.Shape)} (B, NKV and HS must match).", nameof(k));
            Keys = Tensor.Cat([oldK, k], 2).DetachFromScope();                                // (B, NKV, T_so_far + T_new, HS)
            Values = Tensor.Cat([oldV, v], 2).DetachFromScope();
            oldK.Dispose(); oldV.Dispose();
        }
        else
        {
            Keys = k.Copy().DetachFromScope();
            Values = v.Copy().DetachFromScope();
        }
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
        Keys = Values = MemoryKeys = MemoryValues = null;
    }

    static void RequireNoGrad()
    {
        if (GradMode.IsEnabled)
            throw new InvalidOperationException("The K/V cache keeps no autograd history, so gradients could not reach the cached keys and values; decode inside GradMode.NoGrad().");
    }
}
