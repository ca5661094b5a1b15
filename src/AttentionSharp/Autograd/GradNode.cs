namespace AttentionSharp.Autograd;

/// <summary>
/// One recorded operation: the inputs it read and the rule that turns the gradient of its output into gradients of its
/// inputs. The rule accumulates (+=) into each input's gradient buffer, so a tensor used twice gets the sum.
/// </summary>
public sealed class GradNode
{
    internal GradNode(string name, Tensor[] inputs, Action<Tensor> backward)
    {
        Name = name;
        Inputs = inputs;
        BackwardRule = backward;
    }

    /// <summary>The operation's name, as in PyTorch's grad_fn (e.g. "MatMul", "LayerNorm").</summary>
    public string Name { get; }

    internal Tensor[] Inputs { get; }

    /// <summary>Receives the (contiguous) gradient of the output.</summary>
    internal Action<Tensor> BackwardRule { get; }
}
