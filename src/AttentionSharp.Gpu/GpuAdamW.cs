// Sources: Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (2019); Kingma & Ba, "Adam" (2015); the CPU
// engine's Kernels/AdamW.cs (PyTorch's order of operations, scalars in double rounded once), which this follows.
using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>One AdamW step over flat parameter, gradient and moment buffers, element-wise.</summary>
public sealed class GpuAdamW
{
    readonly GpuDevice _device;
    readonly Action<KernelConfig, AdamWArgs> _step;

    internal GpuAdamW(GpuDevice device)
    {
        _device = device;
        _step = device.Load<AdamWArgs>(StepKernel, StepKernel);
    }

    /// <summary>
    /// Updates <paramref name="param"/>, <paramref name="m"/> and <paramref name="v"/> in place for the 1-based
    /// <paramref name="step"/>: p ← p(1 − lr·wd); m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²;
    /// p ← p − (lr/(1 − β₁ᵗ))·m / (√v/√(1 − β₂ᵗ) + eps), where g = <paramref name="gradScale"/>·grad (the clipping
    /// coefficient folded in), exactly as the CPU engine's AdamW.
    /// </summary>
    public void Step(GpuTensor param, GpuTensor grad, GpuTensor m, GpuTensor v,
        float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale = 1f)
    {
        Check.AtLeast(_device, param, 0, nameof(param), "any");
        Check.Count(_device, grad, param.Count, nameof(grad), "param.Count");
        Check.Count(_device, m, param.Count, nameof(m), "param.Count");
        Check.Count(_device, v, param.Count, nameof(v), "param.Count");
        AttentionSharp.Kernels.AdamW.ValidateHyperparameters(lr, beta1, beta2, eps, weightDecay, step);
        var c = AttentionSharp.Kernels.AdamW.StepScalars.For(lr, beta1, beta2, eps, weightDecay, step, gradScale);
        if (param.Count == 0) return;
        _step(_device.ElementLaunch(param.Count), new AdamWArgs
        {
            P = param.View, G = grad.View, M = m.View, V = v.View, Count = param.Count,
            Decay = c.Decay, Beta1 = c.Beta1, OneMinusBeta1 = c.OneMinusBeta1, Beta2 = c.Beta2, OneMinusBeta2 = c.OneMinusBeta2,
            StepSize = c.StepSize, BiasCorrection2Sqrt = c.BiasCorrection2Sqrt, Eps = c.Eps, GradScale = c.GradScale,
        });
    }

    [Kernel]
    static void StepKernel(AdamWArgs c)
    {
        for (int i = GpuMath.GridFirst; i < c.Count; i += GpuMath.GridStride)
        {
            float g = c.G[i] * c.GradScale;
            // p ← p·(1 − lr·wd)
            float p = c.P[i] * c.Decay;
            // m ← β₁m + (1 − β₁)g
            float m = GpuMath.Fma(g, c.OneMinusBeta1, c.M[i] * c.Beta1);
            // v ← β₂v + (1 − β₂)g²
            float v = c.V[i] * c.Beta2 + c.OneMinusBeta2 * g * g;
            // p ← p − step_size·m / (√v/√(1 − β₂ᵗ) + eps), step_size = lr/(1 − β₁ᵗ)
            float denom = MathF.Sqrt(v) / c.BiasCorrection2Sqrt + c.Eps;
            c.P[i] = p - c.StepSize * m / denom;
            c.M[i] = m;
            c.V[i] = v;
        }
    }
}

internal struct AdamWArgs
{
    public ArrayView<float> P, G, M, V;
    public int Count;
    public float Decay, Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, StepSize, BiasCorrection2Sqrt, Eps, GradScale;
}
