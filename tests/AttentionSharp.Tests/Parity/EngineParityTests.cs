using AttentionSharp.IO;
using GeluApproximation = AttentionSharp.Kernels.GeluApproximation;
using AttentionSharp.Tests.Support;
using AttentionSharp.Training;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.Parity;

/// <summary>
/// Every engine operation against real PyTorch (tests/fixtures/engine.safetensors): the output, and the gradient of
/// L = Σ w ⊙ output with respect to every input. The largest difference per tensor is printed.
/// </summary>
public class EngineParityTests(ITestOutputHelper output)
{
    // fp32 results of the same math in a different order (blocked sums, vectorised exp/erf) differ by a few ulps of the
    // largest intermediate; these bounds leave room for that and catch any real error.
    const double ForwardAbs = 1e-5, ForwardRel = 1e-5;
    const double GradientAbs = 5e-5, GradientRel = 1e-4;

    static readonly Lazy<SafetensorsFile> File = new(() => Fixtures.Open("engine.safetensors"));

    static readonly Dictionary<string, Func<Tensor[], int[][], Tensor>> Cases = new()
    {
        ["add_broadcast"] = (x, _) => x[0] + x[1],
        ["sub_broadcast"] = (x, _) => x[0] - x[1],
        ["mul_broadcast"] = (x, _) => x[0] * x[1],
        ["div_broadcast"] = (x, _) => x[0] / x[1],
        ["exp"] = (x, _) => x[0].Exp(),
        ["log"] = (x, _) => x[0].Log(),
        ["sqrt"] = (x, _) => x[0].Sqrt(),
        ["tanh"] = (x, _) => x[0].Tanh(),
        ["sigmoid"] = (x, _) => x[0].Sigmoid(),
        ["sum_dim1"] = (x, _) => x[0].Sum(1),
        ["mean_dim_last_keep"] = (x, _) => x[0].Mean(-1, keepDim: true),
        ["max_dim0"] = (x, _) => x[0].Max(0).Values,
        ["sum_all"] = (x, _) => x[0].Sum(),
        ["permute_reshape"] = (x, _) => x[0].Permute(2, 0, 1).Reshape(4, 6) * 2f,
        ["transpose_contig"] = (x, _) => x[0].Transpose(0, 1).Contiguous() * 3f,
        ["narrow"] = (x, _) => x[0].Narrow(1, 1, 3) * 2f,
        ["cat_dim1"] = (x, _) => Tensor.Cat([x[0], x[1]], 1),
        ["matmul_batched_broadcast"] = (x, _) => x[0].MatMul(x[1]),
        ["matmul_transposed_view"] = (x, _) => x[0].MatMul(x[1].Transpose(-2, -1)),
        ["linear"] = (x, _) => Tensor.Linear(x[0], x[1], x[2]),
        ["softmax"] = (x, _) => x[0].Softmax(-1),
        ["log_softmax"] = (x, _) => x[0].LogSoftmax(-1),
        ["layer_norm"] = (x, _) => Tensor.LayerNorm(x[0], x[1], x[2], 1e-5f),
        ["rms_norm"] = (x, _) => Tensor.RmsNorm(x[0], x[1], 1e-6f),
        ["gelu_erf"] = (x, _) => x[0].Gelu(),
        ["gelu_tanh"] = (x, _) => x[0].Gelu(GeluApproximation.Tanh),
        ["relu"] = (x, _) => x[0].Relu(),
        ["silu"] = (x, _) => x[0].Silu(),
        ["swiglu"] = (x, _) => Tensor.SwiGlu(x[0], x[1]),
        ["embedding"] = (x, ids) => Tensor.Embedding(x[0], ids[0], 2, 4),
        ["cross_entropy"] = (x, t) => Tensor.CrossEntropy(x[0], t[0]),
        ["cross_entropy_smooth"] = (x, t) => Tensor.CrossEntropy(x[0], t[0], labelSmoothing: 0.1f),
        ["unfold"] = (x, _) => x[0].Unfold2d(3, 2, 1),
        ["unfold_patches"] = (x, _) => x[0].Unfold2d(2, 2),
        ["conv2d"] = (x, _) => Conv2dOf(x[0], x[1], x[2]),
    };

