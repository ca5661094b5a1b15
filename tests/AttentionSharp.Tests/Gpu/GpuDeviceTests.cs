using System.Reflection;
using System.Text.RegularExpressions;
using AttentionSharp.Gpu;
using AttentionSharp.Kernels;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace AttentionSharp.Tests.Gpu;

/// <summary>The device, its tensors, the kernels' PTX, and the CUDA tile shapes run on the simulator.</summary>
[Collection(GpuCollection.Name)]
[Trait("Category", "Gpu")]
public partial class GpuDeviceTests(GpuFixture fixture)
{
    [Fact]
    public void TheSimulatorReportsItselfAndNoPeak()
    {
        var device = fixture.Simulator;
        Assert.Equal(GpuDeviceKind.CpuSimulator, device.Kind);
        Assert.Equal(GpuKernelShapes.Small, device.Shapes);
        Assert.Null(device.ClockRateMHz);
        Assert.Null(device.PeakGflops);
        Assert.True(device.Multiprocessors >= 1);
        Assert.Contains("CpuSimulator", device.ToString());
    }

    [Fact]
    public void CudaOpensAGpuOrSaysWhyNotInOneSentence()
    {
        if (GpuDevice.CudaUnavailableReason() is null)
        {
            using var gpu = GpuDevice.Cuda();
            Assert.Equal(GpuDeviceKind.Cuda, gpu.Kind);
            Assert.True(gpu.PeakGflops > 0, $"{gpu} reports no peak.");
            return;
        }
        var e = Assert.Throws<GpuUnavailableException>(() => GpuDevice.Cuda());
        Assert.EndsWith(".", e.Message);
        Assert.DoesNotContain(". ", e.Message.TrimEnd('.'));
        Assert.Equal(e.Message, GpuDevice.CudaUnavailableReason());
    }

    [Fact]
    public void TensorsRoundTripInRowMajorOrderWhateverTheHostLayout()
    {
        var host = Tensor.Arange(24).Reshape(2, 3, 4).Transpose(0, 2);     // a strided (4, 3, 2) view
        using var device = fixture.Simulator.Upload(host);
        Assert.Equal([4, 3, 2], device.Shape.ToArray());
        Assert.Equal(host.ToArray(), device.ToArray());
        var back = device.ToTensor();
        Assert.Equal([4, 3, 2], back.Shape.ToArray());
        Assert.Equal(host.ToArray(), back.ToArray());
        using var ids = fixture.Simulator.Upload([3, 1, 4]);
        Assert.Equal([3, 1, 4], ids.ToArray());
        using var empty = fixture.Simulator.Zeros(0, 5);
        Assert.Empty(empty.ToArray());
    }

    [Fact]
    public void KernelsRejectTensorsOfTheWrongSizeSayingWhatWasExpected()
    {
        using var x = fixture.Simulator.Zeros(3, 4);
        using var y = fixture.Simulator.Zeros(3, 5);
        var e = Assert.Throws<ArgumentException>(() => fixture.Simulator.Gelu.Forward(y, x, GeluApproximation.None));
        Assert.Contains("x.Count = 12", e.Message);
    }

    /// <summary>
    /// The simulator runs kernels as .NET code, so it cannot show that they compile for a GPU: here every kernel (with
    /// the CUDA tile shapes) is compiled to PTX for Hopper (SM 9.0) by ILGPU's PTX backend, which needs no driver, and
    /// its static shared memory checked against the 48 KiB a group may declare, and every call checked to resolve within
    /// the module.
    /// </summary>
    [Fact]
    public void EveryKernelCompilesToPtxWithinTheSharedMemoryLimit()
    {
        using var context = Context.Create(builder => builder.EnableAlgorithms().Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90,
            CudaInstructionSet.ISA_80, null);
        var kernels = typeof(GpuDevice).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            .Where(m => m.GetCustomAttribute<KernelAttribute>() is not null)
            .Select(m => m.IsGenericMethodDefinition ? m.MakeGenericMethod(typeof(CudaShapes)) : m)
            .ToList();
        Assert.True(kernels.Count >= 20, $"found only {kernels.Count} kernels");
        foreach (var kernel in kernels)
        {
            var entry = EntryPointDescription.FromExplicitlyGroupedKernel(kernel);
            var compiled = (PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty);
            string name = $"{kernel.DeclaringType!.Name}.{kernel.Name}";
            Assert.Contains(".entry", compiled.PTXAssembly);
            // An .extern function is a call ILGPU could not map to PTX (MathF.FusedMultiplyAdd was one): the module would
            // fail to load on the GPU.
            Assert.False(compiled.PTXAssembly.Contains(".extern", StringComparison.Ordinal),
                $"{name} calls a function PTX lacks");
            long shared = SharedDeclaration().Matches(compiled.PTXAssembly).Sum(m => long.Parse(m.Groups[1].Value));
            Assert.True(shared <= 48 * 1024, $"{name} declares {shared} bytes of shared memory");
        }
    }

