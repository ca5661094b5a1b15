// Reference twin of Kernels.Rotary: plain loops in double. Source: Su et al., "RoFormer" (2021), eq. 34, half-split layout.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain rotary position embedding over rows of heads (row r at position r mod T).</summary>
public static class Rotary
{
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int rows, int width, int heads, int headSize, int t,
        ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        Guard.Matrix(nameof(x), x.Length, rows, width, "rows", "width");
        Guard.SameLength(nameof(y), y.Length, x.Length, nameof(x));
        int half = headSize / 2;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < width; j++)
            {
                int head = j / headSize, i = j % headSize, pair = i % half, at = (r % t) * half + pair;
                if (head >= heads) { y[r * width + j] = x[r * width + j]; continue; }
                double c = cos[at], s = sin[at];
                double x1 = x[r * width + head * headSize + pair], x2 = x[r * width + head * headSize + half + pair];
                // y_i = x_i·c − x_{i+d/2}·s;  y_{i+d/2} = x_{i+d/2}·c + x_i·s
                y[r * width + j] = (float)(i < half ? x1 * c - x2 * s : x2 * c + x1 * s);
            }
    }

    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, int rows, int width, int heads, int headSize, int t,
        ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool accumulate)
    {
        Guard.Matrix(nameof(dy), dy.Length, rows, width, "rows", "width");
        Guard.SameLength(nameof(dx), dx.Length, dy.Length, nameof(dy));
        int half = headSize / 2;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < width; j++)
            {
                int head = j / headSize, i = j % headSize, pair = i % half, at = (r % t) * half + pair;
                double before = accumulate ? dx[r * width + j] : 0;
                if (head >= heads) { dx[r * width + j] = (float)(before + dy[r * width + j]); continue; }
                double c = cos[at], s = sin[at];
                double g1 = dy[r * width + head * headSize + pair], g2 = dy[r * width + head * headSize + half + pair];
                // the transposed rotation: dx_i = dy_i·c + dy_{i+d/2}·s;  dx_{i+d/2} = dy_{i+d/2}·c − dy_i·s
                dx[r * width + j] = (float)(before + (i < half ? g1 * c + g2 * s : g2 * c - g1 * s));
            }
    }
}
