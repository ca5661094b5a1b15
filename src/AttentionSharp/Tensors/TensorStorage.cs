using System.Runtime.CompilerServices;

namespace AttentionSharp;

/// <summary>
/// A block of fp32 memory on the pinned object heap, 64-byte aligned (one cache line, one Vector512), shared by a tensor
/// and its views through a reference count. When the count reaches zero the block goes back to <see cref="StoragePool"/>;
/// a block whose tensors are never disposed is simply collected by the GC, so a forgotten Dispose costs reuse, never
/// correctness.
/// </summary>
internal sealed unsafe class TensorStorage
{
    const int AlignFloats = 16; // 64 bytes

    readonly float[] _array;
    readonly int _start;
    int _refCount;

    /// <summary>Usable length in floats (the pool bucket size, at least what was asked for).</summary>
    public readonly int Capacity;

    /// <summary>Address of element 0; stable for the storage's lifetime because the array is pinned.</summary>
    public readonly float* Pointer;

    TensorStorage(int capacity)
    {
        Capacity = capacity;
        _array = GC.AllocateUninitializedArray<float>(capacity + AlignFloats, pinned: true);
        var address = (nuint)Unsafe.AsPointer(ref _array[0]);
        _start = (int)(((64 - (address % 64)) % 64) / sizeof(float));
        Pointer = (float*)Unsafe.AsPointer(ref _array[_start]);
        _refCount = 1;
    }

    public Span<float> Span(int offset, int length) => new(_array, _start + offset, length);

    internal static TensorStorage Allocate(int capacity) => new(capacity);

    internal void Revive() => _refCount = 1;

    public void AddRef() => Interlocked.Increment(ref _refCount);

    public void Release()
    {
        int left = Interlocked.Decrement(ref _refCount);
        if (left == 0) StoragePool.Return(this);
    }

    /// <summary>
    /// Releases a reference whose memory should go back to the system rather than to the pool (an int8 weight's fp32
    /// elements, dropped for good): the last reference leaves the block to the GC.
    /// </summary>
    public void Abandon()
    {
        int left = Interlocked.Decrement(ref _refCount);
        if (left == 0) MemoryMeter.Remove((long)Capacity * sizeof(float));
    }
}

/// <summary>
/// Reuses tensor memory across steps: blocks are kept in power-of-two buckets, up to <see cref="MaxCachedBytes"/> in
/// total. Rented memory is not cleared; creation functions that promise zeros clear it themselves.
/// </summary>
public static class StoragePool
{
    const int MinBucketLog = 4; // 16 floats
    const int BucketCount = 32;

    static readonly Stack<TensorStorage>[] Buckets = CreateBuckets();
    static long _cachedBytes;

    /// <summary>
    /// Upper bound on memory kept for reuse: by default a quarter of the memory the process may use, at least 2 GiB.
    /// A step whose activations pass the bound gives the rest back to the GC at its end, and the next step allocates
    /// it again from fresh pages, each faulted in on first touch (char-small: 3.7 GB a step).
    /// </summary>
    public static long MaxCachedBytes { get; set; } = Math.Max(2L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

    /// <summary>Bytes currently held by the pool for reuse.</summary>
    public static long CachedBytes => Interlocked.Read(ref _cachedBytes);

    static Stack<TensorStorage>[] CreateBuckets()
    {
        var buckets = new Stack<TensorStorage>[BucketCount];
        for (int i = 0; i < BucketCount; i++) buckets[i] = new Stack<TensorStorage>();
        return buckets;
    }

    static int BucketOf(int length)
    {
        int log = length <= 1 << MinBucketLog ? MinBucketLog : 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(length - 1));
        return log;
    }

    internal static TensorStorage Rent(int length)
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length), length, "A tensor cannot have a negative number of elements.");
        int log = BucketOf(length);
        if (log >= 31) throw new ArgumentOutOfRangeException(nameof(length), length, "A tensor is limited to 2^30 elements (4 GiB).");
        var bucket = Buckets[log];
        MemoryMeter.Add((1L << log) * sizeof(float));
        lock (bucket)
        {
            if (bucket.TryPop(out var storage))
            {
                Interlocked.Add(ref _cachedBytes, -((long)storage.Capacity * sizeof(float)));
                storage.Revive();
                return storage;
            }
        }
        return TensorStorage.Allocate(1 << log);
    }

    internal static void Return(TensorStorage storage)
    {
        long bytes = (long)storage.Capacity * sizeof(float);
        MemoryMeter.Remove(bytes);
        if (CachedBytes + bytes > MaxCachedBytes) return;
        var bucket = Buckets[BucketOf(storage.Capacity)];
        lock (bucket) bucket.Push(storage);
        Interlocked.Add(ref _cachedBytes, bytes);
    }

    /// <summary>Drops every cached block so the GC can reclaim it.</summary>
    public static void Clear()
    {
        foreach (var bucket in Buckets)
            lock (bucket)
            {
                while (bucket.TryPop(out var s)) Interlocked.Add(ref _cachedBytes, -((long)s.Capacity * sizeof(float)));
            }
    }
}
