namespace AttentionSharp.Autograd;

/// <summary>
/// A NaN or ±∞ where training needs finite numbers: in the loss, in a gradient, or (under
/// <see cref="GradMode.DetectAnomaly"/>) in the output of the operation named by <see cref="Operation"/>.
/// </summary>
public sealed class NonFiniteException(string message, string? operation = null) : ArithmeticException(message)
{
    /// <summary>The operation whose output was first non-finite, when anomaly detection found it; otherwise null.</summary>
    public string? Operation { get; } = operation;

    /// <summary>Throws when <paramref name="output"/> of operation <paramref name="name"/> holds a NaN or ±∞.</summary>
    internal static void CheckOutput(Tensor output, string name)
    {
        // A strided view of another tensor computed nothing (any NaN in it came from the op that made its storage); a
        // computed output laid out in another order (attention's) is checked over its block.
        // A device's output is read back (anomaly mode is for finding a fault, not for speed).
        var data = output.Device.IsCpu ? output.DenseBlockOrEmpty() : output.ToArray();
        if (data.IsEmpty) return;
        if (float.IsFinite(System.Numerics.Tensors.TensorPrimitives.Sum((ReadOnlySpan<float>)data))) return;
        for (int i = 0; i < data.Length; i++)
            if (!float.IsFinite(data[i]))
                throw new NonFiniteException(
                    $"operation {name} produced {(float.IsNaN(data[i]) ? "NaN" : data[i] > 0 ? "+Inf" : "-Inf")} " +
                    $"at index {i} of its output {string.Join("×", output.Shape.ToArray())} in the forward pass", name);
    }
}
