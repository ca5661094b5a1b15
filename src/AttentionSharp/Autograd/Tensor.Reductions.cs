using System.Numerics.Tensors;

namespace AttentionSharp;

// Reductions over one dimension or over all elements. The tensor is viewed as (outer, n, inner) around the reduced
// dimension; inner rows are vectorised.
public sealed unsafe partial class Tensor
{
    (int Outer, int N, int Inner) AroundDim(int d)
    {
        int outer = 1, inner = 1;
        for (int k = 0; k < d; k++) outer *= _shape[k];
        for (int k = d + 1; k < Rank; k++) inner *= _shape[k];
        return (outer, _shape[d], inner);
    }

    int[] ReducedShape(int d, bool keepDim)
    {
        var shape = new List<int>(_shape);
        if (keepDim) shape[d] = 1; else shape.RemoveAt(d);
        return [.. shape];
    }

    /// <summary>Σ over all elements, as a rank-0 tensor.</summary>
    public Tensor Sum()
    {
        var x = Contiguous();
        var result = Scalar(TensorPrimitives.Sum(x.Data));
        return Record(result, "Sum", [x], g =>
        {
            if (!x.RequiresGrad) return;
            var buf = x.GradBuffer();
            TensorPrimitives.Add(buf, g.Data[0], buf);
        });
    }

    /// <summary>Mean over all elements, as a rank-0 tensor.</summary>
    public Tensor Mean()
    {
        if (Count == 0) throw new InvalidOperationException("Mean() of an empty tensor is undefined.");
        return Sum().Scale(1f / Count);
    }

    /// <summary>Σ along <paramref name="dim"/>.</summary>
    public Tensor Sum(int dim, bool keepDim = false)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank);
        var x = Contiguous();
        var (outer, n, inner) = AroundDim(d);
        var result = Zeros(ReducedShape(d, keepDim));
        var src = x.Data; var dst = result.Data;
        for (int o = 0; o < outer; o++)
        {
            var row = dst.Slice(o * inner, inner);
            for (int i = 0; i < n; i++) TensorPrimitives.Add(row, src.Slice((o * n + i) * inner, inner), row);
        }
        return Record(result, "SumDim", [x], g =>
        {
            if (!x.RequiresGrad) return;
            // ∂Σ/∂x_i = 1: every element along the dimension gets the reduced gradient.
            var buf = x.GradBuffer(); var gd = g.Data;
            for (int o = 0; o < outer; o++)
            {
                var grow = gd.Slice(o * inner, inner);
                for (int i = 0; i < n; i++) { var b = buf.Slice((o * n + i) * inner, inner); TensorPrimitives.Add(b, grow, b); }
            }
        });
    }

    /// <summary>Mean along <paramref name="dim"/>.</summary>
    public Tensor Mean(int dim, bool keepDim = false)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank);
        if (_shape[d] == 0) throw new InvalidOperationException($"Mean over dimension {d} of size 0 is undefined.");
        return Sum(d, keepDim).Scale(1f / _shape[d]);
    }

    /// <summary>Maximum along <paramref name="dim"/> and where it occurs (first occurrence); the gradient flows to that element.</summary>
    public (Tensor Values, int[] Indices) Max(int dim, bool keepDim = false)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank);
        if (_shape[d] == 0) throw new InvalidOperationException($"Max over dimension {d} of size 0 is undefined.");
        var x = Contiguous();
        var (outer, n, inner) = AroundDim(d);
        var result = Uninitialized(ReducedShape(d, keepDim));
        var indices = new int[outer * inner];
        var src = x.Data; var dst = result.Data;
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
            {
                int best = 0; float bestValue = src[o * n * inner + j];
                for (int i = 1; i < n; i++)
                {
                    float v = src[(o * n + i) * inner + j];
                    if (v > bestValue || (float.IsNaN(v) && !float.IsNaN(bestValue))) { bestValue = v; best = i; }
                }
                dst[o * inner + j] = bestValue;
                indices[o * inner + j] = best;
            }
        var values = Record(result, "Max", [x], g =>
        {
            if (!x.RequiresGrad) return;
            var buf = x.GradBuffer(); var gd = g.Data;
            for (int o = 0; o < outer; o++)
                for (int j = 0; j < inner; j++)
                    buf[(o * n + indices[o * inner + j]) * inner + j] += gd[o * inner + j];
        });
        return (values, indices);
    }

    /// <summary>Positions of the maxima along <paramref name="dim"/>, row-major over the remaining dimensions.</summary>
    public int[] ArgMax(int dim)
    {
        using (Autograd.GradMode.NoGrad())
        {
            var (values, indices) = Max(dim);
            values.Dispose();
            return indices;
        }
    }
}
