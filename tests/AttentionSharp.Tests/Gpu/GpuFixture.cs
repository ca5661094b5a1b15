using AttentionSharp.Gpu;

namespace AttentionSharp.Tests.Gpu;

/// <summary>
/// One ILGPU CPU accelerator shared by every GPU kernel test (opening one compiles nothing, but each kernel family
/// compiles once per device). The tests of the collection run one after another: the simulator already runs one OS
/// thread per simulated GPU thread.
/// </summary>
public sealed class GpuFixture : IDisposable
{
    readonly Lazy<GpuDevice> _cudaShapes = new(() => GpuDevice.CpuSimulator(GpuKernelShapes.Cuda));

    /// <summary>The simulator with the small tile shapes (16 threads per group).</summary>
    public GpuDevice Simulator { get; } = GpuDevice.CpuSimulator();

    /// <summary>The simulator running the CUDA tile shapes, exactly the code a GPU runs (slow: keep shapes tiny).</summary>
    public GpuDevice CudaShapes => _cudaShapes.Value;

    public void Dispose()
    {
        Simulator.Dispose();
        if (_cudaShapes.IsValueCreated) _cudaShapes.Value.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class GpuCollection : ICollectionFixture<GpuFixture>
{
    public const string Name = "Gpu";
}

/// <summary>
/// A test that needs a CUDA GPU: it runs where one can be listed and is skipped, saying why, where none can — unless
/// ATTN_REQUIRE_CUDA=1 (a GPU machine's CI), where a missing GPU fails it.
/// </summary>
public sealed class CudaFactAttribute : FactAttribute
{
    static readonly Lazy<string?> Reason = new(GpuDevice.CudaUnavailableReason);

    public CudaFactAttribute()
    {
        if (Reason.Value is { } reason && Environment.GetEnvironmentVariable("ATTN_REQUIRE_CUDA") != "1")
            Skip = reason;
    }
}
