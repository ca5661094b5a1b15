// Sources: Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (2019); Kingma & Ba, "Adam" (2015);
// PyTorch torch.optim.AdamW (single-tensor path), whose order of operations this follows.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>One AdamW step over flat buffers, element-wise, with PyTorch's order of operations.</summary>
public static unsafe class AdamW
{
    /// <summary>
    /// Updates <paramref name="param"/>, <paramref name="m"/> and <paramref name="v"/> in place for the 1-based
    /// <paramref name="step"/>: p ← p(1 − lr·wd); m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²;
    /// p ← p − (lr/(1 − β₁ᵗ))·m / (√v/√(1 − β₂ᵗ) + eps), where g = <paramref name="gradScale"/>·grad
    /// (gradient clipping folded into the step: the same float product as scaling the gradient first, without a pass
    /// over it).
    /// </summary>
    public static void Step(Span<float> param, ReadOnlySpan<float> grad, Span<float> m, Span<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale = 1f)
    {
        Validate(param.Length, grad.Length, m.Length, v.Length, lr, beta1, beta2, eps, weightDecay, step);
        var c = StepScalars.For(lr, beta1, beta2, eps, weightDecay, step, gradScale);
        fixed (float* pp = param)
        fixed (float* pg = grad)
        fixed (float* pm = m)
        fixed (float* pv = v)
            Work.Elements(param.Length, new Kernel(pp, pg, pm, pv, c));
    }

    /// <summary>
    /// The step above on four dense tensors of one device: the spans on the CPU, the device's own kernel elsewhere.
    /// </summary>
    public static void Step(Tensor param, Tensor grad, Tensor m, Tensor v,
        float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale = 1f)
    {
        if (param.Device.IsCpu)
        {
            Step(param.Data, grad.Data, m.Data, v.Data, lr, beta1, beta2, eps, weightDecay, step, gradScale);
            return;
        }
        foreach (var t in (ReadOnlySpan<Tensor>)[grad, m, v])
            if (!ReferenceEquals(t.Device, param.Device))
                throw new InvalidOperationException($"AdamW: the parameter is on {param.Device.Name}, a gradient or " +
                    $"moment on {t.Device.Name}.");
        Validate(param.Count, grad.Count, m.Count, v.Count, lr, beta1, beta2, eps, weightDecay, step);
        Tensor.DeviceBackendOf(param).AdamW(Tensor.DenseOnDevice(param), Tensor.DenseOnDevice(grad), Tensor.DenseOnDevice(m),
            Tensor.DenseOnDevice(v), lr, beta1, beta2, eps, weightDecay, step, gradScale);
    }

    /// <summary>Hyper-parameter and length checks shared with the reference twin (PyTorch's own checks).</summary>
    internal static void Validate(int param, int grad, int m, int v,
        float lr, float beta1, float beta2, float eps, float weightDecay, int step)
    {
        Guard.SameLength(nameof(grad), grad, param, nameof(param));
        Guard.SameLength(nameof(m), m, param, nameof(param));
        Guard.SameLength(nameof(v), v, param, nameof(param));
        ValidateHyperparameters(lr, beta1, beta2, eps, weightDecay, step);
    }

    /// <summary>
    /// PyTorch's checks of AdamW's hyper-parameters and the 1-based step; every AdamW kernel (CPU or device) runs them.
    /// </summary>
    public static void ValidateHyperparameters(float lr, float beta1, float beta2, float eps, float weightDecay, int step)
    {
        if (!(lr >= 0)) throw new ArgumentOutOfRangeException(nameof(lr), lr, $"lr must be non-negative; got {lr}.");
        if (!(beta1 >= 0 && beta1 < 1))
            throw new ArgumentOutOfRangeException(nameof(beta1), beta1, $"beta1 must be in [0, 1); got {beta1}.");
        if (!(beta2 >= 0 && beta2 < 1))
            throw new ArgumentOutOfRangeException(nameof(beta2), beta2, $"beta2 must be in [0, 1); got {beta2}.");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"eps must be non-negative; got {eps}.");
        if (!(weightDecay >= 0))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay,
                $"weightDecay must be non-negative; got {weightDecay}.");
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, $"step is 1-based; got {step}.");
    }

    /// <summary>
    /// The scalars of one step, computed as PyTorch computes them: in double, as Python does, then rounded once to float,
    /// as torch passes them to its float kernels. The CPU kernel and the device kernels read the same values.
    /// </summary>
    public readonly record struct StepScalars(float Decay, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2,
        float StepSize, float BiasCorrection2Sqrt, float Eps, float GradScale)
    {
        /// <summary>
        /// The scalars of step <paramref name="step"/> (1-based), for hyper-parameters <see
        /// cref="ValidateHyperparameters"/> accepted.
        /// </summary>
        public static StepScalars For(float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale)
        {
            double biasCorrection1 = 1 - Math.Pow(beta1, step), biasCorrection2 = 1 - Math.Pow(beta2, step);
            return new StepScalars(
                Decay: (float)(1 - (double)lr * weightDecay),
                Beta1: beta1, OneMinusBeta1: (float)(1 - (double)beta1),
                Beta2: beta2, OneMinusBeta2: (float)(1 - (double)beta2),
                StepSize: (float)(lr / biasCorrection1),
                BiasCorrection2Sqrt: (float)Math.Sqrt(biasCorrection2),
                Eps: eps, GradScale: gradScale);
        }
    }

    readonly struct Kernel(float* P, float* G, float* M, float* V, StepScalars c) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int i = start;
            for (; i <= end - T.Count; i += T.Count) Update<T>(i);
            for (; i < end; i++) Update<Vec1>(i);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        void Update<T>(int i) where T : unmanaged, ISimd<T>
        {
            T g = T.Load(in G[i]) * T.Create(c.GradScale);
            // p ← p·(1 − lr·wd)
            T p = T.Load(in P[i]) * T.Create(c.Decay);
            // m ← β₁m + (1 − β₁)g
            T m = T.MultiplyAdd(g, T.Create(c.OneMinusBeta1), T.Load(in M[i]) * T.Create(c.Beta1));
            // v ← β₂v + (1 − β₂)g²
            T v = T.Load(in V[i]) * T.Create(c.Beta2) + T.Create(c.OneMinusBeta2) * g * g;
            // p ← p − step_size·m / (√v/√(1 − β₂ᵗ) + eps), step_size = lr/(1 − β₁ᵗ)
            T denom = T.Sqrt(v) / T.Create(c.BiasCorrection2Sqrt) + T.Create(c.Eps);
            T.Store(p - T.Create(c.StepSize) * m / denom, ref P[i]);
            T.Store(m, ref M[i]);
            T.Store(v, ref V[i]);
        }
    }
}
