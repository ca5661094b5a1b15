using AttentionSharp.Autograd;

namespace AttentionSharp.Tests.Autograd;

/// <summary>Every differentiable tensor operation against central finite differences.</summary>
public class GradCheckTests
{
    internal static Tensor Leaf(Generator rng, params int[] shape)
    {
        var t = Tensor.Uniform(rng, -1f, 1f, shape);
        t.RequiresGrad = true;
        return t;
    }

    static Tensor Positive(Generator rng, params int[] shape)
    {
        var t = Tensor.Uniform(rng, 0.5f, 1.5f, shape);
        t.RequiresGrad = true;
        return t;
    }

    static void Check(Func<Tensor[], Tensor> f, params Tensor[] inputs)
    {
        var report = GradCheck.Check(f, inputs);
        Assert.True(report.Passed, report.ToString());
    }

    public static TheoryData<string> Ops() =>
    [
        "add", "sub", "mul", "div", "scale", "addscalar", "exp", "log", "sqrt", "tanh", "sigmoid", "square",
        "sum", "sumdim", "mean", "meandim", "max", "reshape", "reshape_strided", "gelu_linear", "gelu_linear_erf", "gelu_linear_residual", "permute", "transpose", "narrow", "select", "cat", "split", "index_select",
        "matmul", "matmul_broadcast", "matmul_transposed", "linear", "linear_nobias", "layernorm_linear", "layernorm_linear_bare", "layernorm_linear_residual", "linear_residual", "linear_residual_view", "contiguous", "unsqueeze",
        "softmax", "softmax_dim0", "logsoftmax", "layernorm", "layernorm_noaffine", "rmsnorm", "gelu_erf", "gelu_tanh", "relu",
        "silu", "swiglu", "dropout", "cross_entropy", "cross_entropy_smooth_ignore", "embedding", "attention", "attention_causal_gqa",
        "unfold", "unfold_patches", "unfold_strided_input",
    ];

