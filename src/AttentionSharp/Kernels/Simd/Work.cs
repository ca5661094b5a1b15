using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AttentionSharp.Kernels.Simd;

/// <summary>
/// A kernel body over a range [start, end) of rows or elements, written once for every register width.
/// Implementations are structs holding raw pointers to pinned spans, so they can cross into worker threads.
/// </summary>
/// <remarks>
/// Every implementation marks <c>Run</c> <c>NoInlining | AggressiveOptimization</c>: compiled once, fully optimised, on
/// its first call. Left to tiered compilation, a kernel's loop first runs as on-stack-replacement code, and the tier-1
/// code that replaces it can be shaped by a profile in which the loop looks cold, so the math in it is not inlined: a
/// kernel's speed then depends on its call history, several-fold within one process. NoInlining keeps the body out of
/// the tiered lambda that calls it. A test checks every implementation.
/// </remarks>
internal interface IRangeKernel
{
    void Run<T>(int start, int end) where T : unmanaged, ISimd<T>;
}

/// <summary>
/// Chooses the register width and splits work across threads. Invariant: how a row or an element is computed does not
/// depend on the split, so results are identical for every thread count.
/// </summary>
internal static class Work
{
    /// <summary>Work below this many floats stays on the calling thread: a fork costs more than it saves.</summary>
    public const int ParallelThreshold = Kernels.Parallel.SplitThreshold;

    /// <summary>Element kernels split at multiples of this, so vector tails only ever occur at the very end.</summary>
    const int ElementBlock = 64;

    /// <summary>Runs <paramref name="kernel"/> over rows [0, rows), each of <paramref name="cols"/> floats.</summary>
    public static void Rows<TKernel>(int rows, int cols, TKernel kernel) where TKernel : struct, IRangeKernel
    {
        if (OnOneThread(rows, cols))
        {
            Dispatch(ref kernel, 0, rows);
            return;
        }
        Kernels.Parallel.For(rows, RowGrain(cols), (start, end) => Dispatch(ref kernel, start, end));
    }

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over rows [0, rows), each of <paramref name="cols"/> floats, split as
    /// <see cref="Rows{TKernel}"/> splits them: for row loops that are not SIMD kernels (strided copies and sums).
    /// </summary>
    public static void Rows(int rows, int cols, Action<int, int> body)
    {
        if (OnOneThread(rows, cols)) body(0, rows);
        else Kernels.Parallel.For(rows, RowGrain(cols), body);
    }

    static bool OnOneThread(int rows, int cols) => (long)rows * cols < ParallelThreshold || rows < 2;

    static int RowGrain(int cols) => Math.Max(1, ParallelThreshold / Math.Max(1, cols));

    /// <summary>Runs <paramref name="kernel"/> over elements [0, count).</summary>
    public static void Elements<TKernel>(int count, TKernel kernel) where TKernel : struct, IRangeKernel
    {
        if (count < ParallelThreshold)
        {
            Dispatch(ref kernel, 0, count);
            return;
        }
        int blocks = (count + ElementBlock - 1) / ElementBlock;
        Kernels.Parallel.For(blocks, ParallelThreshold / ElementBlock,
            (start, end) => Dispatch(ref kernel, start * ElementBlock, Math.Min(count, end * ElementBlock)));
    }

    /// <summary>
    /// Runs <paramref name="kernel"/> over column ranges of a rows × cols matrix, for reductions over rows (weight
    /// gradients): each thread owns whole columns and adds rows in order, so no partial sums need combining.
    /// </summary>
    public static void Columns<TKernel>(int rows, int cols, TKernel kernel) where TKernel : struct, IRangeKernel
    {
        if ((long)rows * cols < ParallelThreshold || cols <= ElementBlock)
        {
            Dispatch(ref kernel, 0, cols);
            return;
        }
        int blocks = (cols + ElementBlock - 1) / ElementBlock;
        Kernels.Parallel.For(blocks, 1,
            (start, end) => Dispatch(ref kernel, start * ElementBlock, Math.Min(cols, end * ElementBlock)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Dispatch<TKernel>(ref TKernel kernel, int start, int end) where TKernel : struct, IRangeKernel
    {
        if (Vector512.IsHardwareAccelerated) kernel.Run<Vec512>(start, end);
        else if (Vector256.IsHardwareAccelerated) kernel.Run<Vec256>(start, end);
        else kernel.Run<Vec1>(start, end);
    }
}
