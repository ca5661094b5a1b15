using AttentionSharp.IO;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.Parity;

/// <summary>
/// MultiHeadAttention, TransformerEncoderLayer and TransformerDecoderLayer against torch.nn's modules with the same
/// weights (tests/fixtures/layers.safetensors): outputs, per-head attention weights, and the gradients of L = Σ w ⊙ out
/// with respect to every input and every parameter. The largest difference per tensor is printed.
/// </summary>
public class LayersParityTests(ITestOutputHelper output)
{
    // A layer chains about a dozen fp32 ops (projections, softmax, LayerNorm, GELU), each of which may round differently
    // from PyTorch's (blocked sums, vectorised exp/erf); the differences seen are below 1e-6 in outputs and gradients.
    // The bounds leave a factor of ten for other CPUs' SIMD widths and stay far below any real error (a wrong mask,
    // scale or transpose moves values by ~1e-1).
    const double ForwardAbs = 1e-5, ForwardRel = 1e-5;
    const double GradientAbs = 1e-5, GradientRel = 1e-4;

    const int Width = 16, Heads = 4, FeedForwardWidth = 32;

    static readonly Lazy<SafetensorsFile> File = new(() => Fixtures.Open("layers.safetensors"));

    static readonly string[] CaseList =
    [
        "mha_self", "mha_causal", "mha_padding", "mha_additive", "mha_cross",
        "enc_post_relu", "enc_post_gelu", "enc_pre_relu", "enc_pre_gelu",
        "dec_post_relu", "dec_post_gelu", "dec_pre_relu", "dec_pre_gelu",
    ];

    public static TheoryData<string> Cases() => [.. CaseList];

    [Fact]
    public void EveryFixtureCaseIsTested() =>
        Assert.Equal(File.Value.Metadata["cases"].Split(',').Order(), CaseList.Order());

    /// <summary>Our parameter name for torch's: the feed-forward pair lives under "ffn." here.</summary>
    static string OurName(string torchName) =>
        torchName.StartsWith("linear1.", StringComparison.Ordinal) || torchName.StartsWith("linear2.", StringComparison.Ordinal) ? "ffn." + torchName : torchName;

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesPyTorch(string name)
    {
        var file = File.Value;
        string paramPrefix = $"{name}.param.";
        var torchNames = file.Entries.Select(e => e.Name).Where(n => n.StartsWith(paramPrefix, StringComparison.Ordinal)).Select(n => n[paramPrefix.Length..]).ToList();

        var x = file.Tensor($"{name}.x", requiresGrad: true);
        var memory = file.Contains($"{name}.memory") ? file.Tensor($"{name}.memory", requiresGrad: true) : null;
        var pad = file.Contains($"{name}.pad") ? new AttentionMask { KeyPadding = Flags(file, $"{name}.pad") } : null;
        var memPad = file.Contains($"{name}.mempad") ? new AttentionMask { KeyPadding = Flags(file, $"{name}.mempad") } : null;

        var rng = new Generator(1);
        Module module;
        Tensor result; Tensor? weights = null;
        if (name.StartsWith("mha_", StringComparison.Ordinal))
        {
            var mha = new MultiHeadAttention(new MultiHeadAttentionConfig { Width = Width, Heads = Heads }, rng);
            module = mha;
            Load(module, file, paramPrefix, torchNames);
            var mask = name switch
            {
                "mha_causal" => AttentionMask.CausalOnly,
                "mha_padding" => pad,
                "mha_additive" => new AttentionMask { Additive = file.Tensor($"{name}.mask") },
                "mha_cross" => memPad,
                _ => null,
            };
            (result, weights) = mha.ForwardWithWeights(x, memory, mask);
        }
        else
        {
            var config = new TransformerConfig
            {
                Width = Width, Heads = Heads, FeedForwardWidth = FeedForwardWidth, Dropout = 0f,
                NormFirst = name.Contains("_pre_", StringComparison.Ordinal),
                Activation = name.EndsWith("_gelu", StringComparison.Ordinal) ? FeedForwardActivation.Gelu : FeedForwardActivation.Relu,
                PositionalEncoding = PositionalEncodingKind.None,
            };
            if (name.StartsWith("enc_", StringComparison.Ordinal))
            {
                var layer = new TransformerEncoderLayer(config, rng);
                module = layer;
                Load(module, file, paramPrefix, torchNames);
                result = layer.Forward(x, pad);
            }
            else
            {
                var layer = new TransformerDecoderLayer(config, rng);
                module = layer;
                Load(module, file, paramPrefix, torchNames);
                result = layer.Forward(x, memory!, memoryMask: memPad);
            }
        }

        Compare(file.Tensor($"{name}.out"), result, ForwardAbs, ForwardRel, $"{name}.out");
        if (weights is not null) Compare(file.Tensor($"{name}.weights"), weights, ForwardAbs, ForwardRel, $"{name}.weights");

        (result * file.Tensor($"{name}.w")).Sum().Backward();
        Compare(file.Tensor($"{name}.grad.x"), x.Grad!, GradientAbs, GradientRel, $"{name}.grad.x");
        if (memory is not null) Compare(file.Tensor($"{name}.grad.memory"), memory.Grad!, GradientAbs, GradientRel, $"{name}.grad.memory");
        var ours = module.StateDict();
        foreach (var torchName in torchNames)
            Compare(file.Tensor($"{name}.grad.param.{torchName}"), ours[OurName(torchName)].Grad!, GradientAbs, GradientRel, $"{name}.grad.{torchName}");
    }

    static void Load(Module module, SafetensorsFile file, string prefix, List<string> torchNames)
    {
        var state = torchNames.ToDictionary(OurName, n => file.Tensor(prefix + n));
        module.LoadStateDict(state);
    }

    static bool[] Flags(SafetensorsFile file, string name) => [.. file.Ints(name).Select(v => v != 0)];

    void Compare(Tensor expected, Tensor actual, double atol, double rtol, string what)
    {
        Assert.Equal(expected.Shape.ToArray(), actual.Shape.ToArray());
        double d = TensorAssert.Close(expected.ToArray(), actual.ToArray(), atol, rtol, what);
        output.WriteLine($"{what}: max |Δ| = {d:G3}");
    }
}
