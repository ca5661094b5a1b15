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

    GpuTensor(GpuDevice device, ReadOnlySpan<int> shape)
    {
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"A GPU tensor's dimensions must be non-negative; got ({string.Join(", ", shape.ToArray())}).", nameof(shape));
            count *= d;
        }
        if (count > int.MaxValue)
            throw new ArgumentException($"A GPU tensor holds at most {int.MaxValue} floats; ({string.Join(", ", shape.ToArray())}) has {count}.", nameof(shape));
        Device = device;
        _shape = shape.ToArray();
        Count = (int)count;
        // ILGPU cannot allocate an empty buffer; one unused float stands in.
        _buffer = device.Accelerator.Allocate1D<float>(Math.Max(Count, 1));
    }

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
            throw new ArgumentException($"Shape ({string.Join(", ", shape.ToArray())}) holds {t.Count} elements, but {data.Length} values were given.", nameof(data));
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
            ObjectDisposedException.ThrowIf(_buffer is null, this);
            return _buffer.View.AsContiguous();
        }
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
            throw new ArgumentException($"The destination holds {destination.Length} floats; the GPU tensor has {Count}.", nameof(destination));
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
    public void Clear() => View.MemSetToZero();

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
            ObjectDisposedException.ThrowIf(_buffer is null, this);
            return _buffer.View.AsContiguous();
        }
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
