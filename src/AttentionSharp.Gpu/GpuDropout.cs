using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// Inverted dropout with the CPU engine's counter-based mask (Kernels.Dropout): element i is kept when the
/// SplitMix64 output (offset + i) of the seed says so, so the device drops exactly what the CPU drops and the backward
/// pass forms the mask again instead of keeping it.
/// </summary>
public sealed class GpuDropout
{
    readonly GpuDevice _device;
    readonly Action<KernelConfig, DropoutArgs> _forward, _backward;

    internal GpuDropout(GpuDevice device)
    {
        _device = device;
        _forward = device.Load<DropoutArgs>(ForwardKernel, ForwardKernel);
        _backward = device.Load<DropoutArgs>(BackwardKernel, BackwardKernel);
    }

    /// <summary>y = x·mask/(1 − p).</summary>
    public void Forward(GpuTensor y, GpuTensor x, float p, ulong seed, ulong offset) =>
        Launch(_forward, y, x, x.Count, p, seed, offset);

    /// <summary>dx += dy·mask/(1 − p).</summary>
    public void Backward(GpuTensor dx, GpuTensor dy, float p, ulong seed, ulong offset) =>
        Launch(_backward, dx, dy, dy.Count, p, seed, offset);

    void Launch(Action<KernelConfig, DropoutArgs> kernel, GpuTensor output, GpuTensor input, int count, float p, ulong seed,
        ulong offset)
    {
        AttentionSharp.Kernels.Dropout.CheckProbability(p);
        Check.Count(_device, output, count, nameof(output), "the input's count");
        Check.Count(_device, input, count, nameof(input), "its count");
        if (count == 0) return;
        kernel(_device.ElementLaunch(count),
            new DropoutArgs { Out = output.View, In = input.View, Count = count, P = p, Seed = seed, Offset = offset });
    }

    [Kernel]
    static void ForwardKernel(DropoutArgs a)
    {
        for (int i = GpuMath.GridFirst; i < a.Count; i += GpuMath.GridStride)
            a.Out[i] = a.In[i] * GpuMath.DropoutFactor(a.Seed, a.Offset + (ulong)i, a.P);
    }

    [Kernel]
    static void BackwardKernel(DropoutArgs a)
    {
        for (int i = GpuMath.GridFirst; i < a.Count; i += GpuMath.GridStride)
            a.Out[i] = GpuMath.Fma(a.In[i], GpuMath.DropoutFactor(a.Seed, a.Offset + (ulong)i, a.P), a.Out[i]);
    }
}

internal struct DropoutArgs
{
    public ArrayView<float> Out, In;
    public int Count;
    public float P;
    public ulong Seed, Offset;
}
