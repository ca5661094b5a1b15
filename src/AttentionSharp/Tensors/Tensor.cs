using System.Runtime.CompilerServices;
using System.Text;

namespace AttentionSharp;

/// <summary>
/// An fp32 tensor: row-major storage from <see cref="StoragePool"/>, a shape of any rank and strides, so that reshape,
/// transpose, permute and slicing are views that copy nothing. Operations live in the partial files beside this one
/// (views, element-wise, reductions, linear algebra, neural-network ops); each records itself on the autograd graph when
/// an input requires a gradient and gradients are enabled (<see cref="Autograd.GradMode"/>).
/// </summary>
/// <remarks>
/// Tensors produced by operations are meant to be read, not written in place: the graph keeps references to them for
/// the backward pass. The in-place methods (ending in <c>_</c>) are for parameters and buffers, outside recorded code.
/// </remarks>
public sealed unsafe partial class Tensor : IDisposable
{
    TensorStorage? _storage;
    DeviceMemory? _memory;   // instead of _storage for a tensor on a device other than the CPU
    int _offset;
    readonly int[] _shape;
    readonly int[] _strides;

    internal Tensor(TensorStorage storage, int offset, int[] shape, int[] strides)
        : this(storage, null, offset, shape, strides) { }

    /// <summary>A tensor whose elements live on a device other than the CPU.</summary>
    internal Tensor(DeviceMemory memory, int offset, int[] shape, int[] strides)
        : this(null, memory, offset, shape, strides) { }

    Tensor(TensorStorage? storage, DeviceMemory? memory, int offset, int[] shape, int[] strides)
    {
        _storage = storage;
        _memory = memory;
        _offset = offset;
        _shape = shape;
        _strides = strides;
        Count = ShapeMath.Count(shape);
        IsContiguous = ComputeContiguous(shape, strides);
        if (TensorScope.Current is { } scope) { Scope = scope; scope.Track(this); }
    }

    /// <summary>The scope that will dispose this tensor, if any.</summary>
    internal TensorScope? Scope { get; private set; }

    /// <summary>Releases this tensor from its <see cref="TensorScope"/> so it outlives it; returns the tensor.</summary>
    public Tensor DetachFromScope()
    {
        Scope = null;
        return this;
    }

    /// <summary>A fresh tensor whose elements are not initialised.</summary>
    internal static Tensor Uninitialized(ReadOnlySpan<int> shape)
    {
        int count = ShapeMath.Count(shape);
        var s = shape.ToArray();
        return new Tensor(StoragePool.Rent(count), 0, s, ShapeMath.ContiguousStrides(s));
    }

    /// <summary>The sizes of each dimension.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Element steps between neighbours along each dimension.</summary>
    public ReadOnlySpan<int> Strides => _strides;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements.</summary>
    public int Count { get; }

    /// <summary>
    /// The int8 form of this weight, set by <see cref="Quantize"/>: products that read the weight use it whenever no
    /// gradient is recorded. Null for an fp32 tensor.
    /// </summary>
    public QuantizedWeight? Quantized { get; private set; }

    /// <summary>
    /// Makes this weight (out, in) an int8 one: quantizes it per output channel (or takes <paramref name="quantized"/>,
    /// read from an int8 checkpoint) and sets the elements to the values it stands for, q·scale. The int8 form is for
    /// inference; a product that would record a gradient through it is refused.
    /// </summary>
    public void Quantize(QuantizedWeight? quantized = null)
    {
        quantized ??= QuantizedWeight.Quantize(this);
        if (Rank != 2 || quantized.Rows != _shape[0] || quantized.Columns != _shape[1])
            throw new ArgumentException($"An int8 weight of {quantized.Rows}×{quantized.Columns} does not fit this " +
                $"{ShapeMath.Format(_shape)} tensor.", nameof(quantized));
        if (!IsContiguous) throw new InvalidOperationException("Only a contiguous weight can be quantized.");
        quantized.Dequantize(Data);
        Quantized = quantized;
    }

    /// <summary>Sets the int8 form of a weight whose elements already hold its q·scale (read from the same file).</summary>
    internal void AttachQuantized(QuantizedWeight quantized) => Quantized = quantized;

    /// <summary>Forgets the int8 form (new fp32 values are being written into the tensor).</summary>
    internal void ClearQuantized()
    {
        if (Float32Released) throw Int8Only();
        Quantized = null;
    }

    /// <summary>
    /// Drops the fp32 elements of an int8 weight (<see cref="Quantized"/>), so that it holds a quarter of the memory:
    /// products and embedding lookups read the int8 form, and give the same values as before; anything else that reads
    /// or writes the elements (training, loading fp32 weights into it, copying it) is refused with a sentence.
    /// </summary>
    public void ReleaseFloat32()
    {
        if (Quantized is null) throw new InvalidOperationException("Only an int8 weight can drop its fp32 elements; " +
            "call Quantize first.");
        if (Float32Released) return;
        Float32Released = true;
        Interlocked.Exchange(ref _storage, null)?.Abandon();   // to the GC, not to the pool: this memory is not needed again
    }

    /// <summary>True after <see cref="ReleaseFloat32"/>: only the int8 form is held.</summary>
    public bool Float32Released { get; private set; }

    InvalidOperationException Int8Only() => new(
        $"This {ShapeMath.Format(_shape)} weight is int8 only: its fp32 elements were released to save memory, and only " +
        "products and embedding lookups read it. Load the checkpoint again to train, copy or export it.");

    /// <summary>True when the elements are laid out densely in row-major order, so <see cref="Data"/> is available.</summary>
    public bool IsContiguous { get; }

    /// <summary>Size of dimension <paramref name="dim"/> (negative counts from the end).</summary>
    public int Size(int dim) => _shape[ShapeMath.NormalizeDim(dim, Rank)];

