using AttentionSharp.Kernels;

namespace AttentionSharp.Nn;

/// <summary>
/// The input of a projection: a tensor, or a LayerNorm of it not yet applied. A pre-LN block writes
/// <c>attn(ln_1(x))</c> as <c>Attn.Forward(Ln1.Deferred(x))</c>; the first Linear that reads the value then normalises
/// inside its own product (<see cref="Tensor.LayerNormLinear"/>), so the normalised x is never held as an activation.
/// This and <see cref="Branch"/> are the one place where a block's normalisations and residual sums are fused.
/// </summary>
public readonly struct LinearInput
{
    LinearInput(Tensor x, LayerNorm? norm) { X = x; Norm = norm; }

    /// <summary>The tensor before normalisation (B, T, C).</summary>
    public Tensor X { get; }

    /// <summary>The LayerNorm still to apply, or null when <see cref="X"/> is the value itself.</summary>
    public LayerNorm? Norm { get; }

    /// <summary>LayerNorm(x), to be applied by the projection that reads it.</summary>
    public static LinearInput Normalized(LayerNorm norm, Tensor x) => new(x, norm);

    public static implicit operator LinearInput(Tensor x) => new(x, null);

    /// <summary>The value itself, normalised now if it has to be (for a reader that is not one projection).</summary>
    public Tensor Value => Norm is null ? X : Norm.Forward(X);

    /// <summary>value·Wᵀ + b; a pending LayerNorm runs inside the product.</summary>
    public Tensor Through(Linear next) => Through(next.Weight, next.Bias);

    /// <summary>value·Wᵀ + b for a weight (out, in) that is not a Linear layer's (a tied embedding).</summary>
    public Tensor Through(Tensor weight, Tensor? bias) =>
        Norm is null
            ? Tensor.Linear(X, weight, bias)
            : Tensor.LayerNormLinear(X, Norm.Weight, Norm.Bias, Norm.Eps, weight, bias);
}

/// <summary>
/// The end of a residual branch not yet formed: Dropout(f(h)·Wᵀ + b) with f the identity or GELU. Adding it to
/// the residual stream, <c>x + branch</c>, forms the sum inside the product (<see cref="Tensor.Linear"/>'s residual)
/// when no dropout lies between them, so the branch's output is never held; with dropout it is x + Dropout(…).
/// </summary>
public readonly struct Branch
{
    readonly Tensor _h;
    readonly Linear _projection;
    readonly GeluApproximation? _gelu;
    readonly float _dropout;
    readonly Generator? _dropoutRng;

    Branch(Tensor h, Linear projection, GeluApproximation? gelu, float dropout, Generator? dropoutRng)
    {
        if (dropout > 0 && dropoutRng is null)
            throw new ArgumentException("A branch with dropout needs a dropout generator.", nameof(dropoutRng));
        (_h, _projection, _gelu, _dropout, _dropoutRng) = (h, projection, gelu, dropout, dropoutRng);
    }

    /// <summary>Dropout(h·Wᵀ + b) with probability <paramref name="dropout"/> (pass 0 outside training).</summary>
    public static Branch Projection(Linear projection, Tensor h, float dropout = 0f, Generator? dropoutRng = null) =>
        new(h, projection, null, dropout, dropoutRng);

    /// <summary>Dropout(GELU(h)·Wᵀ + b), GELU formed again in backward (see <see cref="Tensor.GeluLinear"/>).</summary>
    public static Branch GeluProjection(Linear projection, Tensor h, GeluApproximation gelu, float dropout = 0f,
        Generator? dropoutRng = null) => new(h, projection, gelu, dropout, dropoutRng);

    /// <summary>The branch on its own: Dropout(f(h)·Wᵀ + b).</summary>
    public Tensor Value => Project(null).Dropout(_dropout, training: true, _dropoutRng ?? NoDropout);

    public static implicit operator Tensor(Branch branch) => branch.Value;

    /// <summary>x + Dropout(f(h)·Wᵀ + b); the sum is formed in the product when there is no dropout.</summary>
    public static Tensor operator +(Tensor residual, Branch branch) =>
        branch._dropout > 0 ? residual + branch.Value : branch.Project(residual);

    Tensor Project(Tensor? residual) => _gelu is { } gelu
        ? Tensor.GeluLinear(_h, _projection.Weight, _projection.Bias, gelu, residual)
        : Tensor.Linear(_h, _projection.Weight, _projection.Bias, residual);

    /// <summary>A generator that p = 0 never draws from.</summary>
    static readonly Generator NoDropout = new(0);
}
