namespace AttentionSharp;

public sealed unsafe partial class Tensor
{
    /// <summary>
    /// The slices at <paramref name="indices"/> along <paramref name="dim"/>, in that order, repeats allowed (torch's
    /// index_select): result.Narrow(dim, i, 1) = this.Narrow(dim, indices[i], 1). Composed of Narrow and Cat, so it is
    /// differentiable (gradients of repeated slices add up). Used to reorder decoding state as beams are pruned.
    /// </summary>
    public Tensor IndexSelect(int dim, ReadOnlySpan<int> indices)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank);
        if (indices.IsEmpty) throw new ArgumentException("IndexSelect needs at least one index.", nameof(indices));
        var slices = new Tensor[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            if ((uint)indices[i] >= (uint)_shape[d])
                throw new ArgumentOutOfRangeException(nameof(indices), indices[i], $"IndexSelect: index {i} is " +
                    $"{indices[i]}, outside [0, {_shape[d]}) of dimension {d} in {ShapeMath.Format(Shape)}.");
            slices[i] = Narrow(d, indices[i], 1);
        }
        var result = Cat(slices, d);
        // The slices are views that hold this tensor's storage until their scope ends. With no gradient to record
        // through them they go now, so that selecting rows of a cache step after step (a beam search, whose scope
        // spans every step) does not keep each step's old buffers alive.
        if (!Autograd.GradMode.IsEnabled || !RequiresGrad)
            foreach (var slice in slices) slice.Dispose();
        return result;
    }
}
