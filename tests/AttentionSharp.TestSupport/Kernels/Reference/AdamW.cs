// Reference twin of Kernels.AdamW: one element at a time in double. Sources: Loshchilov & Hutter (2019); torch.optim.AdamW.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain AdamW step.</summary>
public static class AdamW
{
    public static void Step(Span<float> param, ReadOnlySpan<float> grad, Span<float> m, Span<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale = 1f)
    {
        Kernels.AdamW.Validate(param.Length, grad.Length, m.Length, v.Length, lr, beta1, beta2, eps, weightDecay, step);
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        for (int i = 0; i < param.Length; i++)
        {
            double g = (double)grad[i] * gradScale;
            // p ← p(1 − lr·wd)
            double p = param[i] * (1 - (double)lr * weightDecay);
            // m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²
            double mi = beta1 * (double)m[i] + (1 - (double)beta1) * g;
            double vi = beta2 * (double)v[i] + (1 - (double)beta2) * g * g;
            // p ← p − (lr/(1 − β₁ᵗ))·m / (√v/√(1 − β₂ᵗ) + eps)
            p -= lr / bc1 * mi / (Math.Sqrt(vi) / Math.Sqrt(bc2) + eps);
            param[i] = (float)p;
            m[i] = (float)mi;
            v[i] = (float)vi;
        }
    }
}
