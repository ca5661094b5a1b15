using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// Rotary position embedding over rows of heads, as the CPU engine's Kernels.Rotary: row r holds position r mod T,
/// its first <c>heads</c> heads of HS floats are rotated pair (x_i, x_{i+HS/2}) by the angle of cos[p, i], sin[p, i]
/// (tables of T rows of HS/2), the columns after them pass through. The backward pass is the inverse rotation.
/// </summary>
public sealed class GpuRotary
{
    readonly GpuDevice _device;
    readonly Action<KernelConfig, RotaryArgs> _forward, _backward;

    internal GpuRotary(GpuDevice device)
    {
        _device = device;
        _forward = device.Load<RotaryArgs>(ForwardKernel, ForwardKernel);
        _backward = device.Load<RotaryArgs>(BackwardKernel, BackwardKernel);
    }

    /// <summary>y = RoPE(x) on rows × width.</summary>
    public void Forward(GpuTensor y, GpuTensor x, int rows, int width, int heads, int headSize, int time, GpuTensor cos,
        GpuTensor sin) => Launch(_forward, y, x, rows, width, heads, headSize, time, cos, sin);

    /// <summary>dx += the inverse rotation of dy.</summary>
    public void Backward(GpuTensor dx, GpuTensor dy, int rows, int width, int heads, int headSize, int time, GpuTensor cos,
        GpuTensor sin) => Launch(_backward, dx, dy, rows, width, heads, headSize, time, cos, sin);

    void Launch(Action<KernelConfig, RotaryArgs> kernel, GpuTensor output, GpuTensor input, int rows, int width, int heads,
        int headSize, int time, GpuTensor cos, GpuTensor sin)
    {
        if (headSize <= 0 || headSize % 2 != 0)
            throw new ArgumentException($"Rotary embedding rotates pairs, so the head size must be positive and even; got " +
                $"{headSize}.");
        if (rows < 0 || time <= 0 || rows % time != 0 || heads < 0 || (long)heads * headSize > width)
            throw new ArgumentException($"Rotary embedding needs whole sequences and heads·HS ≤ width; got rows {rows}, " +
                $"T {time}, heads {heads}, HS {headSize}, width {width}.");
        long count = (long)rows * width;
        Check.Count(_device, output, count, nameof(output), "rows × width");
        Check.Count(_device, input, count, nameof(input), "rows × width");
        Check.Count(_device, cos, (long)time * (headSize / 2), nameof(cos), "T × HS/2");
        Check.Count(_device, sin, (long)time * (headSize / 2), nameof(sin), "T × HS/2");
        if (count == 0) return;
        kernel(_device.ElementLaunch(count), new RotaryArgs
        {
            Out = output.View, In = input.View, Cos = cos.View, Sin = sin.View, Count = (int)count, Width = width,
            Rotated = heads * headSize, Half = headSize / 2, Time = time,
        });
    }

    /// <summary>Where element e's pair partner and angle lie: its column in the head, the angle's index, and the sign.</summary>
    static (int Partner, int Angle, bool Low) Pair(in RotaryArgs a, int e)
    {
        int r = e / a.Width, col = e - r * a.Width, hs = 2 * a.Half, i = col % hs;
        bool low = i < a.Half;
        int angle = (r % a.Time) * a.Half + (low ? i : i - a.Half);
        return (low ? e + a.Half : e - a.Half, angle, low);
    }

    [Kernel]
    static void ForwardKernel(RotaryArgs a)
    {
        for (int e = GpuMath.GridFirst; e < a.Count; e += GpuMath.GridStride)
        {
            if (e % a.Width >= a.Rotated) { a.Out[e] = a.In[e]; continue; }
            var (partner, angle, low) = Pair(a, e);
            float c = a.Cos[angle], s = a.Sin[angle];
            // y_i = x_i·c − x_{i+d/2}·s, y_{i+d/2} = x_{i+d/2}·c + x_i·s
            a.Out[e] = low ? a.In[e] * c - a.In[partner] * s : a.In[e] * c + a.In[partner] * s;
        }
    }

    [Kernel]
    static void BackwardKernel(RotaryArgs a)
    {
        for (int e = GpuMath.GridFirst; e < a.Count; e += GpuMath.GridStride)
        {
            if (e % a.Width >= a.Rotated) { a.Out[e] += a.In[e]; continue; }
            var (partner, angle, low) = Pair(a, e);
            float c = a.Cos[angle], s = a.Sin[angle];
            // dx_i = dy_i·c + dy_{i+d/2}·s, dx_{i+d/2} = dy_{i+d/2}·c − dy_i·s
            a.Out[e] += low ? a.In[e] * c + a.In[partner] * s : a.In[e] * c - a.In[partner] * s;
        }
    }
}

internal struct RotaryArgs
{
    public ArrayView<float> Out, In, Cos, Sin;
    public int Count, Width, Rotated, Half, Time;
}
