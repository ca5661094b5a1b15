using System.Text;

namespace AttentionSharp;

/// <summary>
/// Shape arithmetic shared by tensor creation, views and broadcasting. Public only for <see cref="Format"/>, the shape
/// notation every layer's error messages use; the arithmetic stays internal.
/// </summary>
public static class ShapeMath
{
    /// <summary>Number of elements, with overflow and negative dimensions reported clearly.</summary>
    internal static int Count(ReadOnlySpan<int> shape)
    {
        long n = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] < 0) throw new ArgumentException($"Shape {Format(shape)} has a negative dimension at index {i}.");
            n *= shape[i];
            if (n > int.MaxValue) throw new ArgumentException($"Shape {Format(shape)} has more than {int.MaxValue} elements.");
        }
        return (int)n;
    }

    /// <summary>Row-major (C order) strides.</summary>
    internal static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var strides = new int[shape.Length];
        int s = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { strides[i] = s; s *= Math.Max(shape[i], 1); }
        return strides;
    }

    /// <summary>
    /// Strides under which <paramref name="shape"/> views the same elements, in the same row-major order, as a tensor of
    /// <paramref name="oldShape"/> and <paramref name="oldStrides"/>; null when no such strides exist and a copy is needed.
    /// The old dimensions fall into runs that are contiguous with one another (stride[d] = stride[d+1]·size[d+1]); a
    /// new shape fits when each run is split into or merged from whole new dimensions, never across two runs.
    /// </summary>
    internal static int[]? ViewStrides(ReadOnlySpan<int> oldShape, ReadOnlySpan<int> oldStrides, ReadOnlySpan<int> shape)
    {
        if (oldShape.Length == 0 || Count(oldShape) == 0) return ContiguousStrides(shape);
        var strides = new int[shape.Length];
        int newDim = shape.Length - 1;
        long runStride = oldStrides[^1], runCount = 1, newCount = 1;
        for (int d = oldShape.Length - 1; d >= 0; d--)
        {
            runCount *= oldShape[d];
            bool runEnds = d == 0 || (oldShape[d - 1] != 1 && oldStrides[d - 1] != runCount * runStride);
            if (!runEnds) continue;
            // Give this run the new dimensions it holds, innermost first (size-1 dimensions fit anywhere).
            while (newDim >= 0 && (newCount < runCount || shape[newDim] == 1))
            {
                strides[newDim] = (int)(newCount * runStride);
                newCount *= shape[newDim];
                newDim--;
            }
            if (newCount != runCount) return null;
            if (d > 0) { runStride = oldStrides[d - 1]; runCount = 1; newCount = 1; }
        }
        return newDim == -1 ? strides : null;
    }

    /// <summary>Maps a possibly negative dimension index into [0, rank).</summary>
    internal static int NormalizeDim(int dim, int rank, string what = "dim")
    {
        int d = dim < 0 ? dim + rank : dim;
        if (d < 0 || d >= rank) throw new ArgumentOutOfRangeException(what, dim, $"Dimension {dim} is out of range for a tensor of rank {rank}.");
        return d;
    }

    /// <summary>NumPy/PyTorch broadcasting: shapes are aligned on the right; each pair of sizes is equal or one of them is 1.</summary>
    internal static int[] Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var result = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"Shapes {Format(a)} and {Format(b)} cannot be broadcast together (dimension {i}: {da} vs {db}).");
            result[i] = da == 1 ? db : da;
        }
        return result;
    }

    /// <summary>Strides that read <paramref name="shape"/>/<paramref name="strides"/> as if it had <paramref name="target"/>'s shape (0 where broadcast).</summary>
    internal static int[] BroadcastStrides(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, ReadOnlySpan<int> target)
    {
        var result = new int[target.Length];
        int offset = target.Length - shape.Length;
        for (int i = 0; i < target.Length; i++)
        {
            if (i < offset) { result[i] = 0; continue; }
            result[i] = shape[i - offset] == 1 && target[i] != 1 ? 0 : strides[i - offset];
        }
        return result;
    }

    internal static bool SameShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    /// <summary>A shape as it appears in messages: (2, 3), (5,) for rank 1, () for a scalar.</summary>
    public static string Format(ReadOnlySpan<int> shape)
    {
        var sb = new StringBuilder("(");
        for (int i = 0; i < shape.Length; i++) { if (i > 0) sb.Append(", "); sb.Append(shape[i]); }
        if (shape.Length == 1) sb.Append(',');
        return sb.Append(')').ToString();
    }
}
