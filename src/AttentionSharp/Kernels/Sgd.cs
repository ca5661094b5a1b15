// Sources: Sutskever et al., "On the importance of initialization and momentum in deep learning" (2013);
// PyTorch torch.optim.SGD (single-tensor path), whose semantics and order of operations this follows.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>One SGD step (momentum, dampening, weight decay, Nesterov) over flat buffers, element-wise.</summary>
public static unsafe class Sgd
{
    /// <summary>
    /// d = g + wd·p; with momentum μ ≠ 0: b ← d on the first step, else b ← μb + (1 − dampening)d, and d = d + μb
    /// (Nesterov) or d = b; then p ← p − lr·d. <paramref name="momentumBuffer"/> may be empty when μ = 0.
    /// </summary>
    public static void Step(Span<float> param, ReadOnlySpan<float> grad, Span<float> momentumBuffer,
        float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep)
    {
        Validate(param.Length, grad.Length, momentumBuffer.Length, lr, momentum, dampening, weightDecay, nesterov);
        fixed (float* pp = param)
        fixed (float* pg = grad)
        fixed (float* pb = momentumBuffer)
            Work.Elements(param.Length, new Kernel(pp, pg, pb, lr, momentum, 1f - dampening, weightDecay, nesterov, firstStep));
    }

    /// <summary>Hyper-parameter and length checks shared with the reference twin (PyTorch's own checks).</summary>
    internal static void Validate(int param, int grad, int buffer,
        float lr, float momentum, float dampening, float weightDecay, bool nesterov)
    {
        Guard.SameLength(nameof(grad), grad, param, nameof(param));
        if (momentum != 0 || buffer != 0) Guard.SameLength("momentumBuffer", buffer, param, nameof(param));
        if (!(lr >= 0)) throw new ArgumentOutOfRangeException(nameof(lr), lr, $"lr must be non-negative; got {lr}.");
        if (!(momentum >= 0))
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, $"momentum must be non-negative; got {momentum}.");
        if (!(weightDecay >= 0))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay,
                $"weightDecay must be non-negative; got {weightDecay}.");
        if (float.IsNaN(dampening))
            throw new ArgumentOutOfRangeException(nameof(dampening), dampening, "dampening must be a number; got NaN.");
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException($"Nesterov momentum requires momentum > 0 and dampening = 0; got momentum {momentum}, " +
                $"dampening {dampening}.", nameof(nesterov));
    }

    readonly struct Kernel(float* p, float* g, float* b, float lr, float momentum, float oneMinusDampening,
        float weightDecay, bool nesterov, bool firstStep) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int i = start;
            for (; i <= end - T.Count; i += T.Count) Update<T>(i);
            for (; i < end; i++) Update<Vec1>(i);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        void Update<T>(int i) where T : unmanaged, ISimd<T>
        {
            T param = T.Load(in p[i]);
            // d = g + wd·p
            T d = T.Load(in g[i]);
            if (weightDecay != 0) d = T.MultiplyAdd(param, T.Create(weightDecay), d);
            if (momentum != 0)
            {
                // b ← d on the first step, else b ← μb + (1 − dampening)d
                T buf = firstStep ? d : T.MultiplyAdd(d, T.Create(oneMinusDampening), T.Load(in b[i]) * T.Create(momentum));
                T.Store(buf, ref b[i]);
                // d = d + μb (Nesterov) or d = b
                d = nesterov ? T.MultiplyAdd(buf, T.Create(momentum), d) : buf;
            }
            // p ← p − lr·d
            T.Store(T.MultiplyAdd(d, T.Create(-lr), param), ref p[i]);
        }
    }
}
