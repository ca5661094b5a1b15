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
        if (!(lr >= 0)) throw new ArgumentOutOfRangeException(nameof(lr), lr, $"lr must be non-negative; got {lr}.");
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, $"beta1 must be in [0, 1); got {beta1}.");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, $"beta2 must be in [0, 1); got {beta2}.");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"eps must be non-negative; got {eps}.");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, $"weightDecay must be non-negative; got {weightDecay}.");
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, $"step is 1-based; got {step}.");
        if (param.Count == 0) return;
        // Scalars in double as Python computes them, then rounded once, as the CPU kernel does.
        double biasCorrection1 = 1 - Math.Pow(beta1, step), biasCorrection2 = 1 - Math.Pow(beta2, step);
        _step(_device.ElementLaunch(param.Count), new AdamWArgs
        {
            P = param.View, G = grad.View, M = m.View, V = v.View, Count = param.Count,
            Decay = (float)(1 - (double)lr * weightDecay),
            Beta1 = beta1, OneMinusBeta1 = (float)(1 - (double)beta1),
            Beta2 = beta2, OneMinusBeta2 = (float)(1 - (double)beta2),
            StepSize = (float)(lr / biasCorrection1),
            BiasCorrection2Sqrt = (float)Math.Sqrt(biasCorrection2),
            Eps = eps, GradScale = gradScale,
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