    internal TensorStorage Storage => _storage ?? throw NoStorage();

    /// <summary>Why a tensor has no host storage: int8 only, on a device, or disposed (kept out of the hot getter).</summary>
    Exception NoStorage() =>
        Float32Released ? Int8Only()
        : _memory is not null
            ? new InvalidOperationException($"This {ShapeMath.Format(_shape)} tensor is on {_memory.Device.Name}, and " +
                "this operation runs on the CPU only; copy it with To(Device.Cpu) first (docs/gpu.md lists what " +
                "runs on a device).")
            : new ObjectDisposedException(nameof(Tensor), "This tensor was disposed.");
    internal int Offset => _offset;
    internal DeviceMemory? Memory => _memory;
    internal int[] ShapeArray => _shape;
    internal int[] StrideArray => _strides;

    /// <summary>The elements of a contiguous tensor, in row-major order.</summary>
    public Span<float> Data
    {
        get
        {
            if (!IsContiguous) throw new InvalidOperationException("Data needs a contiguous tensor; " +
                $"this {ShapeMath.Format(_shape)} view is strided. Call Contiguous() first.");
            return Storage.Span(_offset, Count);
        }
    }

    /// <summary>Address of the first element (the storage is pinned for the tensor's lifetime).</summary>
    public float* Pointer => Storage.Pointer + _offset;

    /// <summary>
    /// The elements as one dense span when they fill a block without gaps in some order of the dimensions (a dense
    /// tensor, or a permuted view of one such as attention's (B, NH, T, HS) output laid out (B, T, NH, HS)); else empty.
    /// For order-free passes over all elements (sums, finiteness checks).
    /// </summary>
    internal Span<float> DenseBlockOrEmpty()
    {
        if (_memory is not null) return [];
        if (IsContiguous) return Data;
        var order = Enumerable.Range(0, Rank).OrderByDescending(d => _strides[d]).ToArray();
        if (!ComputeContiguous([.. order.Select(d => _shape[d])], [.. order.Select(d => _strides[d])])) return [];
        return Storage.Span(_offset, Count);
    }

    static bool ComputeContiguous(int[] shape, int[] strides)
    {
        int expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] == 1) continue;
            if (strides[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    /// <summary>The element at a full index (negative indices count from the end).</summary>
    [IndexerName("Element")]
    public float this[params ReadOnlySpan<int> index]
    {
        get => Storage.Pointer[ElementOffset(index)];
        set => Storage.Pointer[ElementOffset(index)] = value;
    }

    int ElementOffset(ReadOnlySpan<int> index)
    {
        if (index.Length != Rank) throw new ArgumentException($"A tensor of shape {ShapeMath.Format(_shape)} needs {Rank} " +
            $"indices, got {index.Length}.");
        int off = _offset;
        for (int d = 0; d < index.Length; d++)
        {
            int i = index[d] < 0 ? index[d] + _shape[d] : index[d];
            if ((uint)i >= (uint)_shape[d]) throw new IndexOutOfRangeException($"Index {index[d]} is out of range " +
                $"for dimension {d} of size {_shape[d]}.");
            off += i * _strides[d];
        }
        return off;
    }

    /// <summary>The single value of a one-element tensor.</summary>
    public float Item()
    {
        if (Count != 1) throw new InvalidOperationException("Item() needs a tensor with one element; this one has shape " +
            $"{ShapeMath.Format(_shape)}.");
        if (_memory is not null) return ToArray()[0];
        return Storage.Pointer[_offset];
    }

    /// <summary>Copies the elements into a new array in row-major order.</summary>
    public float[] ToArray()
    {
        var result = new float[Count];
        CopyTo(result);
        return result;
    }

    /// <summary>Copies the elements in row-major order into <paramref name="destination"/>.</summary>
    public void CopyTo(Span<float> destination)
    {
        if (destination.Length < Count) throw new ArgumentException($"Destination holds {destination.Length} elements; " +
            $"the tensor has {Count}.", nameof(destination));
        if (_memory is not null)
        {
            using var dense = IsContiguous ? null : DeviceCopy();
            DeviceBackendOf(this).CopyToHost(dense ?? this, destination[..Count]);
            return;
        }
        if (IsContiguous) { Data.CopyTo(destination); return; }
        fixed (float* dst = destination) StridedCopy(dst, Pointer, _shape, _strides);
    }

    /// <summary>Copies a strided source into a dense row-major destination (<see cref="Strided.Copy"/>).</summary>
    internal static void StridedCopy(float* dst, float* src, int[] shape, int[] strides) =>
        Strided.Copy(dst, ShapeMath.ContiguousStrides(shape), src, strides, shape);

    /// <summary>Returns the memory to the pool. Using the tensor afterwards throws; views keep their memory alive.</summary>
    public void Dispose()
    {
        var s = Interlocked.Exchange(ref _storage, null);
        s?.Release();
        Interlocked.Exchange(ref _memory, null)?.Release();
        GradFn = null;
    }

    internal bool IsDisposed => _storage is null && _memory is null;

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("Tensor").Append(ShapeMath.Format(_shape));
        if (IsDisposed) return sb.Append(" (disposed)").ToString();
        if (_memory is not null) sb.Append(" on ").Append(_memory.Device.Name);
        if (GradFn is not null) sb.Append(" grad_fn=").Append(GradFn.Name);
        else if (RequiresGrad) sb.Append(" requires_grad");
        sb.Append(" [");
        var values = ToArray();
        int shown = Math.Min(values.Length, 8);
        for (int i = 0; i < shown; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(values[i].ToString("G6", System.Globalization.CultureInfo.InvariantCulture));
        }
        if (values.Length > shown) sb.Append(", …");
        return sb.Append(']').ToString();
    }
}
