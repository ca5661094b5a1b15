using System.Numerics.Tensors;
using AttentionSharp.Autograd;
using AttentionSharp.Nn;

namespace AttentionSharp.Training;

/// <summary>What a trainer does when a step's loss or a gradient is NaN or ±∞.</summary>
public enum NonFiniteAction
{
    /// <summary>Stop training with a <see cref="NonFiniteException"/>; the last checkpoint stays the last good one.</summary>
    Stop,

    /// <summary>Drop the step: gradients are discarded, weights and optimizer moments are left untouched, training goes on.</summary>
    Skip,
}

/// <summary>Finds the first non-finite value of a step and says where it is.</summary>
public static class NonFiniteCheck
{
    /// <summary>
    /// "step N: loss is NaN" or "step N: gradient of NAME is Inf"; null when the loss and every gradient are finite.
    /// <paramref name="gradNorm"/> is the global norm already computed: when it is finite, no gradient needs scanning.
    /// </summary>
    public static string? Describe(int step, float loss, float gradNorm, Module model) =>
        Describe(step, loss, gradNorm, model.NamedParameters().Where(p => p.Parameter.Grad is not null)
            .Select(p => (p.Name, p.Parameter.Grad!.ToArray())));

    /// <summary>
    /// As <see cref="Describe(int, float, float, Module)"/> for gradients held elsewhere (a device's), given by name;
    /// they are enumerated only when the norm is not finite, and only up to the first bad one.
    /// </summary>
    public static string? Describe(int step, float loss, float gradNorm, IEnumerable<(string Name, float[] Gradient)> gradients)
    {
        ArgumentNullException.ThrowIfNull(gradients);
        if (!float.IsFinite(loss)) return $"step {step}: loss is {Name(loss)}";
        if (float.IsFinite(gradNorm)) return null;
        foreach (var (name, g) in gradients)
            if (FirstNonFinite(g) is { } i)
                return $"step {step}: gradient of {name} is {Name(g[i])} (at index {i})";
        return $"step {step}: the gradient norm is {Name(gradNorm)}";
    }

    /// <summary>The index of the first NaN or ±∞ in <paramref name="values"/>, or null.</summary>
    public static int? FirstNonFinite(ReadOnlySpan<float> values)
    {
        // Fast path: a finite sum means no NaN or ∞ (an overflowing sum of finite values falls through to the scan).
        if (float.IsFinite(TensorPrimitives.Sum(values))) return null;
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return i;
        return null;
    }

    static string Name(float value) => float.IsNaN(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf";
}