    [Theory]
    [MemberData(nameof(Ops))]
    public void MatchesFiniteDifferences(string op)
    {
        var rng = new Generator(17);
        switch (op)
        {
            case "add": Check(x => x[0] + x[1], Leaf(rng, 2, 3, 4), Leaf(rng, 3, 1)); break;
            case "sub": Check(x => x[0] - x[1], Leaf(rng, 2, 1, 4), Leaf(rng, 3, 4)); break;
            case "mul": Check(x => x[0] * x[1], Leaf(rng, 2, 3, 4), Leaf(rng, 4)); break;
            case "div": Check(x => x[0] / x[1], Leaf(rng, 3, 4), Positive(rng, 3, 1)); break;
            case "scale": Check(x => x[0] * 3f, Leaf(rng, 5)); break;
            case "addscalar": Check(x => 2f - x[0], Leaf(rng, 5)); break;
            case "exp": Check(x => x[0].Exp(), Leaf(rng, 3, 4)); break;
            case "log": Check(x => x[0].Log(), Positive(rng, 3, 4)); break;
            case "sqrt": Check(x => x[0].Sqrt(), Positive(rng, 3, 4)); break;
            case "tanh": Check(x => x[0].Tanh(), Leaf(rng, 3, 4)); break;
            case "sigmoid": Check(x => x[0].Sigmoid(), Leaf(rng, 3, 4)); break;
            case "square": Check(x => x[0].Square(), Leaf(rng, 3, 4)); break;
            case "sum": Check(x => x[0].Sum(), Leaf(rng, 3, 4)); break;
            case "sumdim": Check(x => x[0].Sum(1), Leaf(rng, 2, 3, 4)); break;
            case "mean": Check(x => x[0].Mean(), Leaf(rng, 3, 4)); break;
            case "meandim": Check(x => x[0].Mean(-1, keepDim: true), Leaf(rng, 2, 3, 4)); break;
            case "max": Check(x => x[0].Max(1).Values, Leaf(rng, 3, 5)); break;
            case "unfold": Check(x => x[0].Unfold2d(3, 2, 1), Leaf(rng, 2, 2, 5, 4)); break;
            case "unfold_patches": Check(x => x[0].Unfold2d(2, 2), Leaf(rng, 1, 3, 4, 4)); break;
            case "unfold_strided_input": Check(x => x[0].Permute(0, 3, 1, 2).Unfold2d(2, 1, 1), Leaf(rng, 2, 3, 3, 2)); break;
            case "reshape": Check(x => x[0].Reshape(4, 6) * x[0].Reshape(4, 6), Leaf(rng, 2, 3, 4)); break;
            case "reshape_strided": Check(x => x[0].Narrow(2, 1, 4).Reshape(2, 3, 2, 2).Transpose(1, 2).Reshape(2, 2, 6) * x[1], Leaf(rng, 2, 3, 6), Leaf(rng, 2, 6)); break;
            case "permute": Check(x => x[0].Permute(2, 0, 1).Contiguous() * 2f, Leaf(rng, 2, 3, 4)); break;
            case "transpose": Check(x => x[0].Transpose(0, 1) * x[1], Leaf(rng, 3, 4), Leaf(rng, 4, 3)); break;
            case "narrow": Check(x => x[0].Narrow(1, 1, 2) * 2f, Leaf(rng, 3, 4)); break;
            case "select": Check(x => x[0].Select(0, 1) * 2f, Leaf(rng, 3, 4)); break;
            case "cat": Check(x => Tensor.Cat([x[0], x[1]], 1), Leaf(rng, 2, 3, 2), Leaf(rng, 2, 1, 2)); break;
            case "index_select": Check(x => x[0].IndexSelect(1, [2, 0, 2]) * 2f, Leaf(rng, 2, 3, 4)); break;
            case "split": Check(x => x[0].Split([1, 3], 1)[1] * 2f, Leaf(rng, 2, 4)); break;
            case "gelu_linear": Check(x => Tensor.GeluLinear(x[0], x[1], x[2], AttentionSharp.Kernels.GeluApproximation.Tanh), Leaf(rng, 2, 3, 5), Leaf(rng, 4, 5), Leaf(rng, 4)); break;
            case "gelu_linear_erf": Check(x => Tensor.GeluLinear(x[0], x[1], null, AttentionSharp.Kernels.GeluApproximation.None), Leaf(rng, 3, 5), Leaf(rng, 4, 5)); break;
            case "matmul": Check(x => x[0].MatMul(x[1]), Leaf(rng, 3, 5), Leaf(rng, 5, 4)); break;
            case "matmul_broadcast": Check(x => x[0].MatMul(x[1]), Leaf(rng, 2, 2, 3, 5), Leaf(rng, 2, 5, 4)); break;
            case "matmul_transposed": Check(x => x[0].MatMul(x[1].Transpose(-2, -1)), Leaf(rng, 2, 3, 5), Leaf(rng, 2, 4, 5)); break;
            case "layernorm_linear": Check(x => Tensor.LayerNormLinear(x[0], x[1], x[2], 1e-5f, x[3], x[4]), Leaf(rng, 2, 3, 5), Leaf(rng, 5), Leaf(rng, 5), Leaf(rng, 4, 5), Leaf(rng, 4)); break;
            case "layernorm_linear_residual": Check(x => Tensor.LayerNormLinear(x[0], x[1], null, 1e-5f, x[2], x[3], x[4]), Leaf(rng, 2, 3, 5), Leaf(rng, 5), Leaf(rng, 4, 5), Leaf(rng, 4), Leaf(rng, 2, 3, 4)); break;
            case "layernorm_linear_bare": Check(x => Tensor.LayerNormLinear(x[0], null, null, 1e-5f, x[1], null), Leaf(rng, 3, 6), Leaf(rng, 2, 6)); break;
            case "linear_residual": Check(x => Tensor.Linear(x[0], x[1], x[2], x[3]), Leaf(rng, 2, 3, 5), Leaf(rng, 4, 5), Leaf(rng, 4), Leaf(rng, 2, 3, 4)); break;
            case "linear_residual_view": Check(x => Tensor.Linear(x[0], x[1], null, x[2].Transpose(0, 1)), Leaf(rng, 3, 2, 5), Leaf(rng, 4, 5), Leaf(rng, 2, 3, 4)); break;
            case "gelu_linear_residual": Check(x => Tensor.GeluLinear(x[0], x[1], x[2], AttentionSharp.Kernels.GeluApproximation.Tanh, x[3]), Leaf(rng, 2, 3, 5), Leaf(rng, 4, 5), Leaf(rng, 4), Leaf(rng, 2, 3, 4)); break;
            case "linear": Check(x => Tensor.Linear(x[0], x[1], x[2]), Leaf(rng, 2, 3, 5), Leaf(rng, 4, 5), Leaf(rng, 4)); break;
            case "linear_nobias": Check(x => Tensor.Linear(x[0], x[1]), Leaf(rng, 3, 5), Leaf(rng, 4, 5)); break;
            case "contiguous": Check(x => x[0].Transpose(0, 1).Contiguous(), Leaf(rng, 3, 4)); break;
            case "unsqueeze": Check(x => x[0].Unsqueeze(1) * x[1], Leaf(rng, 3, 4), Leaf(rng, 5, 1)); break;
            case "softmax": Check(x => x[0].Softmax(-1), Leaf(rng, 3, 5)); break;
            case "softmax_dim0": Check(x => x[0].Softmax(0), Leaf(rng, 3, 5)); break;
            case "logsoftmax": Check(x => x[0].LogSoftmax(-1), Leaf(rng, 3, 5)); break;
            case "layernorm": Check(x => Tensor.LayerNorm(x[0], x[1], x[2]), Leaf(rng, 3, 6), Leaf(rng, 6), Leaf(rng, 6)); break;
            case "layernorm_noaffine": Check(x => Tensor.LayerNorm(x[0], null, null), Leaf(rng, 3, 6)); break;
            case "rmsnorm": Check(x => Tensor.RmsNorm(x[0], x[1]), Leaf(rng, 3, 6), Leaf(rng, 6)); break;
            case "gelu_erf": Check(x => x[0].Gelu(), Leaf(rng, 4, 5)); break;
            case "gelu_tanh": Check(x => x[0].Gelu(AttentionSharp.Kernels.GeluApproximation.Tanh), Leaf(rng, 4, 5)); break;
            case "relu": Check(x => x[0].Relu(), Leaf(rng, 4, 5)); break;
            case "silu": Check(x => x[0].Silu(), Leaf(rng, 4, 5)); break;
            case "swiglu": Check(x => Tensor.SwiGlu(x[0], x[1]), Leaf(rng, 4, 5), Leaf(rng, 4, 5)); break;
            case "dropout": Check(x => x[0].Dropout(0.3f, training: true, new Generator(5)), Leaf(rng, 4, 5)); break;
            case "cross_entropy": Check(x => Tensor.CrossEntropy(x[0], [1, 0, 4]), Leaf(rng, 3, 5)); break;
            case "cross_entropy_smooth_ignore": Check(x => Tensor.CrossEntropy(x[0], [1, -100, 4, 2], labelSmoothing: 0.2f), Leaf(rng, 4, 5)); break;
            case "embedding": Check(x => Tensor.Embedding(x[0], [2, 0, 2, 1], 2, 2), Leaf(rng, 3, 4)); break;
            case "attention":
                Check(x => Tensor.ScaledDotProductAttention(x[0], x[1], x[2]), Leaf(rng, 1, 2, 3, 4), Leaf(rng, 1, 2, 5, 4), Leaf(rng, 1, 2, 5, 4));
                break;
            case "attention_causal_gqa":
                Check(x => Tensor.ScaledDotProductAttention(x[0], x[1], x[2], new AttentionOptions { Causal = true }),
                    Leaf(rng, 1, 4, 3, 2), Leaf(rng, 1, 2, 3, 2), Leaf(rng, 1, 2, 3, 2));
                break;
            default: throw new ArgumentException(op);
        }
    }
}
