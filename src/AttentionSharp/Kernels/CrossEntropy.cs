// Sources: PyTorch torch.nn.functional.cross_entropy (ignore_index, label_smoothing); Szegedy et al., "Rethinking the
// Inception Architecture for Computer Vision" (2016) for label smoothing; Karpathy, llm.c train_gpt2.c, for the fused
// softmax + cross-entropy backward.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// Per-row cross-entropy of logits (rows × vocab, row-major) against integer targets, with PyTorch's ignore_index and
/// label_smoothing semantics. The loss is not averaged: the caller divides by the number of counted rows. The forward
/// pass saves each row's logsumexp so the backward pass recomputes softmax on the fly (no probabilities buffer).
/// </summary>
public static unsafe class CrossEntropy
{
    /// <summary>
    /// lse = log Σ_j e^(x_j); loss = (1 − ε)(lse − x_target) + ε(lse − (1/V) Σ_j x_j), per row. Rows whose
    /// target equals <paramref name="ignoreIndex"/> get loss 0 (their lse is still written). Any other target outside
    /// [0, vocab) throws.
    /// </summary>
    public static void Forward(Span<float> rowLoss, Span<float> rowLogSumExp, ReadOnlySpan<float> logits,
        ReadOnlySpan<int> targets, int rows, int vocab, int ignoreIndex, float labelSmoothing)
    {
        Validate(rows, vocab, labelSmoothing, logits.Length, targets, ignoreIndex);
        Guard.Vector(nameof(rowLoss), rowLoss.Length, rows, nameof(rows));
        Guard.Vector(nameof(rowLogSumExp), rowLogSumExp.Length, rows, nameof(rows));
        fixed (float* ploss = rowLoss)
        fixed (float* plse = rowLogSumExp)
        fixed (float* px = logits)
        fixed (int* pt = targets)
            Work.Rows(rows, vocab, new ForwardKernel(ploss, plse, px, pt, vocab, ignoreIndex, labelSmoothing));
    }

    /// <summary>
    /// dlogits_j += dRowLoss·(softmax_j − (1 − ε)[j = target] − ε/V), per row, with softmax_j = e^(x_j − lse) from the
    /// saved lse. Ignored rows contribute nothing. With <paramref name="accumulate"/> false, dlogits is written instead of
    /// added to (ignored rows become 0).
    /// </summary>
    public static void Backward(Span<float> dlogits, ReadOnlySpan<float> dRowLoss, ReadOnlySpan<float> logits,
        ReadOnlySpan<float> rowLogSumExp, ReadOnlySpan<int> targets, int rows, int vocab, int ignoreIndex, float labelSmoothing,
        bool accumulate = true)
    {
        Validate(rows, vocab, labelSmoothing, logits.Length, targets, ignoreIndex);
        Guard.Matrix(nameof(dlogits), dlogits.Length, rows, vocab, nameof(rows), nameof(vocab));
        Guard.Vector(nameof(dRowLoss), dRowLoss.Length, rows, nameof(rows));
        Guard.Vector(nameof(rowLogSumExp), rowLogSumExp.Length, rows, nameof(rows));
        fixed (float* pdx = dlogits)
        fixed (float* pdl = dRowLoss)
        fixed (float* px = logits)
        fixed (float* plse = rowLogSumExp)
        fixed (int* pt = targets)
            Work.Rows(rows, vocab, new BackwardKernel(pdx, pdl, px, plse, pt, vocab, ignoreIndex, labelSmoothing,
                accumulate));
    }

    /// <summary>Shape, smoothing and target checks shared with the reference twin.</summary>
    internal static void Validate(int rows, int vocab, float labelSmoothing, int logitsLength, ReadOnlySpan<int> targets,
        int ignoreIndex)
    {
        Guard.Shape(rows, vocab, nameof(rows), nameof(vocab));
        if (vocab == 0) throw new ArgumentOutOfRangeException(nameof(vocab), vocab, "vocab must be at least 1; got 0.");
        if (!(labelSmoothing >= 0f && labelSmoothing <= 1f))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing,
                $"labelSmoothing must be in [0, 1]; got {labelSmoothing}.");
        Guard.Matrix("logits", logitsLength, rows, vocab, nameof(rows), nameof(vocab));
        Guard.Vector(nameof(targets), targets.Length, rows, nameof(rows));
        for (int r = 0; r < rows; r++)
        {
            int t = targets[r];
            if (t != ignoreIndex && (uint)t >= (uint)vocab)
                throw new ArgumentException(
                    $"targets[{r}] is {t}; expected a class in [0, {vocab}) or ignoreIndex ({ignoreIndex}).", nameof(targets));
        }
    }

    readonly struct ForwardKernel(float* loss, float* lse, float* x, int* targets,
        int vocab, int ignoreIndex, float eps) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int r = start; r < end; r++)
            {
                float* xr = x + (long)r * vocab;
                // lse = max x + log Σ_j e^(x_j − max x)
                float l = RowMath.LogSumExp<T>(xr, vocab);
                lse[r] = l;
                int t = targets[r];
                if (t == ignoreIndex)
                {
                    loss[r] = 0f;
                    continue;
                }
                // loss = (1 − ε)(lse − x_t) + ε(lse − (1/V) Σ_j x_j)
                float value = (1f - eps) * (l - xr[t]);
                if (eps != 0f) value += eps * (l - TensorPrimitives.Sum(new ReadOnlySpan<float>(xr, vocab)) / vocab);
                loss[r] = value;
            }
        }
    }

    readonly struct BackwardKernel(float* dx, float* dloss, float* x, float* lse, int* targets,
        int vocab, int ignoreIndex, float eps, bool accumulate) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int r = start; r < end; r++)
            {
                int t = targets[r];
                long o = (long)r * vocab;
                if (t == ignoreIndex)
                {
                    if (!accumulate) new Span<float>(dx + o, vocab).Clear(); // its gradient is 0
                    continue;
                }
                float* xr = x + o, dxr = dx + o;
                float g = dloss[r], l = lse[r], uniform = eps / vocab;
                // dx_j += g·(e^(x_j − lse) − ε/V), added to 0 when dx is only written
                T vg = T.Create(g), vl = T.Create(l), vu = T.Create(uniform);
                int j = 0;
                for (; j <= vocab - T.Count; j += T.Count)
                    T.Store(T.MultiplyAdd(vg, SimdMath.Exp(T.Load(in xr[j]) - vl) - vu,
                        accumulate ? T.Load(in dxr[j]) : T.Create(0f)), ref dxr[j]);
                for (; j < vocab; j++)
                    dxr[j] = (accumulate ? dxr[j] : 0f) + g * (SimdMath.Exp(Vec1.Create(xr[j] - l)).Value - uniform);
                // dx_t −= g·(1 − ε)
                dxr[t] -= g * (1f - eps);
            }
        }
    }
}
