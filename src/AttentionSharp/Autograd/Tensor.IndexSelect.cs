namespace AttentionSharp;

public sealed unsafe partial class Tensor
{
    /// <summary>
    /// The slices at <paramref name="indices"/> along <paramref name="dim"/>, in that order, repeats allowed (torch's
    /// index_select): result.Narrow(dim, i, 1) = this.Narrow(dim, indices[i], 1). One row gather
    /// (<see cref="GatherRows"/>) over the tensor viewed as rows of the dimensions after <paramref name="dim"/>, so it is
    /// differentiable (gradients of repeated slices add up). Used to reorder decoding state as beams are pruned.
    /// </summary>
    public Tensor IndexSelect(int dim, ReadOnlySpan<int> indices)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank);
        if (indices.IsEmpty) throw new ArgumentException("IndexSelect needs at least one index.", nameof(indices));
        for (int i = 0; i < indices.Length; i++)
            if ((uint)indices[i] >= (uint)_shape[d])
                throw new ArgumentOutOfRangeException(nameof(indices), indices[i], $"IndexSelect: index {i} is " +
                    $"{indices[i]}, outside [0, {_shape[d]}) of dimension {d} in {ShapeMath.Format(Shape)}.");
        int size = _shape[d], outer = 1, inner = 1;
        for (int k = 0; k < d; k++) outer *= _shape[k];
        for (int k = d + 1; k < Rank; k++) inner *= _shape[k];
        // Row o·size + j of the (outer·size, inner) view is slice j of outer block o.
        var rows = new int[outer * indices.Length];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < indices.Length; i++) rows[o * indices.Length + i] = o * size + indices[i];
        var shape = Shape.ToArray();
        shape[d] = indices.Length;
        var dense = Contiguous();
        var flat = dense.Reshape(outer * size, inner);
        var result = GatherRows(flat, rows, shape);
        // With no gradient recorded (GatherRows' own rule), the copy and the view go now, so that selecting rows of a
        // cache step after step (a beam search, whose scope spans every step) does not keep each step's old buffers alive.
        if (result.GradFn is null)
        {
            flat.Dispose();
            if (!ReferenceEquals(dense, this)) dense.Dispose();
        }
        return result;
    }

    /// <summary>
    /// Rows of <paramref name="x"/>, its last dimension a row of C: the result's row i is row rows[i] of x viewed as
    /// (R, C), or zeros where rows[i] is −1; shaped <paramref name="shape"/>, which holds the N rows' N·C values (or
    /// (N, C) when omitted). Its gradient adds each row back where it came from (repeats add up). Packing and unpacking
    /// sequences of different lengths (<see cref="Nn.SequencePacking"/>) are this op.
    /// </summary>
    public static Tensor GatherRows(Tensor x, ReadOnlySpan<int> rows, params ReadOnlySpan<int> shape)
    {
        if (x.Rank < 1) throw new ArgumentException("GatherRows needs a tensor with a last dimension.", nameof(x));
        int c = x._shape[^1], count = c == 0 ? 0 : x.Count / c;
        var outShape = shape.Length == 0 ? [rows.Length, c] : shape.ToArray();
        if (ShapeMath.Count(outShape) != (long)rows.Length * c)
            throw new ArgumentException($"GatherRows: {rows.Length} rows of {c} do not fill the shape " +
                                        $"{ShapeMath.Format(outShape)}.", nameof(shape));
        for (int i = 0; i < rows.Length; i++)
            if ((uint)rows[i] >= (uint)count && rows[i] != Kernels.Embedding.Absent)
                throw new ArgumentOutOfRangeException(nameof(rows), rows[i],
                    $"GatherRows: rows[{i}] is {rows[i]}; expected a row in [0, {count}) of {ShapeMath.Format(x.Shape)}, " +
                    "or −1 for zeros.");
        var dense = x.Contiguous();
        var y = Uninitialized(outShape);
        var index = rows.ToArray();
        Kernels.Embedding.Forward(y.Data, index, dense.Data, count, c, allowAbsent: true);
        var result = Record(y, "GatherRows", [dense], g =>
        {
            if (dense.RequiresGrad)
                Kernels.Embedding.Backward(dense.GradBuffer(), g.Data, index, count, c, allowAbsent: true);
        });
        if (result.GradFn is null && !ReferenceEquals(dense, x)) dense.Dispose();   // a copy nothing will read again
        return result;
    }
}
