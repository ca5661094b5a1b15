using AttentionSharp.Autograd;

namespace AttentionSharp.Gpu;

/// <summary>
/// A GPU model's training step as <see cref="GpuGptCheck.CompareSteps"/> drives it against the CPU engine:
/// <see cref="GpuGpt"/> and <see cref="GpuRecurrentClassifier"/> (ids and targets in, the loss out, gradients and AdamW
/// on the device, parameters and gradients readable by their CPU names).
/// </summary>
internal interface IGpuTrainable
{
    /// <summary>Zeroes the gradients.</summary>
    void ZeroGrad();

    /// <summary>The forward pass and its mean cross-entropy loss.</summary>
    float Forward(ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int batch, int time);

    /// <summary>Accumulates the gradients of the last forward pass's loss.</summary>
    void Backward(float lossScale = 1f);

    /// <summary>The last forward pass's logits.</summary>
    Tensor Logits();

    /// <summary>One parameter's gradient by its CPU name.</summary>
    float[] Gradient(string name);

    /// <summary>One parameter by its CPU name.</summary>
    float[] Parameter(string name);

    /// <summary>The gradients' global L2 norm.</summary>
    float GradNorm();

    /// <summary>One AdamW step, the gradients scaled by <paramref name="gradScale"/>.</summary>
    void AdamWStep(float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale = 1f);
}
