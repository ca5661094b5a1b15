// Reference twin of Kernels.CrossEntropy: plain loops in double. Source: PyTorch cross_entropy semantics.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain per-row cross-entropy with ignore index and label smoothing.</summary>
public static class CrossEntropy
{
    public static void Forward(Span<float> rowLoss, Span<float> rowLogSumExp, ReadOnlySpan<float> logits, ReadOnlySpan<int> targets,
        int rows, int vocab, int ignoreIndex, float labelSmoothing)
    {
        Kernels.CrossEntropy.Validate(rows, vocab, labelSmoothing, logits.Length, targets, ignoreIndex);
        Guard.Vector(nameof(rowLoss), rowLoss.Length, rows, nameof(rows));
        Guard.Vector(nameof(rowLogSumExp), rowLogSumExp.Length, rows, nameof(rows));
        var loss = new double[rows];
        var lse = new double[rows];
        Forward(loss, lse, Widen.From(logits), targets, rows, vocab, ignoreIndex, labelSmoothing);
        Widen.Store(rowLoss, loss);
        Widen.Store(rowLogSumExp, lse);
    }

    public static void Backward(Span<float> dlogits, ReadOnlySpan<float> dRowLoss, ReadOnlySpan<float> logits, ReadOnlySpan<float> rowLogSumExp,
        ReadOnlySpan<int> targets, int rows, int vocab, int ignoreIndex, float labelSmoothing)
    {
        Kernels.CrossEntropy.Validate(rows, vocab, labelSmoothing, logits.Length, targets, ignoreIndex);
        Guard.Matrix(nameof(dlogits), dlogits.Length, rows, vocab, nameof(rows), nameof(vocab));
        Guard.Vector(nameof(dRowLoss), dRowLoss.Length, rows, nameof(rows));
        Guard.Vector(nameof(rowLogSumExp), rowLogSumExp.Length, rows, nameof(rows));
        var d = new double[dlogits.Length];
        Backward(d, Widen.From(dRowLoss), Widen.From(logits), Widen.From(rowLogSumExp), targets, rows, vocab, ignoreIndex, labelSmoothing);
        Widen.Accumulate(dlogits, d);
    }

    internal static void Forward(Span<double> rowLoss, Span<double> rowLogSumExp, ReadOnlySpan<double> logits, ReadOnlySpan<int> targets,
        int rows, int vocab, int ignoreIndex, double eps)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = logits.Slice(r * vocab, vocab);
            double lse = LogSoftmax.LogSumExp(xr);
            rowLogSumExp[r] = lse;
            int t = targets[r];
            if (t == ignoreIndex)
            {
                rowLoss[r] = 0;
                continue;
            }
            // loss = (1 − ε)(lse − x_t) + ε(lse − mean_j x_j)
            double mean = 0;
            foreach (double v in xr) mean += v;
            mean /= vocab;
            rowLoss[r] = (1 - eps) * (lse - xr[t]) + (eps == 0 ? 0 : eps * (lse - mean));
        }
    }

    internal static void Backward(Span<double> dlogits, ReadOnlySpan<double> dRowLoss, ReadOnlySpan<double> logits, ReadOnlySpan<double> rowLogSumExp,
        ReadOnlySpan<int> targets, int rows, int vocab, int ignoreIndex, double eps)
    {
        for (int r = 0; r < rows; r++)
        {
            int t = targets[r];
            if (t == ignoreIndex) continue;
            // dlogits_j += dloss·(e^(x_j − lse) − (1 − ε)[j = t] − ε/V)
            for (int j = 0; j < vocab; j++)
                dlogits[r * vocab + j] += dRowLoss[r] *
                    (Math.Exp(logits[r * vocab + j] - rowLogSumExp[r]) - (j == t ? 1 - eps : 0) - eps / vocab);
        }
    }
}