    [GeneratedRegex(@"\.shared\s+\.align\s+\d+\s+\.b8\s+\w+\[(\d+)\]")]
    private static partial Regex SharedDeclaration();

    [Fact]
    public void TheCudaTileShapesMatchTheCpuOnTheSimulator()
    {
        // The exact code a GPU runs (64×64 GEMM tiles over 256 threads, 128-thread attention groups); the simulator
        // runs 128–256 OS threads per group here, so the shapes stay tiny.
        var device = fixture.CudaShapes;
        GpuChecks.Gemm(device, Transpose.No, Transpose.Yes, 37, 70, 29);
        GpuChecks.Gemm(device, Transpose.Yes, Transpose.No, 67, 13, 17, batch: 2, alpha: 2f, beta: 0.5f);
        GpuChecks.Attention(device, batch: 1, heads: 1, time: 33, headSize: 16, causal: true, padding: true);
        GpuChecks.LayerNorm(device, 3, 300, affine: true);
        GpuChecks.CrossEntropy(device, 3, 301, 0.1f);
        GpuChecks.Linear(device, 37, 29, 70, bias: true);
        GpuChecks.AddRows(device, 12, 300, 4);
    }

    /// <summary>The same comparisons on a real GPU, where there is one.</summary>
    [CudaFact]
    public void EveryKernelMatchesTheCpuOnTheGpu()
    {
        using var gpu = GpuDevice.Cuda();
        var forms = new[]
        {
            (Transpose.No, Transpose.No), (Transpose.No, Transpose.Yes), (Transpose.Yes, Transpose.No),
            (Transpose.Yes, Transpose.Yes),
        };
        foreach (var (ta, tb) in forms)
        {
            GpuChecks.Gemm(gpu, ta, tb, 37, 53, 29);
            GpuChecks.Gemm(gpu, ta, tb, 37, 53, 29, batch: 3, alpha: 0.5f, beta: -1.5f);
            GpuChecks.Gemm(gpu, ta, tb, 200, 330, 129);
        }
        foreach (int time in new[] { 1, 17, 65, 200 })
        {
            foreach (int headSize in new[] { 8, 16, 64, 128 })
            {
                GpuChecks.Attention(gpu, 2, 2, time, headSize, causal: true, padding: false);
                GpuChecks.Attention(gpu, 2, 2, time, headSize, causal: false, padding: true);
            }
        }
        GpuChecks.LayerNorm(gpu, 7, 37, affine: true);
        GpuChecks.LayerNorm(gpu, 70, 768, affine: false);
        GpuChecks.Gelu(gpu, GeluApproximation.None);
        GpuChecks.Gelu(gpu, GeluApproximation.Tanh);
        GpuChecks.Softmax(gpu, 4, 37);
        GpuChecks.CrossEntropy(gpu, 13, 53, 0f);
        GpuChecks.CrossEntropy(gpu, 64, 5000, 0.1f);
        GpuChecks.Embedding(gpu, 11, 7, 23);
        GpuChecks.AdamW(gpu, 100_003);
        GpuChecks.Reductions(gpu);
        GpuChecks.Linear(gpu, 200, 129, 330, bias: true);
        GpuChecks.AddRows(gpu, 1000, 77, 10);
    }
}
