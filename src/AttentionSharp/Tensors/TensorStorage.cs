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

    /// <summary>Usable length in floats (the pool class size, at least what was asked for).</summary>
    public readonly int Capacity;

    /// <summary>
    /// Floats <see cref="MemoryMeter"/> counts for this rental: the class size of the length asked for, which is less
    /// than <see cref="Capacity"/> when a block of a larger class was lent (the meter then reads the same whatever the
    /// pool held).
    /// </summary>
    internal int Metered;

    /// <summary>Address of element 0; stable for the storage's lifetime because the array is pinned.</summary>
    public readonly float* Pointer;

    TensorStorage(int capacity)
    {
        Capacity = Metered = capacity;
        _array = GC.AllocateUninitializedArray<float>(capacity + AlignFloats, pinned: true);
        var address = (nuint)Unsafe.AsPointer(ref _array[0]);
        _start = (int)(((64 - (address % 64)) % 64) / sizeof(float));
        Pointer = (float*)Unsafe.AsPointer(ref _array[_start]);
        _refCount = 1;
    }

    public Span<float> Span(int offset, int length) => new(_array, _start + offset, length);

    internal static TensorStorage Allocate(int capacity) => new(capacity);

    internal void Revive(int metered)
    {
        _refCount = 1;
        Metered = metered;
    }

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
        if (left == 0) MemoryMeter.Remove((long)Metered * sizeof(float));
    }
}

/// <summary>
/// Reuses tensor memory across steps: blocks are kept in size classes, up to <see cref="MaxCachedBytes"/> in total. Up to
/// 2^22 floats (16 MiB) a class is a power of two; above, each octave (2^k, 2^(k+1)] has eight classes, 2^k·(1 + j/8), so
/// a new block is at most an eighth larger than its tensor, and a tensor whose own class has no block takes the least
/// cached one up to an octave larger. With whole octaves only, a block touched by a larger tensor of its class stayed
/// resident at that size for every smaller one (char-small's (B·T, 3C) activations in blocks of its (B·T, 4C) ones: 78 %
/// more than asked), and the training step's peak on <see cref="MemoryMeter"/> was 2,609 MiB instead of 1,849. Smaller
/// tensors keep whole octaves: split from 2^20 floats on, the main job's step ran about a tenth slower (its (B·T, 3C)
/// activations in blocks of their own size, the same arithmetic; why is not found). Rented memory is not cleared;
/// creation functions that promise zeros clear it themselves.
/// </summary>
public static class StoragePool
{
    const int MinLog = 4;      // the smallest class: 16 floats
    const int FineFromLog = 22; // octaves above 2^22 floats (16 MiB) are split
    const int SubClasses = 8;
    const int MaxLog = 30;     // a tensor holds at most 2^30 floats (4 GiB)
    const int ClassCount = FineFromLog + 1 + (MaxLog - FineFromLog) * SubClasses;

    static readonly Stack<TensorStorage>[] Classes = CreateClasses();
    static long _cachedBytes;

    /// <summary>
    /// Upper bound on memory kept for reuse: by default a quarter of the memory the process may use, at least 2 GiB.
    /// A step whose activations pass the bound gives the rest back to the GC at its end, and the next step allocates
    /// it again from fresh pages, each faulted in on first touch (char-small: 3.7 GB a step).
    /// </summary>
    public static long MaxCachedBytes { get; set; } = Math.Max(2L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

    /// <summary>Bytes currently held by the pool for reuse.</summary>
    public static long CachedBytes => Interlocked.Read(ref _cachedBytes);

    static Stack<TensorStorage>[] CreateClasses()
    {
        var classes = new Stack<TensorStorage>[ClassCount];
        for (int i = 0; i < ClassCount; i++) classes[i] = new Stack<TensorStorage>();
        return classes;
    }

    /// <summary>
    /// The class of a block for <paramref name="length"/> floats (1 ≤ length ≤ 2^30): its index and its size, the least
    /// class size ≥ length. A class size maps to its own class.
    /// </summary>
    internal static (int Index, int Size) ClassOf(int length)
    {
        if (length <= 1 << MinLog) return (MinLog, 1 << MinLog);
        int log = 31 - System.Numerics.BitOperations.LeadingZeroCount((uint)(length - 1)); // 2^log < length ≤ 2^(log+1)
        if (log < FineFromLog) return (log + 1, 1 << (log + 1));
        int step = 1 << (log - 3), j = (length - (1 << log) + step - 1) / step; // 1 ≤ j ≤ 8
        return (FineFromLog + 1 + (log - FineFromLog) * SubClasses + j - 1, (1 << log) + j * step);
    }

    internal static TensorStorage Rent(int length)
    {
        if (length < 0)
            throw new ArgumentOutOfRangeException(nameof(length), length, "A tensor cannot have a negative number of elements.");
        if (length > 1 << MaxLog)
            throw new ArgumentOutOfRangeException(nameof(length), length, "A tensor is limited to 2^30 elements (4 GiB).");
        var (index, size) = ClassOf(length);
        MemoryMeter.Add((long)size * sizeof(float)); // the class asked for, whichever block serves it
        // The least cached block that holds the tensor: of its own class, or for a split octave's class up to an octave
        // above, whose pages are resident already where a new block would add the tensor's whole size.
        int last = index <= FineFromLog ? index : Math.Min(index + SubClasses, ClassCount - 1);
        for (int i = index; i <= last; i++)
        {
            var bucket = Classes[i];
            lock (bucket)
            {
                if (bucket.TryPop(out var storage))
                {
                    Interlocked.Add(ref _cachedBytes, -((long)storage.Capacity * sizeof(float)));
                    storage.Revive(size);
                    return storage;
                }
            }
        }
        return TensorStorage.Allocate(size);
    }

    internal static void Return(TensorStorage storage)
    {
        long bytes = (long)storage.Capacity * sizeof(float);
        MemoryMeter.Remove((long)storage.Metered * sizeof(float));
        if (CachedBytes + bytes > MaxCachedBytes) return;
        var bucket = Classes[ClassOf(storage.Capacity).Index];
        lock (bucket) bucket.Push(storage);
        Interlocked.Add(ref _cachedBytes, bytes);
    }

    /// <summary>Drops every cached block so the GC can reclaim it.</summary>
    public static void Clear()
    {
        foreach (var bucket in Classes)
            lock (bucket)
            {
                while (bucket.TryPop(out var s)) Interlocked.Add(ref _cachedBytes, -((long)s.Capacity * sizeof(float)));
            }
    }
}
