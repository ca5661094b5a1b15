namespace AttentionSharp.Nn;

/// <summary>
/// y = x·Wᵀ + b with W stored (out_features, in_features) as PyTorch stores it. Initialised as torch.nn.Linear:
/// W, b ~ U(−1/√in, 1/√in) (Kaiming-uniform with a = √5).
/// </summary>
public sealed class Linear : Module
{
    public Linear(int inFeatures, int outFeatures, Generator rng, bool bias = true)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"Linear needs positive sizes; got in_features = {inFeatures}, out_features = {outFeatures}.");
        InFeatures = inFeatures; OutFeatures = outFeatures;
        float bound = 1f / MathF.Sqrt(inFeatures);
        Weight = RegisterParameter("weight", Tensor.Uniform(rng, -bound, bound, outFeatures, inFeatures));
        if (bias) Bias = RegisterParameter("bias", Tensor.Uniform(rng, -bound, bound, outFeatures));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Tensor Weight { get; }   // (out, in)
    public Tensor? Bias { get; }    // (out)

    /// <summary>(…, in) → (…, out).</summary>
    public Tensor Forward(Tensor x) => Tensor.Linear(x, Weight, Bias);
}
