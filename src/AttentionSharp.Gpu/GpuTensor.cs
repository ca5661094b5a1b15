using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// A dense row-major float buffer on a <see cref="GpuDevice"/>, with a shape. The kernels read and write it in place;
/// <see cref="ToTensor"/> and <see cref="ToArray"/> copy it back to the host (after every queued kernel).
/// </summary>
public sealed class GpuTensor : IDisposable
{
    readonly int[] _shape;
    MemoryBuffer1D<float, Stride1D.Dense>? _buffer;
    // A slice (see Slice) reads its parent's buffer from an offset and owns nothing.
    readonly GpuTensor? _parent;
    readonly long _offset;

    GpuTensor(GpuDevice device, ReadOnlySpan<int> shape)
    {
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"A GPU tensor's dimensions must be non-negative; got " +
                $"({string.Join(", ", shape.ToArray())}).", nameof(shape));
            count *= d;
        }
        if (count > int.MaxValue)
            throw new ArgumentException($"A GPU tensor holds at most {int.MaxValue} floats; " +
                $"({string.Join(", ", shape.ToArray())}) has {count}.", nameof(shape));
        Device = device;
        _shape = shape.ToArray();
        Count = (int)count;
        // ILGPU cannot allocate an empty buffer; one unused float stands in.
        _buffer = device.Accelerator.Allocate1D<float>(Math.Max(Count, 1));
    }

    GpuTensor(GpuTensor parent, long offset, ReadOnlySpan<int> shape, int count)
    {
        Device = parent.Device;
        _shape = shape.ToArray();
        Count = count;
        _parent = parent;
        _offset = offset;
    }

    /// <summary>A buffer of <paramref name="count"/> floats left as the allocator gives them.</summary>
    internal static GpuTensor Uninitialized(GpuDevice device, int count) => new(device, [count]);

    internal static GpuTensor Zeros(GpuDevice device, ReadOnlySpan<int> shape)
    {
        var t = new GpuTensor(device, shape);
        t.Clear();
        return t;
    }

    internal static GpuTensor FromSpan(GpuDevice device, ReadOnlySpan<float> data, ReadOnlySpan<int> shape)
    {
        var t = new GpuTensor(device, shape.IsEmpty ? [data.Length] : shape);
        if (t.Count != data.Length)
            throw new ArgumentException($"Shape ({string.Join(", ", shape.ToArray())}) holds {t.Count} elements, but " +
                $"{data.Length} values were given.", nameof(data));
        t.CopyFrom(data);
        return t;
    }

    internal static GpuTensor FromTensor(GpuDevice device, Tensor tensor)
    {
        var data = tensor.ToArray();
        var t = new GpuTensor(device, tensor.Shape);
        t.CopyFrom(data);
        return t;
    }

    public GpuDevice Device { get; }

    public ReadOnlySpan<int> Shape => _shape;

    public int Rank => _shape.Length;

    /// <summary>Number of elements.</summary>
    public int Count { get; }

    /// <summary>Size of dimension <paramref name="dim"/> (negative counts from the end).</summary>
    public int Size(int dim) => _shape[dim < 0 ? dim + _shape.Length : dim];

    internal ArrayView<float> View
    {
        get
        {
            if (_parent is not null) return _parent.View.SubView(_offset, Math.Max(Count, 1));
            ObjectDisposedException.ThrowIf(_buffer is null, this);
            return _buffer.View.AsContiguous();
        }
    }

    /// <summary>
    /// A view of <paramref name="shape"/>'s elements starting at element <paramref name="offset"/> of this tensor
    /// (row-major): kernels read and write it in place. It owns nothing (disposing it does nothing) and is valid while
    /// this tensor is. Flat parameter and gradient buffers hand out each tensor this way.
    /// </summary>
    public GpuTensor Slice(long offset, params ReadOnlySpan<int> shape)
    {
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0)
                throw new ArgumentException(
                    $"A slice's dimensions must be non-negative; got ({string.Join(", ", shape.ToArray())}).", nameof(shape));
            count *= d;
        }
        if (offset < 0 || offset + count > Count || (count == 0 && offset > Count))
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"A slice of {count} floats at offset {offset} does not fit in a GPU tensor of {Count}.");
        return new GpuTensor(this, offset, shape, (int)count);
    }

    /// <summary>Overwrites the elements with <paramref name="data"/> (Count floats).</summary>
    public void CopyFrom(ReadOnlySpan<float> data)
    {
        if (data.Length != Count)
            throw new ArgumentException($"The GPU tensor holds {Count} floats; {data.Length} were given.", nameof(data));
        if (Count > 0) View.SubView(0, Count).CopyFromCPU(data);
    }

    /// <summary>Copies the elements into <paramref name="destination"/> after every queued kernel has run.</summary>
    public void CopyTo(Span<float> destination)
    {
        if (destination.Length < Count)
            throw new ArgumentException($"The destination holds {destination.Length} floats; the GPU tensor has " +
                $"{Count}.", nameof(destination));
        Device.Synchronize();
        if (Count > 0) View.SubView(0, Count).CopyToCPU(destination[..Count]);
    }

    /// <summary>The elements, copied to a new array.</summary>
    public float[] ToArray()
    {
        var result = new float[Count];
        CopyTo(result);
        return result;
    }

    /// <summary>A host <see cref="Tensor"/> with this shape holding a copy of the elements.</summary>
    public Tensor ToTensor() => Tensor.FromArray(ToArray(), _shape);

    /// <summary>Sets every element to zero.</summary>
    public void Clear()
    {
        if (Count > 0) View.SubView(0, Count).MemSetToZero();
    }

    public override string ToString() => $"GpuTensor ({string.Join(", ", _shape)}) on {Device.Name}";

    public void Dispose()
    {
        _buffer?.Dispose();
        _buffer = null;
    }
}

