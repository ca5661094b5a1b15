namespace AttentionSharp.Gpu;

/// <summary>Which set of tile and group sizes a device's kernels are compiled with.</summary>
public enum GpuKernelShapes
{
    /// <summary>
    /// The shapes meant for a CUDA GPU: 64×64×16 GEMM tiles over 256 threads, FlashAttention tiles of 32 queries × 16
    /// keys (16 × 16 backward) over 128 threads, 256 threads per row. Always used on CUDA.
    /// </summary>
    Cuda,

    /// <summary>
    /// Small tiles over 16 threads per group, for ILGPU's CPU accelerator: it runs every thread of a group as an OS
    /// thread, so a barrier costs a context switch per thread, and small groups keep simulated kernels fast.
    /// </summary>
    Small,
}

/// <summary>
/// The compile-time sizes of the tiled kernels. Kernels are generic over an implementation so that shared-memory
/// extents and per-thread register tiles are constants when ILGPU compiles them (PTX needs constant shared memory).
/// </summary>
internal interface IKernelShapes
{
    /// <summary>Rows of C per GEMM group (a multiple of 4: each thread owns a 4×4 register tile).</summary>
    static abstract int GemmTileM { get; }

    /// <summary>Columns of C per GEMM group (a multiple of 4).</summary>
    static abstract int GemmTileN { get; }

    /// <summary>Depth of one GEMM step through shared memory.</summary>
    static abstract int GemmTileK { get; }

    /// <summary>Threads of a row kernel's group (a power of two): one group reduces one row.</summary>
    static abstract int RowThreads { get; }

    /// <summary>Threads of an element-wise kernel's group (grid-stride loops).</summary>
    static abstract int ElementThreads { get; }

    /// <summary>Query rows per forward attention group (Br).</summary>
    static abstract int ForwardQueryTile { get; }

    /// <summary>Keys per forward attention step (Bc).</summary>
    static abstract int ForwardKeyTile { get; }

    /// <summary>Keys per backward attention group.</summary>
    static abstract int BackwardKeyTile { get; }

    /// <summary>Query rows per backward attention step.</summary>
    static abstract int BackwardQueryTile { get; }

    /// <summary>Threads of an attention group; divides the tile areas below so per-thread arrays have a fixed size.</summary>
    static abstract int AttentionThreads { get; }
}

/// <summary>
/// Tiles for a CUDA GPU. Static shared memory is limited to 48 KiB per group: the forward attention group holds
/// Q (32 × 128), K (16 × 129), V (16 × 128) and P (32 × 16) floats, about 35 KiB at HS = 128.
/// </summary>
internal readonly struct CudaShapes : IKernelShapes
{
    public static int GemmTileM => 64;
    public static int GemmTileN => 64;
    public static int GemmTileK => 16;
    public static int RowThreads => 256;
    public static int ElementThreads => 256;
    public static int ForwardQueryTile => 32;
    public static int ForwardKeyTile => 16;
    public static int BackwardKeyTile => 16;
    public static int BackwardQueryTile => 16;
    public static int AttentionThreads => 128;
}

/// <summary>Tiles for ILGPU's CPU accelerator: 16 threads per group everywhere.</summary>
internal readonly struct SmallShapes : IKernelShapes
{
    public static int GemmTileM => 16;
    public static int GemmTileN => 16;
    public static int GemmTileK => 8;
    public static int RowThreads => 16;
    public static int ElementThreads => 16;
    public static int ForwardQueryTile => 16;
    public static int ForwardKeyTile => 16;
    public static int BackwardKeyTile => 16;
    public static int BackwardQueryTile => 16;
    public static int AttentionThreads => 16;
}

/// <summary>Marks a kernel entry point, so a test can compile every kernel to PTX on a machine without a GPU.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class KernelAttribute : Attribute;
