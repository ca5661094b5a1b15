// Sources: PyTorch torch.nn.functional.cross_entropy (ignore_index, label_smoothing); Karpathy, llm.c, for the fused
// softmax + cross-entropy backward; the CPU engine's Kernels/CrossEntropy.cs and Tensor.CrossEntropy (mean over the
// counted rows), whose formulas these follow.
using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// Softmax cross-entropy of logits (rows × V, row-major) against integer targets, with PyTorch's ignore_index and
/// label_smoothing. <see cref="Forward"/> and <see cref="Backward"/> work per row as the CPU kernel (the forward pass
/// saves each row's logsumexp, from which the backward pass recomputes softmax); <see cref="Mean"/> and
/// <see cref="MeanGradient"/> turn them into the mean over the counted rows that <c>Tensor.CrossEntropy</c> returns.
/// A target outside [0, V) other than ignoreIndex cannot throw on the device: its row's loss is NaN and it gets no
/// gradient.
/// </summary>
public sealed class GpuCrossEntropy
{
    readonly GpuDevice _device;
    readonly Action<KernelConfig, CrossEntropyArgs> _forward, _backward, _mean, _meanGradient;

    internal GpuCrossEntropy(GpuDevice device)
    {
        _device = device;
        _forward = device.Load<CrossEntropyArgs>(ForwardKernel, ForwardKernel);
        _backward = device.Load<CrossEntropyArgs>(BackwardKernel, BackwardKernel);
        _mean = device.Load<CrossEntropyArgs>(MeanKernel, MeanKernel);
        _meanGradient = device.Load<CrossEntropyArgs>(MeanGradientKernel, MeanGradientKernel);
    }

    /// <summary>
    /// lse = log Σ_j e^(x_j); loss = (1 − ε)(lse − x_target) + ε(lse − (1/V) Σ_j x_j), per row; ignored rows get loss 0
    /// (their lse is still written).
    /// </summary>
    public void Forward(GpuTensor rowLoss, GpuTensor rowLogSumExp, GpuTensor logits, GpuIntBuffer targets, int rows, int vocab,
        int ignoreIndex = -100, float labelSmoothing = 0f)
    {
        var args = Arguments(logits, targets, rows, vocab, ignoreIndex, labelSmoothing);
        Check.Count(_device, rowLoss, rows, nameof(rowLoss), "rows");
        Check.Count(_device, rowLogSumExp, rows, nameof(rowLogSumExp), "rows");
        if (rows == 0) return;
        args.Out = rowLoss.View;
        args.Lse = rowLogSumExp.View;
        _forward(_device.RowLaunch(rows), args);
    }

    /// <summary>
    /// dlogits_j += dRowLoss·(softmax_j − (1 − ε)[j = target] − ε/V), per row, softmax_j = e^(x_j − lse) from the saved
    /// lse. Ignored rows contribute nothing.
    /// </summary>
    public void Backward(GpuTensor dlogits, GpuTensor dRowLoss, GpuTensor logits, GpuTensor rowLogSumExp, GpuIntBuffer targets,
        int rows, int vocab, int ignoreIndex = -100, float labelSmoothing = 0f)
    {
        var args = Arguments(logits, targets, rows, vocab, ignoreIndex, labelSmoothing);
        Check.Count(_device, dlogits, (long)rows * vocab, nameof(dlogits), "rows × vocab");
        Check.Count(_device, dRowLoss, rows, nameof(dRowLoss), "rows");
        Check.Count(_device, rowLogSumExp, rows, nameof(rowLogSumExp), "rows");
        if (rows == 0) return;
        args.Out = dlogits.View;
        args.DRowLoss = dRowLoss.View;
        args.Lse = rowLogSumExp.View;
        _backward(_device.ElementLaunch((long)rows * vocab), args);
    }

    /// <summary>
    /// loss[0] = (Σ of the counted rows' losses) / (number of counted rows); NaN when every row is ignored, as PyTorch.
    /// </summary>
    public void Mean(GpuTensor loss, GpuTensor rowLoss, GpuIntBuffer targets, int ignoreIndex = -100)
    {
        int rows = rowLoss.Count;
        Check.Count(_device, loss, 1, nameof(loss), "one float");
        Check.Length(_device, targets, rows, nameof(targets), "rowLoss.Count");
        _mean(new KernelConfig(1, _device.RowThreads),
            new CrossEntropyArgs
            {
                Out = loss.View, DRowLoss = rowLoss.View, X = rowLoss.View, Lse = rowLoss.View,
                Targets = targets.View, Rows = rows, IgnoreIndex = ignoreIndex,
            });
    }

    /// <summary>
    /// dRowLoss_r = dLoss / (number of counted rows) for counted rows and 0 for ignored ones: the gradient of
    /// <see cref="Mean"/>, ready for <see cref="Backward"/>.
    /// </summary>
    public void MeanGradient(GpuTensor dRowLoss, GpuIntBuffer targets, float dLoss = 1f, int ignoreIndex = -100)
    {
        int rows = dRowLoss.Count;
        Check.Length(_device, targets, rows, nameof(targets), "dRowLoss.Count");
        _meanGradient(new KernelConfig(1, _device.RowThreads),
            new CrossEntropyArgs
            {
                Out = dRowLoss.View, DRowLoss = dRowLoss.View, X = dRowLoss.View, Lse = dRowLoss.View,
                Targets = targets.View, Rows = rows, IgnoreIndex = ignoreIndex, Scale = dLoss,
            });
    }

