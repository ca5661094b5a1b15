// Reference twin of Kernels.ColumnSum.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain column sums, column by column.</summary>
public static class ColumnSum
{
    public static void Accumulate(Span<float> sums, ReadOnlySpan<float> x, int rows)
    {
        int cols = sums.Length;
        Guard.Matrix(nameof(x), x.Length, rows, cols, nameof(rows), "sums.Length");
        // sums[c] += Σ_r x[r, c]
        for (int c = 0; c < cols; c++)
        {
            float s = 0f;
            for (int r = 0; r < rows; r++) s += x[r * cols + c];
            sums[c] += s;
        }
    }
}
