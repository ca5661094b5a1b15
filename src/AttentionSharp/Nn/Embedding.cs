namespace AttentionSharp.Nn;

/// <summary>A lookup table of <c>count</c> vectors of size <c>dim</c>, initialised N(0, 1) as torch.nn.Embedding.</summary>
public sealed class Embedding : Module
{
    public Embedding(int count, int dim, Generator rng, float std = 1f)
    {
        if (count <= 0 || dim <= 0) throw new ArgumentException($"Embedding needs positive sizes; got count = {count}, dim = {dim}.");
        Count = count; Dim = dim;
        Weight = RegisterParameter("weight", Tensor.Normal(rng, 0f, std, count, dim));
    }

    public int Count { get; }
    public int Dim { get; }
    public Tensor Weight { get; }   // (count, dim)

    /// <summary>ids shaped <paramref name="idShape"/> → (idShape…, dim).</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, params ReadOnlySpan<int> idShape) => Tensor.Embedding(Weight, ids, idShape);
}