    CrossEntropyArgs Arguments(GpuTensor logits, GpuIntBuffer targets, int rows, int vocab, int ignoreIndex, float labelSmoothing)
    {
        Check.NonNegative(rows, nameof(rows));
        if (vocab < 1) throw new ArgumentOutOfRangeException(nameof(vocab), vocab, $"vocab must be at least 1; got {vocab}.");
        if (!(labelSmoothing >= 0f && labelSmoothing <= 1f))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, $"labelSmoothing must be in " +
                $"[0, 1]; got {labelSmoothing}.");
        Check.Count(_device, logits, (long)rows * vocab, nameof(logits), "rows × vocab");
        Check.Length(_device, targets, rows, nameof(targets), "rows");
        return new CrossEntropyArgs
        {
            X = logits.View, Targets = targets.View, Out = logits.View, Lse = logits.View, DRowLoss = logits.View,
            Rows = rows, Vocab = vocab, IgnoreIndex = ignoreIndex, Smoothing = labelSmoothing,
        };
    }

    /// <summary>Row Grid.IdxX: lse by max and Σ e^(x − max), then the row's loss.</summary>
    [Kernel]
    static void ForwardKernel(CrossEntropyArgs p)
    {
        int r = Grid.IdxX, t = Group.IdxX, threads = Group.DimX, v = p.Vocab;
        long o = (long)r * v;
        float max = float.NegativeInfinity;
        for (int j = t; j < v; j += threads) max = MathF.Max(max, p.X[o + j]);
        max = GpuMath.GroupMax(max);
        // lse = max x + log Σ_j e^(x_j − max x)
        float sum = 0f;
        for (int j = t; j < v; j += threads) sum += MathF.Exp(p.X[o + j] - max);
        sum = GpuMath.GroupSum(sum);
        float lse = float.IsNegativeInfinity(max) ? max : max + MathF.Log(sum);
        float sumX = 0f;
        if (p.Smoothing != 0f)
        {
            for (int j = t; j < v; j += threads) sumX += p.X[o + j];
            sumX = GpuMath.GroupSum(sumX);
        }
        if (t != 0) return;
        p.Lse[r] = lse;
        int target = p.Targets[r];
        if (target == p.IgnoreIndex) p.Out[r] = 0f;
        else if (target < 0 || target >= v) p.Out[r] = float.NaN;
        else
        {
            // loss = (1 − ε)(lse − x_t) + ε(lse − (1/V) Σ_j x_j)
            float loss = (1f - p.Smoothing) * (lse - p.X[o + target]);
            if (p.Smoothing != 0f) loss += p.Smoothing * (lse - sumX / v);
            p.Out[r] = loss;
        }
    }

    /// <summary>One element of dlogits per grid-stride step.</summary>
    [Kernel]
    static void BackwardKernel(CrossEntropyArgs p)
    {
        int count = p.Rows * p.Vocab;
        float uniform = p.Smoothing / p.Vocab;
        for (int i = GpuMath.GridFirst; i < count; i += GpuMath.GridStride)
        {
            int r = i / p.Vocab, j = i - r * p.Vocab, target = p.Targets[r];
            if (target == p.IgnoreIndex || target < 0 || target >= p.Vocab) continue;
            float g = p.DRowLoss[r];
            // dx_j += g·(e^(x_j − lse) − ε/V); then dx_t −= g·(1 − ε)
            float dx = GpuMath.Fma(g, MathF.Exp(p.X[i] - p.Lse[r]) - uniform, p.Out[i]);
            if (j == target) dx -= g * (1f - p.Smoothing);
            p.Out[i] = dx;
        }
    }

    /// <summary>One group: Σ of the counted rows' losses over their number.</summary>
    [Kernel]
    static void MeanKernel(CrossEntropyArgs p)
    {
        float sum = 0f, counted = 0f;
        for (int r = Group.IdxX; r < p.Rows; r += Group.DimX)
        {
            if (p.Targets[r] == p.IgnoreIndex) continue;
            sum += p.DRowLoss[r];
            counted += 1f;
        }
        sum = GpuMath.GroupSum(sum);
        counted = GpuMath.GroupSum(counted);
        if (Group.IdxX == 0) p.Out[0] = counted == 0f ? float.NaN : sum / counted;
    }

    /// <summary>One group: count the rows, then dLoss / count on each counted row.</summary>
    [Kernel]
    static void MeanGradientKernel(CrossEntropyArgs p)
    {
        float counted = 0f;
        for (int r = Group.IdxX; r < p.Rows; r += Group.DimX)
            if (p.Targets[r] != p.IgnoreIndex) counted += 1f;
        counted = GpuMath.GroupSum(counted);
        for (int r = Group.IdxX; r < p.Rows; r += Group.DimX)
            p.Out[r] = p.Targets[r] == p.IgnoreIndex ? 0f : p.Scale / counted;
    }
}

internal struct CrossEntropyArgs
{
    public ArrayView<float> Out, DRowLoss, X, Lse;
    public ArrayView<int> Targets;
    public int Rows, Vocab, IgnoreIndex;
    public float Smoothing, Scale;
}
