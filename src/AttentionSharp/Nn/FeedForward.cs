// Sources: Vaswani et al. (2017), eq. 2; Shazeer, "GLU Variants Improve Transformer" (2020) for SwiGLU.
using AttentionSharp.Kernels;

namespace AttentionSharp.Nn;

/// <summary>The non-linearity of a position-wise feed-forward block.</summary>
public enum FeedForwardActivation
{
    /// <summary>max(0, x), as the original Transformer (torch's activation="relu").</summary>
    Relu,

    /// <summary>GELU's exact form x·Φ(x) (BERT; torch's activation="gelu").</summary>
    Gelu,

    /// <summary>GELU's tanh approximation (GPT-2).</summary>
    GeluTanh,

    /// <summary>A gated unit: SiLU(x·W_gate) ⊙ (x·W_up), then W_down (LLaMA).</summary>
    SwiGlu,
}

/// <summary>
/// The position-wise feed-forward block, applied to each position alone:
/// FFN(x) = act(x·W₁ + b₁)·W₂ + b₂ (Vaswani et al. 2017, eq. 2, with act = max(0, ·)), or for SwiGLU
/// FFN(x) = (SiLU(x·W_gate) ⊙ x·W_up)·W_down. Dropout follows the activation and the output, as in
/// torch.nn.TransformerEncoderLayer.
/// </summary>
/// <remarks>
/// Parameter names: linear1, linear2 for ReLU and GELU (torch's TransformerEncoderLayer); gate_proj, up_proj, down_proj
/// for SwiGLU (LLaMA's).
/// </remarks>
public sealed class FeedForward : Module
{
    readonly float _dropout;
    readonly Generator _dropoutRng;

    public FeedForward(int width, int hidden, FeedForwardActivation activation, Generator rng, float dropout = 0f,
        bool bias = true, Generator? dropoutRng = null)
    {
        if (width <= 0 || hidden <= 0)
            throw new ArgumentException($"FeedForward needs positive sizes; got width = {width}, hidden = {hidden}.");
        if (!Enum.IsDefined(activation))
            throw new ArgumentOutOfRangeException(nameof(activation), activation, "Unknown feed-forward activation.");
        if (!(dropout >= 0 && dropout < 1))
            throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "Dropout probability must be in [0, 1).");
        Activation = activation;
        _dropout = dropout;
        _dropoutRng = RegisterGenerator("dropout", dropoutRng ?? new Generator(rng.NextUInt64()));
        if (activation == FeedForwardActivation.SwiGlu)
        {
            Gate = RegisterModule("gate_proj", new Linear(width, hidden, rng, bias));
            Up = RegisterModule("up_proj", new Linear(width, hidden, rng, bias));
            Down = RegisterModule("down_proj", new Linear(hidden, width, rng, bias));
        }
        else
        {
            Up = RegisterModule("linear1", new Linear(width, hidden, rng, bias));
            Down = RegisterModule("linear2", new Linear(hidden, width, rng, bias));
        }
    }

    public FeedForwardActivation Activation { get; }

    /// <summary>W_gate (d_ff, C); only for SwiGLU.</summary>
    public Linear? Gate { get; }

    /// <summary>W₁ (d_ff, C), or W_up for SwiGLU.</summary>
    public Linear Up { get; }

    /// <summary>W₂ (C, d_ff), or W_down for SwiGLU.</summary>
    public Linear Down { get; }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor Forward(Tensor x) => ForwardBranch(x).Value;

    /// <summary>
    /// The block as a residual branch, FFN(x) not yet added: a pre-LN block's <c>x + ffn.ForwardBranch(ln.Deferred(x))</c>
    /// normalises inside W₁'s product and adds inside W₂'s (<see cref="LinearInput"/>, <see cref="Branch"/>). Without
    /// dropout between them, GELU and W₂ run as one op that forms GELU's output again in backward.
    /// </summary>
    public Branch ForwardBranch(LinearInput x)
    {
        float dropout = Training ? _dropout : 0f;
        if (Activation is FeedForwardActivation.Gelu or FeedForwardActivation.GeluTanh && dropout == 0f)
            return Branch.GeluProjection(Down, x.Through(Up),
                Activation == FeedForwardActivation.Gelu ? GeluApproximation.None : GeluApproximation.Tanh);
        var h = Activation switch                                                              // (B, T, d_ff)
        {
            FeedForwardActivation.Relu => x.Through(Up).Relu(),
            FeedForwardActivation.Gelu => x.Through(Up).Gelu(GeluApproximation.None),
            FeedForwardActivation.GeluTanh => x.Through(Up).Gelu(GeluApproximation.Tanh),
            _ => SwiGlu(x.Value),                                                              // one norm for both
        };
        h = h.Dropout(_dropout, Training, _dropoutRng);
        return Branch.Projection(Down, h, dropout, _dropoutRng);                                // (B, T, C)

        Tensor SwiGlu(Tensor v) => Tensor.SwiGlu(Gate!.Forward(v), Up.Forward(v));
    }
}
