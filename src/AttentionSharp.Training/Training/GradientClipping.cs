using AttentionSharp.Kernels;

namespace AttentionSharp.Training;

/// <summary>Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_.</summary>
public static class GradientClipping
{
    /// <summary>
    /// Scales all gradients by min(1, maxNorm / (‖g‖ + 1e-6)), where ‖g‖ is the L2 norm over every gradient together;
    /// returns ‖g‖ before clipping (NaN or ∞ if a gradient is not finite, in which case nothing is scaled).
    /// </summary>
    public static float ClipGradNorm(IEnumerable<Tensor> parameters, float maxNorm)
    {
        var grads = parameters.Select(p => p.Grad).OfType<Tensor>().ToList();
        var (norm, coefficient) = Coefficient(grads, maxNorm);
        if (coefficient < 1f)
            foreach (var g in grads) Norms.Scale(g, coefficient);
        return norm;
    }

    /// <summary>
    /// ‖g‖ over every gradient together and the factor min(1, maxNorm / (‖g‖ + 1e-6)) that
    /// <see cref="ClipGradNorm"/> would scale them by, without scaling (<see cref="AdamW.Step"/> can apply it as it
    /// reads them). The factor is 1 when ‖g‖ is not finite.
    /// </summary>
    public static (float Norm, float Coefficient) ClipCoefficient(IEnumerable<Tensor> parameters, float maxNorm) =>
        Coefficient(parameters.Select(p => p.Grad).OfType<Tensor>(), maxNorm);

    static (float Norm, float Coefficient) Coefficient(IEnumerable<Tensor> grads, float maxNorm)
    {
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "The maximum norm must be positive.");
        // Each tensor's sum on one thread or split by its own kernel, then added in order: the same double for every
        // thread count.
        var list = grads as IReadOnlyList<Tensor> ?? [.. grads];
        var sums = new double[list.Count];
        Kernels.Parallel.ForEachTensor(list.Count, i => list[i].Count, i =>
        {
            if (list[i].Device.IsCpu) sums[i] = Norms.SumOfSquares(list[i].Data);
        });
        double sumSquares = 0;
        foreach (double s in sums) sumSquares += s;
        // A device's gradients are summed there into one total, read back once.
        foreach (var onDevice in list.Where(g => !g.Device.IsCpu).GroupBy(g => g.Device))
            sumSquares += Norms.SumOfSquares([.. onDevice]);
        float norm = (float)Math.Sqrt(sumSquares);
        return (norm, CoefficientFor(norm, maxNorm));
    }

    /// <summary>
    /// min(1, maxNorm / (‖g‖ + 1e-6)) for a norm computed elsewhere (a device's gradients); 1 when the norm is not
    /// finite.
    /// </summary>
    public static float CoefficientFor(float norm, float maxNorm)
    {
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "The maximum norm must be positive.");
        return float.IsFinite(norm) ? Math.Min(1f, maxNorm / (norm + 1e-6f)) : 1f;
    }
}
