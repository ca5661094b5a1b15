// Sources: Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)" (2016); the CPU engine's Kernels/Gelu.cs, whose
// forms (tanh form as x·σ(2u), the gradient's clamp) these follow line by line.
using AttentionSharp.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>GELU, element-wise, in both of PyTorch's forms (<see cref="GeluApproximation"/>).</summary>
public sealed class GpuGelu
{
    const float InvSqrt2 = 0.70710678118654752f;
    const float InvSqrt2Pi = 0.39894228040143268f;
    const float Sqrt2OverPi = 0.79788456080286536f;
    const float Cubic = 0.044715f;

    readonly GpuDevice _device;
    readonly Action<KernelConfig, GeluArgs> _forward, _backward;

    internal GpuGelu(GpuDevice device)
    {
        _device = device;
        _forward = device.Load<GeluArgs>(ForwardKernel, ForwardKernel);
        _backward = device.Load<GeluArgs>(BackwardKernel, BackwardKernel);
    }

    /// <summary>y = GELU(x).</summary>
    public void Forward(GpuTensor y, GpuTensor x, GeluApproximation approximation)
    {
        Check.Count(_device, y, x.Count, nameof(y), "x.Count");
        if (x.Count == 0) return;
        // Dy is unused here; every view a kernel receives is a real one (a default view has no buffer to pass).
        var args = new GeluArgs { Out = y.View, Dy = x.View, X = x.View, Count = x.Count, Tanh = Form(approximation) };
        _forward(_device.ElementLaunch(x.Count), args);
    }

    /// <summary>dx += dy·GELU′(x).</summary>
    public void Backward(GpuTensor dx, GpuTensor dy, GpuTensor x, GeluApproximation approximation)
    {
        Check.Count(_device, dx, x.Count, nameof(dx), "x.Count");
        Check.Count(_device, dy, x.Count, nameof(dy), "x.Count");
        if (x.Count == 0) return;
        var args = new GeluArgs { Out = dx.View, Dy = dy.View, X = x.View, Count = x.Count, Tanh = Form(approximation) };
        _backward(_device.ElementLaunch(x.Count), args);
    }

    static int Form(GeluApproximation approximation) => approximation switch
    {
        GeluApproximation.None => 0,
        GeluApproximation.Tanh => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(approximation), approximation, $"approximation must be None " +
            $"or Tanh; got {approximation}."),
    };

    [Kernel]
    static void ForwardKernel(GeluArgs p)
    {
        for (int i = GpuMath.GridFirst; i < p.Count; i += GpuMath.GridStride)
        {
            float x = p.X[i];
            // tanh form: y = ½x(1 + tanh u) = x / (1 + e^(−2u)); erf form: y = x·Φ(x) = ½x·erfc(−x/√2)
            p.Out[i] = p.Tanh != 0
                ? x / (1f + MathF.Exp(-TwoU(x, x * x)))
                : x * (0.5f * GpuMath.Erfc(-x * InvSqrt2));
        }
    }

    [Kernel]
    static void BackwardKernel(GeluArgs p)
    {
        for (int i = GpuMath.GridFirst; i < p.Count; i += GpuMath.GridStride)
        {
            float x = p.X[i], dy = p.Dy[i], grad;
            if (p.Tanh != 0)
            {
                // dy·(s + x·s(1 − s)·2u′), s = σ(2u), 1 − s = e·s, e = e^(−2u); x within [−9, 20] as on the CPU
                x = MathF.Min(MathF.Max(x, -9f), 20f);
                float x2 = x * x;
                float e = MathF.Exp(-TwoU(x, x2));
                float sig = 1f / (1f + e);
                float du2 = 2f * Sqrt2OverPi * GpuMath.Fma(3f * Cubic, x2, 1f);
                grad = GpuMath.Fma(x * sig * (e * sig), du2, sig);
            }
            else
            {
                // Φ(x) + x·φ(x), Φ(x) = ½·erfc(−x/√2), φ(x) = e^(−x²/2)/√(2π)
                float cdf = 0.5f * GpuMath.Erfc(-x * InvSqrt2);
                float pdf = InvSqrt2Pi * MathF.Exp(-0.5f * x * x);
                grad = GpuMath.Fma(x, pdf, cdf);
            }
            p.Out[i] += dy * grad;
        }
    }

    /// <summary>2u = 2√(2/π)(x + 0.044715x³).</summary>
    static float TwoU(float x, float x2) => 2f * Sqrt2OverPi * GpuMath.Fma(Cubic * x2, x, x);
}

internal struct GeluArgs
{
    public ArrayView<float> Out, Dy, X;
    public int Count, Tanh;
}
