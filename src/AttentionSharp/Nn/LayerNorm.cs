namespace AttentionSharp.Nn;

/// <summary>Layer normalisation over the last dimension with a learned scale (ones) and shift (zeros), as torch.nn.LayerNorm.</summary>
public sealed class LayerNorm : Module
{
    public LayerNorm(int dim, float eps = 1e-5f, bool bias = true)
    {
        if (dim <= 0) throw new ArgumentException($"LayerNorm needs a positive size; got {dim}.", nameof(dim));
        Eps = eps;
        Weight = RegisterParameter("weight", Tensor.Ones(dim));
        if (bias) Bias = RegisterParameter("bias", Tensor.Zeros(dim));
    }

    public float Eps { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public Tensor Forward(Tensor x) => Tensor.LayerNorm(x, Weight, Bias, Eps);

    /// <summary>LayerNorm(x), left to the projection that reads it to apply in its product (<see cref="LinearInput"/>).</summary>
    public LinearInput Deferred(Tensor x) => LinearInput.Normalized(this, x);
}