    /// <summary>
    /// torch's F.conv2d(x, w, b, stride=2, padding=1) as Conv2d computes it: unfolded windows times the weight.
    /// </summary>
    static Tensor Conv2dOf(Tensor x, Tensor w, Tensor b)
    {
        int n = x.Size(0), cout = w.Size(0), ho = AttentionSharp.Kernels.Unfold.OutputSide(x.Size(2), 3, 2, 1),
            wo = AttentionSharp.Kernels.Unfold.OutputSide(x.Size(3), 3, 2, 1);
        return Tensor.Linear(x.Unfold2d(3, 2, 1), w.Reshape(cout, -1), b).Transpose(1, 2).Reshape(n, cout, ho, wo);
    }

    public static TheoryData<string> CaseNames() => [.. Cases.Keys];

    [Fact]
    public void EveryFixtureCaseIsTested()
    {
        var inFile = File.Value.Metadata["cases"].Split(',');
        Assert.Empty(inFile.Except(Cases.Keys));
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void MatchesPyTorch(string name)
    {
        var file = File.Value;
        var floats = new List<(int Index, Tensor Tensor)>();
        var ints = new List<int[]>();
        for (int i = 0; file.Contains($"{name}.in.{i}"); i++)
        {
            var entry = file.GetEntry($"{name}.in.{i}");
            if (entry.DType == SafetensorsDType.I64) ints.Add(file.Ints(entry.Name));
            else floats.Add((i, file.Tensor(entry.Name, requiresGrad: file.Contains($"{name}.grad.{i}"))));
        }
        var result = Cases[name]([.. floats.Select(f => f.Tensor)], [.. ints]);
        var expected = file.Tensor($"{name}.out");
        double diff = TensorAssert.Close(expected.ToArray(), result.ToArray(), ForwardAbs, ForwardRel, $"{name} output");
        Assert.Equal(expected.Shape.ToArray(), result.Shape.ToArray());
        output.WriteLine($"{name}.out: max |Δ| = {diff:G3}");

        (result * file.Tensor($"{name}.w")).Sum().Backward();
        foreach (var (index, tensor) in floats)
        {
            if (!file.Contains($"{name}.grad.{index}")) continue;
            var g = file.Tensor($"{name}.grad.{index}");
            double gd = TensorAssert.Close(g.ToArray(), tensor.Grad!.ToArray(), GradientAbs, GradientRel, $"{name} gradient of input {index}");
            output.WriteLine($"{name}.grad.{index}: max |Δ| = {gd:G3}");
        }
    }

    [Fact]
    public void AdamWStepsMatchTorchOptim()
    {
        var file = File.Value;
        var p = file.Tensor("adamw.p0", requiresGrad: true);
        var opt = new AdamW([p], lr: 0.01f, beta1: 0.9f, beta2: 0.95f, eps: 1e-8f, weightDecay: 0.1f);
        for (int step = 0; step < 3; step++)
        {
            p.Grad = file.Tensor($"adamw.g{step}");
            opt.Step();
            double d = TensorAssert.Close(file.ReadFloat32($"adamw.p{step + 1}"), p.ToArray(), 1e-6, 1e-6, $"AdamW step {step + 1}");
            output.WriteLine($"adamw.p{step + 1}: max |Δ| = {d:G3}");
        }
    }

    [Fact]
    public void SgdNesterovStepsMatchTorchOptim()
    {
        var file = File.Value;
        var p = file.Tensor("adamw.p0", requiresGrad: true);
        var opt = new Sgd([p], lr: 0.05f, momentum: 0.9f, dampening: 0f, weightDecay: 0.01f, nesterov: true);
        for (int step = 0; step < 3; step++)
        {
            p.Grad = file.Tensor($"adamw.g{step}");
            opt.Step();
            double d = TensorAssert.Close(file.ReadFloat32($"sgd.p{step + 1}"), p.ToArray(), 1e-6, 1e-6, $"SGD step {step + 1}");
            output.WriteLine($"sgd.p{step + 1}: max |Δ| = {d:G3}");
        }
    }

    [Fact]
    public void GlobalNormClippingMatchesTorch()
    {
        var file = File.Value;
        var a = file.Tensor("clip.a", requiresGrad: true); var b = file.Tensor("clip.b", requiresGrad: true);
        a.Grad = a.Copy(); b.Grad = b.Copy();
        float norm = GradientClipping.ClipGradNorm([a, b], 1f);
        Assert.Equal(file.ReadFloat32("clip.norm")[0], norm, 4);
        TensorAssert.Close(file.ReadFloat32("clip.a_clipped"), a.Grad.ToArray(), 1e-6, 1e-5, "clipped a");
        TensorAssert.Close(file.ReadFloat32("clip.b_clipped"), b.Grad.ToArray(), 1e-6, 1e-5, "clipped b");
    }
}
