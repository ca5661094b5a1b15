// Reference twin of Kernels.Sgd: one element at a time in double. Source: torch.optim.SGD.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain SGD step with momentum, dampening, weight decay and Nesterov.</summary>
public static class Sgd
{
    public static void Step(Span<float> param, ReadOnlySpan<float> grad, Span<float> momentumBuffer,
        float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep)
    {
        Kernels.Sgd.Validate(param.Length, grad.Length, momentumBuffer.Length, lr, momentum, dampening, weightDecay, nesterov);
        for (int i = 0; i < param.Length; i++)
        {
            // d = g + wd·p
            double d = grad[i] + (double)weightDecay * param[i];
            if (momentum != 0)
            {
                // b ← d (first step) or μb + (1 − dampening)d; d = d + μb (Nesterov) or b
                double b = firstStep ? d : momentum * (double)momentumBuffer[i] + (1 - (double)dampening) * d;
                momentumBuffer[i] = (float)b;
                d = nesterov ? d + momentum * b : b;
            }
            // p ← p − lr·d
            param[i] = (float)(param[i] - lr * d);
        }
    }
}
