namespace AttentionSharp.Kernels.Simd;

/// <summary>A row-wise forward kernel y = f(x) over rows × cols, built from pinned pointers.</summary>
internal unsafe interface IRowForward<TSelf> : IRangeKernel where TSelf : struct, IRowForward<TSelf>
{
    static abstract TSelf Create(float* y, float* x, int cols);
}

/// <summary>A row-wise backward kernel dx += g(dy, y) over rows × cols, built from pinned pointers.</summary>
internal unsafe interface IRowBackward<TSelf> : IRangeKernel where TSelf : struct, IRowBackward<TSelf>
{
    static abstract TSelf Create(float* dx, float* dy, float* y, int cols);
}

/// <summary>Validation, pinning and threading for row kernels shaped like softmax: (y, x) forward, (dx, dy, y) backward.</summary>
internal static unsafe class RowPass
{
    public static void Forward<TKernel>(Span<float> y, ReadOnlySpan<float> x, int rows, int cols) where TKernel : struct, IRowForward<TKernel>
    {
        Guard.RowForward(y.Length, x.Length, rows, cols);
        if (cols == 0) return;
        fixed (float* py = y)
        fixed (float* px = x)
            Work.Rows(rows, cols, TKernel.Create(py, px, cols));
    }

    public static void Backward<TKernel>(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, int rows, int cols)
        where TKernel : struct, IRowBackward<TKernel>
    {
        Guard.RowBackward(dx.Length, dy.Length, y.Length, rows, cols);
        if (cols == 0) return;
        fixed (float* pdx = dx)
        fixed (float* pdy = dy)
        fixed (float* py = y)
            Work.Rows(rows, cols, TKernel.Create(pdx, pdy, py, cols));
    }
}
