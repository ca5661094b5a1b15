using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace AttentionSharp.Gpu;

/// <summary>What runs a <see cref="GpuDevice"/>'s kernels.</summary>
public enum GpuDeviceKind
{
    /// <summary>An NVIDIA GPU through the CUDA driver.</summary>
    Cuda,

    /// <summary>ILGPU's CPU accelerator: the same kernels run as .NET code, one OS thread per simulated GPU thread.</summary>
    CpuSimulator,
}

/// <summary>
/// One accelerator and its ILGPU context: the device that <see cref="GpuTensor"/>s live on and the kernels run on. The
/// kernel families (<see cref="Gemm"/>, <see cref="FlashAttention"/>, …) are compiled on first use. Kernel launches are
/// queued on the accelerator's default stream in order; downloads wait for them.
/// </summary>
public sealed class GpuDevice : Device, IDisposable
{
    /// <summary>FP32 lanes per multiprocessor assumed by <see cref="PeakGflops"/>.</summary>
    public const int Fp32LanesPerMultiprocessor = 128;

    readonly Context _context;
    GpuGemm? _gemm;
    GpuLayerNorm? _layerNorm;
    GpuGelu? _gelu;
    GpuSoftmax? _softmax;
    GpuCrossEntropy? _crossEntropy;
    GpuEmbedding? _embedding;
    GpuAdamW? _adamW;
    GpuReduce? _reduce;
    GpuFlashAttention? _flashAttention;
    GpuAdd? _add;
    GpuRecurrent? _recurrent;
    GpuBackend? _backend;
    GpuStrided? _strided;
    GpuDropout? _dropout;
    GpuRotary? _rotary;

    GpuDevice(Context context, Accelerator accelerator, GpuDeviceKind kind, GpuKernelShapes shapes, int? clockRateMHz)
    {
        _context = context;
        Accelerator = accelerator;
        Kind = kind;
        Shapes = shapes;
        ClockRateMHz = clockRateMHz;
    }

