using AttentionSharp.IO;
using AttentionSharp.Tests.Support;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.Parity;

/// <summary>
/// Scaled dot-product attention, plain and flash, against PyTorch's softmax(q·kᵀ·scale + mask)·v written out by hand
/// (tests/fixtures/attention.safetensors): the output and the gradients of L = Σ w ⊙ output with respect to q, k and v.
/// The largest difference per tensor is printed.
/// </summary>
public class AttentionParityTests(ITestOutputHelper output)
{
    // Sums over up to 90 keys and 64 channels in a different order (tiles, vectorised exp): a few ulps of O(1) values.
    const double ForwardAbs = 1e-5, ForwardRel = 1e-5;
    const double GradientAbs = 5e-5, GradientRel = 1e-4;

    static readonly Lazy<SafetensorsFile> File = new(() => Fixtures.Open("attention.safetensors"));

    static readonly Dictionary<string, Func<SafetensorsFile, AttentionOptions>> Cases = new()
    {
        ["causal"] = _ => new AttentionOptions { Causal = true },
        ["plain"] = _ => new AttentionOptions(),
        ["padding"] = f => new AttentionOptions { KeyPadding = f.Ints("padding.flags").Select(x => x != 0).ToArray() },
        ["additive"] = f => new AttentionOptions { AdditiveMask = f.Tensor("additive.mask"), Scale = 0.3f },
        ["gqa"] = _ => new AttentionOptions { Causal = true },
        ["cross"] = _ => new AttentionOptions(),
        ["cache"] = _ => new AttentionOptions { Causal = true },
    };

    public static TheoryData<string, AttentionImplementation> CaseNames()
    {
        var data = new TheoryData<string, AttentionImplementation>();
        foreach (var name in Cases.Keys)
        {
            data.Add(name, AttentionImplementation.Plain);
            data.Add(name, AttentionImplementation.Flash);
        }
        return data;
    }

    [Fact]
    public void EveryFixtureCaseIsTested()
    {
        var inFile = File.Value.Metadata["cases"].Split(',');
        Assert.Empty(inFile.Except(Cases.Keys));
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void MatchesPyTorch(string name, AttentionImplementation implementation)
    {
        var file = File.Value;
        var inputs = Enumerable.Range(0, 3).Select(i => file.Tensor($"{name}.in.{i}", requiresGrad: true)).ToArray();
        var options = Cases[name](file) with { Implementation = implementation };
        var result = Tensor.ScaledDotProductAttention(inputs[0], inputs[1], inputs[2], options);
        var expected = file.Tensor($"{name}.out");
        Assert.Equal(expected.Shape.ToArray(), result.Shape.ToArray());
        double diff = TensorAssert.Close(expected.ToArray(), result.ToArray(), ForwardAbs, ForwardRel, $"{name} {implementation} output");
        output.WriteLine($"{name} ({implementation}).out: max |Δ| = {diff:G3}");

        (result * file.Tensor($"{name}.w")).Sum().Backward();
        string[] names = ["q", "k", "v"];
        for (int i = 0; i < 3; i++)
        {
            var g = file.Tensor($"{name}.grad.{i}");
            double gd = TensorAssert.Close(g.ToArray(), inputs[i].Grad!.ToArray(), GradientAbs, GradientRel, $"{name} {implementation} gradient of {names[i]}");
            output.WriteLine($"{name} ({implementation}).grad.{names[i]}: max |Δ| = {gd:G3}");
        }
    }
}