/// <summary>Integers on a <see cref="GpuDevice"/>: token ids, class targets, padding flags (1 = padding).</summary>
public sealed class GpuIntBuffer : IDisposable
{
    MemoryBuffer1D<int, Stride1D.Dense>? _buffer;
    readonly GpuIntBuffer? _parent;
    readonly int _offset;

    GpuIntBuffer(GpuIntBuffer parent, int offset, int length)
    {
        Device = parent.Device;
        Length = length;
        _parent = parent;
        _offset = offset;
    }

    internal GpuIntBuffer(GpuDevice device, ReadOnlySpan<int> data)
    {
        Device = device;
        Length = data.Length;
        _buffer = device.Accelerator.Allocate1D<int>(Math.Max(Length, 1));
        if (Length > 0) _buffer.View.AsContiguous().SubView(0, Length).CopyFromCPU(data);
    }

    public GpuDevice Device { get; }

    public int Length { get; }

    internal ArrayView<int> View
    {
        get
        {
            if (_parent is not null) return _parent.View.SubView(_offset, Math.Max(Length, 1));
            ObjectDisposedException.ThrowIf(_buffer is null, this);
            return _buffer.View.AsContiguous();
        }
    }

    /// <summary>The integers [offset, offset + length) as a buffer of their own that owns nothing.</summary>
    public GpuIntBuffer Slice(int offset, int length)
    {
        if (offset < 0 || length < 0 || offset + (long)length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"A slice of {length} integers at offset {offset} does not fit in a buffer of {Length}.");
        return new GpuIntBuffer(this, offset, length);
    }

    /// <summary>Overwrites the integers with <paramref name="data"/> (Length values).</summary>
    public void CopyFrom(ReadOnlySpan<int> data)
    {
        if (data.Length != Length)
            throw new ArgumentException($"The buffer holds {Length} integers; {data.Length} were given.", nameof(data));
        if (Length > 0) View.SubView(0, Length).CopyFromCPU(data);
    }

    /// <summary>The values, copied back to the host.</summary>
    public int[] ToArray()
    {
        var result = new int[Length];
        Device.Synchronize();
        if (Length > 0) View.SubView(0, Length).CopyToCPU(result);
        return result;
    }

    public void Dispose()
    {
        _buffer?.Dispose();
        _buffer = null;
    }
}
