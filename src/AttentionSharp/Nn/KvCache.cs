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

    /// <summary>Empties every layer, to decode a new sequence.</summary>
    public void Reset()
    {
        foreach (var layer in _layers) layer.Reset();
    }

    public void Dispose() => Reset();
}

/// <summary>
/// One layer's cache: self-attention keys and values (B, NKV, T_so_far, HS), written in place into preallocated buffers
/// (B, NKV, capacity, HS) whose capacity doubles when full, so a step copies only its new positions; and the keys and
/// values of the cross-attention memory, computed once on the first step.
/// </summary>
public sealed class KvCacheLayer
{
    /// <summary>The first capacity, in positions (more if the first append brings more).</summary>
    const int InitialCapacity = 64;

    Tensor? _keyBuffer, _valueBuffer; // (B, NKV, capacity, HS)
    int _length;

    /// <summary>Self-attention keys so far, (B, NKV, T_so_far, HS), a view of the buffer; null before the first step.</summary>
    public Tensor? Keys { get; private set; }

    /// <summary>Self-attention values so far, (B, NKV, T_so_far, HS).</summary>
    public Tensor? Values { get; private set; }

    /// <summary>The memory's keys for cross-attention, (B, NKV, T_memory, HS); null until the first cross-attention call.</summary>
    public Tensor? MemoryKeys { get; private set; }

    /// <summary>The memory's values for cross-attention.</summary>
    public Tensor? MemoryValues { get; private set; }

    /// <summary>T_so_far: the number of positions cached.</summary>
    public int Length => _length;

    /// <summary>Positions the buffers hold before they must grow.</summary>
    public int Capacity => _keyBuffer?.Size(2) ?? 0;

    /// <summary>Appends the new positions' k and v (B, NKV, T_new, HS) and returns all keys and values so far (views valid until the next append or reset).</summary>
    public (Tensor Keys, Tensor Values) Append(Tensor k, Tensor v)
    {
        RequireNoGrad();
        if (k.Rank != 4 || !ShapeMath.SameShape(k.Shape, v.Shape))
            throw new ArgumentException($"Keys and values must both be (B, NKV, T_new, HS); got {ShapeMath.Format(k.Shape)} and {ShapeMath.Format(v.Shape)}.", nameof(k));
        if (_keyBuffer is { } buffer && (k.Size(0) != buffer.Size(0) || k.Size(1) != buffer.Size(1) || k.Size(3) != buffer.Size(3)))
            throw new ArgumentException($"The new keys {ShapeMath.Format(k.Shape)} do not continue the cached {ShapeMath.Format(Keys!.Shape)} (B, NKV and HS must match).", nameof(k));
        int added = k.Size(2), total = _length + added;
        if (total > Capacity) Grow(k, Math.Max(total, Math.Max(2 * Capacity, InitialCapacity)));
        using (var slot = _keyBuffer!.Narrow(2, _length, added)) slot.CopyFrom_(k);
        using (var slot = _valueBuffer!.Narrow(2, _length, added)) slot.CopyFrom_(v);
        _length = total;
        Keys?.Dispose(); Values?.Dispose();
        Keys = _keyBuffer.Narrow(2, 0, total).DetachFromScope();                          // (B, NKV, T_so_far, HS)
        Values = _valueBuffer.Narrow(2, 0, total).DetachFromScope();
        return (Keys, Values);
    }

    /// <summary>New buffers of <paramref name="capacity"/> positions holding what is cached so far.</summary>
    void Grow(Tensor like, int capacity)
    {
        int b = like.Size(0), nkv = like.Size(1), hs = like.Size(3);
        var keys = Tensor.Uninitialized([b, nkv, capacity, hs]).DetachFromScope();
        var values = Tensor.Uninitialized([b, nkv, capacity, hs]).DetachFromScope();
        if (_length > 0)
        {
            using (var slot = keys.Narrow(2, 0, _length)) slot.CopyFrom_(Keys!);
            using (var slot = values.Narrow(2, 0, _length)) slot.CopyFrom_(Values!);
        }
        _keyBuffer?.Dispose(); _valueBuffer?.Dispose();
        _keyBuffer = keys; _valueBuffer = values;
    }

    /// <summary>Stores the memory's keys and values for cross-attention.</summary>
    public void SetMemory(Tensor k, Tensor v)
    {
        RequireNoGrad();
        MemoryKeys?.Dispose(); MemoryValues?.Dispose();
        MemoryKeys = k.Copy().DetachFromScope();
        MemoryValues = v.Copy().DetachFromScope();
    }

    /// <summary>Forgets everything cached.</summary>
    public void Reset()
    {
        Keys?.Dispose(); Values?.Dispose(); MemoryKeys?.Dispose(); MemoryValues?.Dispose();
        _keyBuffer?.Dispose(); _valueBuffer?.Dispose();
        Keys = Values = MemoryKeys = MemoryValues = _keyBuffer = _valueBuffer = null;
        _length = 0;
    }

    static void RequireNoGrad()
    {
        if (GradMode.IsEnabled)
            throw new InvalidOperationException("The K/V cache keeps no autograd history, so gradients could not reach the cached keys and values; decode inside GradMode.NoGrad().");
    }
}
