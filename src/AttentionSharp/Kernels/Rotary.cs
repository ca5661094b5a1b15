// Source: Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding" (2021), eq. 34, in the half-split
// layout of GPT-NeoX and LLaMA (rotate_half), which pairs element i with element i + d/2.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// Rotary position embedding over rows of heads, in one pass. x is (rows, width): row r holds the token at position
/// p(r) = r mod T (its index in its sequence; the tables start where the caller's positions start), and its first
/// <c>heads</c> heads of HS = d floats are rotated, pair (x_i, x_{i+d/2}) by the angle whose cosine and sine are
/// cos[p, i] and sin[p, i] (tables of T rows of d/2); the columns after them pass through unchanged. The same layout
/// serves a packed [Q K V] projection (the query and key heads rotated, the values passed) and heads already split.
/// </summary>
public static unsafe class Rotary
{
    /// <summary>
    /// y = RoPE(x): y_i = x_i·c − x_{i+d/2}·s and y_{i+d/2} = x_{i+d/2}·c + x_i·s for i &lt; d/2, each product rounded
    /// before the sum (as x·cos + rotate_half(x)·sin computes it), for the first <paramref name="heads"/> heads of each
    /// row; y = x after them.
    /// </summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int rows, int width, int heads, int headSize,
        int t, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        Check(y.Length, x.Length, rows, width, heads, headSize, t, cos.Length, sin.Length);
        fixed (float* py = y)
        fixed (float* px = x)
        fixed (float* pc = cos)
        fixed (float* ps = sin)
            Work.Rows(rows, width, new ForwardKernel(py, px, pc, ps, width, heads, headSize / 2, t));
    }

    /// <summary>
    /// The backward pass, the inverse rotation of dy: dx_i (+)= dy_i·c + dy_{i+d/2}·s and
    /// dx_{i+d/2} (+)= dy_{i+d/2}·c − dy_i·s on the rotated heads, dx (+)= dy after them; adds to dx when
    /// <paramref name="accumulate"/>, else overwrites it.
    /// </summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, int rows, int width, int heads, int headSize,
        int t, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool accumulate)
    {
        Check(dx.Length, dy.Length, rows, width, heads, headSize, t, cos.Length, sin.Length);
        fixed (float* pdx = dx)
        fixed (float* pdy = dy)
        fixed (float* pc = cos)
        fixed (float* ps = sin)
            Work.Rows(rows, width, new BackwardKernel(pdx, pdy, pc, ps, width, heads, headSize / 2, t, accumulate));
    }

    /// <summary>Copies the columns after the rotated heads.</summary>
    static void PassThrough(float* from, float* to, int count) =>
        new ReadOnlySpan<float>(from, count).CopyTo(new Span<float>(to, count));

    static void Check(int yLength, int xLength, int rows, int width, int heads, int headSize, int t, int cosLength,
        int sinLength)
    {
        if (headSize <= 0 || headSize % 2 != 0)
            throw new ArgumentException(
                $"Rotary embedding rotates pairs, so the head size must be positive and even; got {headSize}.");
        if (rows < 0 || t < 0 || heads < 0 || (long)heads * headSize > width)
            throw new ArgumentException(
                $"Rotary embedding needs rows ≥ 0, T ≥ 0 and heads·HS ≤ width; got rows {rows}, T {t}, heads {heads}, " +
                $"HS {headSize}, width {width}.");
        if (t == 0 ? rows != 0 : rows % t != 0)
            throw new ArgumentException($"Rotary embedding needs whole sequences: {rows} rows is not a multiple of T = {t}.");
        Guard.Matrix("x", xLength, rows, width, "rows", "width");
        Guard.SameLength("y", yLength, xLength, "x");
        Guard.Matrix("cos", cosLength, t, headSize / 2, "T", "HS/2");
        Guard.SameLength("sin", sinLength, cosLength, "cos");
    }

    readonly struct ForwardKernel(float* y, float* x, float* cos, float* sin, int width, int heads, int half, int t)
        : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int rotated = heads * 2 * half;
            for (int r = start; r < end; r++)
            {
                float* c = cos + (long)(r % t) * half, s = sin + (long)(r % t) * half;
                float* xr = x + (long)r * width, yr = y + (long)r * width;
                for (int h = 0; h < heads; h++)
                {
                    float* a = xr + h * 2 * half, ya = yr + h * 2 * half;
                    int i = 0;
                    for (; i <= half - T.Count; i += T.Count) Step<T>(a, ya, c, s, i, half);
                    for (; i < half; i++) Step<Vec1>(a, ya, c, s, i, half);
                }
                if (xr != yr) PassThrough(xr + rotated, yr + rotated, width - rotated);  // a packed [Q K V]'s values
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Step<T>(float* a, float* y, float* c, float* s, int i, int half) where T : unmanaged, ISimd<T>
        {
            T x1 = T.Load(in a[i]), x2 = T.Load(in a[i + half]), vc = T.Load(in c[i]), vs = T.Load(in s[i]);
            // y_i = x_i·c − x_{i+d/2}·s;  y_{i+d/2} = x_{i+d/2}·c + x_i·s
            T.Store(x1 * vc - x2 * vs, ref y[i]);
            T.Store(x2 * vc + x1 * vs, ref y[i + half]);
        }
    }

    readonly struct BackwardKernel(float* dx, float* dy, float* cos, float* sin, int width, int heads, int half, int t,
        bool accumulate) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int rotated = heads * 2 * half;
            for (int r = start; r < end; r++)
            {
                float* c = cos + (long)(r % t) * half, s = sin + (long)(r % t) * half;
                float* gr = dy + (long)r * width, dr = dx + (long)r * width;
                for (int h = 0; h < heads; h++)
                {
                    float* g = gr + h * 2 * half, d = dr + h * 2 * half;
                    int i = 0;
                    for (; i <= half - T.Count; i += T.Count) Step<T>(g, d, c, s, i, half, accumulate);
                    for (; i < half; i++) Step<Vec1>(g, d, c, s, i, half, accumulate);
                }
                if (!accumulate) PassThrough(gr + rotated, dr + rotated, width - rotated);
                else
                {
                    int j = rotated;
                    for (; j <= width - T.Count; j += T.Count) T.Store(T.Load(in dr[j]) + T.Load(in gr[j]), ref dr[j]);
                    for (; j < width; j++) dr[j] += gr[j];
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Step<T>(float* g, float* d, float* c, float* s, int i, int half, bool accumulate)
            where T : unmanaged, ISimd<T>
        {
            T g1 = T.Load(in g[i]), g2 = T.Load(in g[i + half]), vc = T.Load(in c[i]), vs = T.Load(in s[i]);
            // dx_i = dy_i·c + dy_{i+d/2}·s;  dx_{i+d/2} = dy_{i+d/2}·c − dy_i·s
            T d1 = g1 * vc + g2 * vs, d2 = g2 * vc - g1 * vs;
            if (accumulate) { d1 += T.Load(in d[i]); d2 += T.Load(in d[i + half]); }
            T.Store(d1, ref d[i]);
            T.Store(d2, ref d[i + half]);
        }
    }
}
