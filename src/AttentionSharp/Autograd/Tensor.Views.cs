using System.Numerics.Tensors;

namespace AttentionSharp;

// Views share storage with their source; their backward rules route the gradient back to the source's layout.
public sealed unsafe partial class Tensor
{
    Tensor ViewOf(int offset, int[] shape, int[] strides)
    {
        if (_memory is { } memory)
        {
            memory.AddRef();
            return new Tensor(memory, offset, shape, strides);
        }
        Storage.AddRef();
        return new Tensor(Storage, offset, shape, strides);
    }

    /// <summary>A dense row-major tensor with the same values (this tensor itself when already dense).</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return this;
        var result = Copy();
        return Record(result, "Contiguous", [this], g =>
        {
            if (RequiresGrad) AccumulateGradStrided(g);
        });
    }

    /// <summary>Adds a dense gradient laid out in this tensor's shape into this tensor's gradient buffer.</summary>
    void AccumulateGradStrided(Tensor g)
    {
        if (_memory is not null) { AccumulateDeviceGrad(g); return; }
        var buf = GradBufferToSet(out bool set);
        if (set) Kernels.Simd.ElementWise.Copy(buf, g.Data);
        else Kernels.Simd.ElementWise.Add(buf, buf, g.Data);
    }

    int[] InferShape(ReadOnlySpan<int> shape)
    {
        var result = shape.ToArray();
        int infer = -1; long known = 1;
        for (int i = 0; i < result.Length; i++)
        {
            if (result[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException($"Only one dimension can be -1 in shape {ShapeMath.Format(shape)}.");
                infer = i;
            }
            else if (result[i] < 0) throw new ArgumentException($"Shape {ShapeMath.Format(shape)} has a negative " +
                $"dimension at index {i}.");
            else known *= result[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || Count % known != 0)
                throw new ArgumentException($"Cannot reshape a tensor of shape {ShapeMath.Format(Shape)} ({Count} elements) " +
                    $"to {ShapeMath.Format(shape)}.");
            result[infer] = (int)(Count / known);
        }
        if (ShapeMath.Count(result) != Count)
            throw new ArgumentException($"Cannot reshape a tensor of shape {ShapeMath.Format(Shape)} ({Count} elements) " +
                $"to {ShapeMath.Format(shape)}.");
        return result;
    }

    /// <summary>
    /// The same elements with another shape (one dimension may be -1): a view when the strides allow one (always for a
    /// dense tensor), a copy otherwise, as torch.reshape.
    /// </summary>
    public Tensor Reshape(params ReadOnlySpan<int> shape)
    {
        var newShape = InferShape(shape);
        // A strided tensor is viewed without a copy where its strides allow (heads split from a fused QKV projection).
        var strides = IsContiguous ? ShapeMath.ContiguousStrides(newShape) : ShapeMath.ViewStrides(_shape, _strides, newShape);
        if (strides is null) return Contiguous().Reshape(shape);
        var view = ViewOf(_offset, newShape, strides);
        return Record(view, "Reshape", [this], g => { if (RequiresGrad) AccumulateGradStrided(g); });
    }

    /// <summary>Reshape that never copies: throws when the strides allow no view (as torch's view).</summary>
    public Tensor View(params ReadOnlySpan<int> shape)
    {
        if (!IsContiguous && ShapeMath.ViewStrides(_shape, _strides, InferShape(shape)) is null)
            throw new InvalidOperationException($"View: this {ShapeMath.Format(Shape)} tensor's strides " +
                $"{ShapeMath.Format(_strides)} cannot be viewed as {ShapeMath.Format(shape)} without a copy. " +
                "Use Reshape or Contiguous().");
        return Reshape(shape);
    }

    /// <summary>Reorders dimensions: result dimension i is this tensor's dimension dims[i].</summary>
    public Tensor Permute(params ReadOnlySpan<int> dims)
    {
        if (dims.Length != Rank) throw new ArgumentException($"Permute needs {Rank} dimensions for shape " +
            $"{ShapeMath.Format(Shape)}, got {dims.Length}.");
        var seen = new bool[Rank];
        var perm = new int[Rank];
        var shape = new int[Rank]; var strides = new int[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int d = ShapeMath.NormalizeDim(dims[i], Rank, nameof(dims));
            if (seen[d]) throw new ArgumentException($"Permute got dimension {d} twice in {ShapeMath.Format(dims)}.");
            seen[d] = true; perm[i] = d;
            shape[i] = _shape[d]; strides[i] = _strides[d];
        }
        var view = ViewOf(_offset, shape, strides);
        return Record(view, "Permute", [this], g =>
        {
            if (!RequiresGrad) return;
            // The gradient buffer is dense in this tensor's shape; view it permuted and add g (dense in the result's shape).
            var dense = ShapeMath.ContiguousStrides(_shape);
            var permutedStrides = new int[Rank];
            for (int i = 0; i < Rank; i++) permutedStrides[i] = dense[perm[i]];
            if (_memory is not null) { ScatterIntoDeviceGrad(g, 0, permutedStrides); return; }
            var buf = GradBuffer();
            fixed (float* dst = buf) Strided.AddDenseInto(dst, permutedStrides, g.Pointer, g.ShapeArray);
        });
    }

    /// <summary>Swaps two dimensions.</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        int a = ShapeMath.NormalizeDim(dim0, Rank, nameof(dim0)), b = ShapeMath.NormalizeDim(dim1, Rank, nameof(dim1));
        var dims = new int[Rank];
        for (int i = 0; i < Rank; i++) dims[i] = i;
        (dims[a], dims[b]) = (dims[b], dims[a]);
        return Permute(dims);
    }

    /// <summary>The elements start … start + length − 1 along <paramref name="dim"/> (torch's narrow).</summary>
    public Tensor Narrow(int dim, int start, int length)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank);
        if (start < 0 || length < 0 || start + length > _shape[d])
            throw new ArgumentOutOfRangeException(nameof(start), $"Narrow({dim}, {start}, {length}) is out of range " +
                $"for dimension {d} of size {_shape[d]} in shape {ShapeMath.Format(Shape)}.");
        var shape = (int[])_shape.Clone();
        shape[d] = length;
        var view = ViewOf(_offset + start * _strides[d], shape, (int[])_strides.Clone());
        return Record(view, "Narrow", [this], g =>
        {
            if (!RequiresGrad) return;
            var dense = ShapeMath.ContiguousStrides(_shape);
            if (_memory is not null) { ScatterIntoDeviceGrad(g, start * dense[d], dense); return; }
            var buf = GradBuffer();
            fixed (float* dst = buf) Strided.AddDenseInto(dst + start * dense[d], dense, g.Pointer, g.ShapeArray);
        });
    }

    /// <summary>The slice at <paramref name="index"/> along <paramref name="dim"/>, with that dimension removed.</summary>
    public Tensor Select(int dim, int index)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank);
        int i = index < 0 ? index + _shape[d] : index;
        if ((uint)i >= (uint)_shape[d]) throw new IndexOutOfRangeException($"Index {index} is out of range " +
            $"for dimension {d} of size {_shape[d]}.");
        var shape = new int[Rank - 1];
        for (int k = 0, j = 0; k < Rank; k++) if (k != d) shape[j++] = _shape[k];
        return Narrow(d, i, 1).Reshape(shape);
    }

    /// <summary>Inserts a dimension of size 1 at <paramref name="dim"/>.</summary>
    public Tensor Unsqueeze(int dim)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank + 1);
        var shape = new List<int>(_shape);
        shape.Insert(d, 1);
        return Reshape([.. shape]);
    }

    /// <summary>Removes dimension <paramref name="dim"/>, which must have size 1.</summary>
    public Tensor Squeeze(int dim)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank);
        if (_shape[d] != 1) throw new ArgumentException($"Squeeze({dim}) needs a dimension of size 1; " +
            $"shape is {ShapeMath.Format(Shape)}.");
        var shape = new List<int>(_shape);
        shape.RemoveAt(d);
        return Reshape([.. shape]);
    }

    /// <summary>Joins tensors along <paramref name="dim"/>; all other dimensions must match.</summary>
    public static Tensor Cat(IReadOnlyList<Tensor> tensors, int dim)
    {
        if (tensors.Count == 0) throw new ArgumentException("Cat needs at least one tensor.", nameof(tensors));
        var first = tensors[0];
        int d = ShapeMath.NormalizeDim(dim, first.Rank);
        var shape = (int[])first._shape.Clone();
        shape[d] = 0;
        foreach (var t in tensors)
        {
            if (t.Rank != first.Rank) throw new ArgumentException("Cat needs tensors of one rank; got " +
                $"{ShapeMath.Format(first.Shape)} and {ShapeMath.Format(t.Shape)}.");
            for (int k = 0; k < first.Rank; k++)
                if (k != d && t._shape[k] != first._shape[k])
                    throw new ArgumentException($"Cat along dimension {d} needs equal sizes elsewhere; got " +
                        $"{ShapeMath.Format(first.Shape)} and {ShapeMath.Format(t.Shape)}.");
            shape[d] += t._shape[d];
        }
        foreach (var t in tensors)
            if (t._memory is not null) return DeviceCat(tensors, d, shape);
        var result = Uninitialized(shape);
        int outer = 1; for (int k = 0; k < d; k++) outer *= shape[k];
        int inner = 1; for (int k = d + 1; k < shape.Length; k++) inner *= shape[k];
        int rowOut = shape[d] * inner;
        int at = 0;
        var dense = new List<Tensor>();
        foreach (var t in tensors)
        {
            var c = t.IsContiguous ? t : t.Copy();
            int row = t._shape[d] * inner;
            var src = c.Data; var dst = result.Data;
            for (int o = 0; o < outer; o++) src.Slice(o * row, row).CopyTo(dst.Slice(o * rowOut + at, row));
            at += row;
            if (!ReferenceEquals(c, t)) c.Dispose();
        }
        var inputs = tensors.ToArray();
        return Record(result, "Cat", inputs, g =>
        {
            int at2 = 0;
            var gd = g.Data;
            foreach (var t in inputs)
            {
                int row = t._shape[d] * inner;
                if (t.RequiresGrad)
                {
                    var buf = t.GradBuffer();
                    for (int o = 0; o < outer; o++)
                    {
                        var b = buf.Slice(o * row, row);
                        TensorPrimitives.Add(b, gd.Slice(o * rowOut + at2, row), b);
                    }
                }
                at2 += row;
            }
        });
    }

    /// <summary>Splits along <paramref name="dim"/> into pieces of the given sizes (views).</summary>
    public Tensor[] Split(ReadOnlySpan<int> sizes, int dim)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank);
        long total = 0;
        foreach (var s in sizes) { if (s < 0) throw new ArgumentException("Split sizes must be non-negative."); total += s; }
        if (total != _shape[d]) throw new ArgumentException($"Split sizes {ShapeMath.Format(sizes)} add up to {total}, " +
            $"but dimension {d} has size {_shape[d]}.");
        var result = new Tensor[sizes.Length];
        int at = 0;
        for (int i = 0; i < sizes.Length; i++) { result[i] = Narrow(d, at, sizes[i]); at += sizes[i]; }
        return result;
    }

    /// <summary>Splits along <paramref name="dim"/> into <paramref name="chunks"/> equal pieces (views).</summary>
    public Tensor[] Chunk(int chunks, int dim)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank);
        if (chunks <= 0 || _shape[d] % chunks != 0)
            throw new ArgumentException($"Chunk({chunks}) needs a positive count dividing dimension {d} of size {_shape[d]}.");
        var sizes = new int[chunks];
        Array.Fill(sizes, _shape[d] / chunks);
        return Split(sizes, d);
    }
}