    /// <summary>
    /// Opens CUDA device <paramref name="index"/> (the first by default). Throws <see cref="GpuUnavailableException"/>
    /// with one sentence saying why when there is no NVIDIA driver, no CUDA device, or the device cannot be opened.
    /// </summary>
    public static GpuDevice Cuda(int index = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        var context = CudaContext();
        try
        {
            var devices = context.GetCudaDevices();
            if (devices.Count == 0) throw new GpuUnavailableException(NoDevice());
            if (index >= devices.Count)
                throw new GpuUnavailableException($"CUDA device {index} does not exist: the driver reports {devices.Count}.");
            var device = devices[index];
            Accelerator accelerator;
            try
            {
                accelerator = device.CreateAccelerator(context);
            }
            catch (Exception e) when (e is not GpuUnavailableException)
            {
                throw new GpuUnavailableException($"The CUDA device {device.Name} could not be opened: " +
                    $"{e.Message.TrimEnd('.')}.", e);
            }
            int? clock = device.ClockRate > 0 ? device.ClockRate : null;
            return new GpuDevice(context, accelerator, GpuDeviceKind.Cuda, GpuKernelShapes.Cuda, clock);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Null when a CUDA device can be listed, else the one sentence <see cref="Cuda"/> would throw (no NVIDIA driver,
    /// or no device); opens no accelerator.
    /// </summary>
    public static string? CudaUnavailableReason()
    {
        using var context = CudaContext();
        return context.GetCudaDevices().Count > 0 ? null : NoDevice();
    }

    static Context CudaContext() => Context.Create(builder => builder.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));

    static string NoDevice() => CudaAPI.CurrentAPI?.IsSupported == true
        ? "No CUDA device was found: the NVIDIA driver is loaded but reports no GPU."
        : "No NVIDIA driver was found (the CUDA driver library could not be loaded), so there is no CUDA device.";

    /// <summary>
    /// Opens ILGPU's CPU accelerator, which runs the GPU kernels as .NET code: for tests and machines without a GPU.
    /// <see cref="GpuKernelShapes.Small"/> (the default) runs groups of 16 threads, two at a time;
    /// <see cref="GpuKernelShapes.Cuda"/> runs the CUDA tile shapes (groups of up to 256 threads, far slower here) so
    /// that exactly the code a GPU runs can be checked without one.
    /// </summary>
    public static GpuDevice CpuSimulator(GpuKernelShapes shapes = GpuKernelShapes.Small)
    {
        // One warp per group for the small shapes (ILGPU's group reductions then need no cross-warp step); warps of 32
        // as on NVIDIA hardware for the CUDA shapes.
        var cpu = shapes == GpuKernelShapes.Small
            ? new CPUDevice(numThreadsPerWarp: 16, numWarpsPerMultiprocessor: 1, numMultiprocessors: 2)
            : new CPUDevice(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 8, numMultiprocessors: 1);
        var context = Context.Create(builder => builder.CPU(cpu).EnableAlgorithms());
        try
        {
            var accelerator = cpu.CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel);
            return new GpuDevice(context, accelerator, GpuDeviceKind.CpuSimulator, shapes, null);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    internal Accelerator Accelerator { get; }

    /// <summary>The accelerator's name as the driver reports it.</summary>
    public override string Name => Accelerator.Name;

    /// <summary>
    /// Memory and kernels for <see cref="Tensor"/>s moved here (<see cref="Tensor.To"/>, <see cref="Nn.Module.To"/>).
    /// </summary>
    internal override DeviceBackend Backend => _backend ??= new GpuBackend(this);

    public GpuDeviceKind Kind { get; }

    /// <summary>The tile shapes the kernels are compiled with.</summary>
    public GpuKernelShapes Shapes { get; }

    /// <summary>Streaming multiprocessors (CUDA) or simulated multiprocessors (CPU).</summary>
    public int Multiprocessors => Accelerator.NumMultiprocessors;

    /// <summary>The SM clock in MHz as the driver reports it; null when unknown (the CPU simulator).</summary>
    public int? ClockRateMHz { get; }

    /// <summary>Device memory in bytes.</summary>
    public long MemoryBytes => Accelerator.MemorySize;

    /// <summary>
    /// The FP32 peak in GFLOP/s, derived as multiprocessors × clock × 128 FP32 lanes × 2 (one fused multiply-add is two
    /// FLOPs per lane per cycle). 128 lanes per SM holds for Ampere GA10x, Ada and Hopper; an A100 (64 lanes per SM) is
    /// overstated twofold, and a boost clock above the reported one is not counted. Null when the clock is unknown.
    /// </summary>
    public double? PeakGflops => ClockRateMHz is { } mhz
        ? (double)Multiprocessors * mhz * Fp32LanesPerMultiprocessor * 2 / 1000
        : null;

    /// <summary>SGEMM, batched and transposed.</summary>
    public GpuGemm Gemm => _gemm ??= new GpuGemm(this);

    public GpuLayerNorm LayerNorm => _layerNorm ??= new GpuLayerNorm(this);

    public GpuGelu Gelu => _gelu ??= new GpuGelu(this);

    public GpuSoftmax Softmax => _softmax ??= new GpuSoftmax(this);

    public GpuCrossEntropy CrossEntropy => _crossEntropy ??= new GpuCrossEntropy(this);

    public GpuEmbedding Embedding => _embedding ??= new GpuEmbedding(this);

    public GpuAdamW AdamW => _adamW ??= new GpuAdamW(this);

    /// <summary>Sums of squares, column sums, scaling.</summary>
    public GpuReduce Reduce => _reduce ??= new GpuReduce(this);

    public GpuFlashAttention FlashAttention => _flashAttention ??= new GpuFlashAttention(this);

    /// <summary>Residual sums and row-broadcast additions (positions).</summary>
    public GpuAdd Add => _add ??= new GpuAdd(this);

    /// <summary>Rotary position embedding over rows of heads.</summary>
    public GpuRotary Rotary => _rotary ??= new GpuRotary(this);

    /// <summary>Inverted dropout with the CPU engine's mask.</summary>
    public GpuDropout Dropout => _dropout ??= new GpuDropout(this);

    /// <summary>Copies between strided views and dense elements.</summary>
    public GpuStrided Strided => _strided ??= new GpuStrided(this);

    /// <summary>Recurrent layers (tanh RNN, LSTM, GRU) forward and backward through time.</summary>
    public GpuRecurrent Recurrent => _recurrent ??= new GpuRecurrent(this);

    /// <summary>A zero-filled tensor on this device.</summary>
    public GpuTensor Zeros(params ReadOnlySpan<int> shape) => GpuTensor.Zeros(this, shape);

    /// <summary>A copy of <paramref name="tensor"/> (any layout) on this device, with its shape.</summary>
    public GpuTensor Upload(Tensor tensor) => GpuTensor.FromTensor(this, tensor);

    /// <summary>A copy of <paramref name="data"/> on this device with the given shape (default: one dimension).</summary>
    public GpuTensor Upload(ReadOnlySpan<float> data, params ReadOnlySpan<int> shape) => GpuTensor.FromSpan(this, data, shape);

    /// <summary>Integers (token ids, targets) on this device.</summary>
    public GpuIntBuffer Upload(ReadOnlySpan<int> data) => new(this, data);

    /// <summary>Flags (e.g. key padding) on this device, as 1 for true and 0 for false.</summary>
    public GpuIntBuffer Upload(ReadOnlySpan<bool> flags)
    {
        var values = new int[flags.Length];
        for (int i = 0; i < flags.Length; i++) values[i] = flags[i] ? 1 : 0;
        return new GpuIntBuffer(this, values);
    }

    /// <summary>Waits until every queued kernel has finished.</summary>
    public void Synchronize() => Accelerator.Synchronize();

    /// <summary>Compiles (on first use) the kernel compiled with this device's <see cref="Shapes"/>.</summary>
    internal Action<KernelConfig, TArgs> Load<TArgs>(Action<TArgs> cuda, Action<TArgs> small) where TArgs : struct =>
        Accelerator.LoadStreamKernel(Shapes == GpuKernelShapes.Cuda ? cuda : small);

    /// <summary>Groups of a one-group-per-row kernel.</summary>
    internal int RowThreads => Shapes == GpuKernelShapes.Cuda ? CudaShapes.RowThreads : SmallShapes.RowThreads;

    /// <summary>A launch of a grid-stride element-wise kernel over <paramref name="count"/> elements.</summary>
    internal KernelConfig ElementLaunch(long count)
    {
        int threads = Shapes == GpuKernelShapes.Cuda ? CudaShapes.ElementThreads : SmallShapes.ElementThreads;
        // Enough groups to fill every multiprocessor several times over; the loop inside covers the rest.
        long wanted = (count + threads - 1) / threads;
        int groups = (int)Math.Clamp(wanted, 1, Multiprocessors * 16L);
        return new KernelConfig(groups, threads);
    }

    /// <summary>A launch of one group per row.</summary>
    internal KernelConfig RowLaunch(int rows) => new(Math.Max(rows, 1), RowThreads);

    public override string ToString()
    {
        var peak = PeakGflops is { } p ? $", FP32 peak ≈ {p / 1000:F1} TFLOP/s" : "";
        var clock = ClockRateMHz is { } c ? $", {c} MHz" : "";
        return $"{Name} ({Kind}, {Multiprocessors} multiprocessors{clock}{peak})";
    }

    public void Dispose()
    {
        _backend?.Dispose();
        _flashAttention?.Dispose();
        Accelerator.Dispose();
        _context.Dispose();
    }
}
