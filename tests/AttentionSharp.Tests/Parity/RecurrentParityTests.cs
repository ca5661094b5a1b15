using AttentionSharp.IO;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.Parity;

/// <summary>
/// Rnn, Lstm and Gru against torch.nn.RNN, LSTM and GRU with the same weights (tests/fixtures/recurrent.safetensors):
/// two layers, batch_first, one and two directions, given h0 (and c0). Outputs, h_n, c_n and the gradients of
/// L = Σ w ⊙ output + Σ w_hn ⊙ h_n [+ Σ w_cn ⊙ c_n] with respect to x, h0, c0 and every parameter. The largest difference
/// per tensor is printed.
/// </summary>
public class RecurrentParityTests(ITestOutputHelper output)
{
    // Five steps of two layers in fp32: GEMMs summed in another order than PyTorch's and the vectorised σ/tanh (≈ 2e-7)
    // leave differences near 1e-7 in outputs and a few 1e-7 in gradients summed through time. The bounds leave a factor
    // of ten or more and stay far below any real error (a swapped gate or a missing bias moves values by ~1e-1).
    const double ForwardAbs = 1e-5, ForwardRel = 1e-5;
    const double GradientAbs = 1e-5, GradientRel = 1e-4;

    const int InputSize = 3, HiddenSize = 5, Layers = 2;

    static readonly Lazy<SafetensorsFile> File = new(() => Fixtures.Open("recurrent.safetensors"));

    static readonly string[] CaseList = ["rnn_uni", "rnn_bi", "lstm_uni", "lstm_bi", "gru_uni", "gru_bi"];

    public static TheoryData<string> Cases() => [.. CaseList];

    [Fact]
    public void EveryFixtureCaseIsTested() =>
        Assert.Equal(File.Value.Metadata["cases"].Split(',').Order(), CaseList.Order());

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesPyTorch(string name)
    {
        var file = File.Value;
        string prefix = $"{name}.param.";
        var state = file.Entries.Select(e => e.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(n => n[prefix.Length..], n => file.Tensor(n));
        var config = new RecurrentConfig
        {
            InputSize = InputSize, HiddenSize = HiddenSize, Layers = Layers, BatchFirst = true, Bidirectional = name.EndsWith("_bi", StringComparison.Ordinal),
        };
        var rng = new Generator(1);
        var x = file.Tensor($"{name}.x", requiresGrad: true);
        var h0 = file.Tensor($"{name}.h0", requiresGrad: true);
        Tensor? c0 = null;
        Module? module = null;
        Tensor result, hn; Tensor? cn = null;
        T Load<T>(T m) where T : Module
        {
            m.LoadStateDict(state);
            module = m;
            return m;
        }
        switch (name[..name.IndexOf('_')])
        {
            case "rnn": (result, hn) = Load(new Rnn(config, rng)).Forward(x, h0); break;
            case "gru": (result, hn) = Load(new Gru(config, rng)).Forward(x, h0); break;
            default:
                c0 = file.Tensor($"{name}.c0", requiresGrad: true);
                Tensor c;
                (result, hn, c) = Load(new Lstm(config, rng)).Forward(x, h0, c0);
                cn = c;
                break;
        }

        Compare(file.Tensor($"{name}.out"), result, ForwardAbs, ForwardRel, $"{name}.out");
        Compare(file.Tensor($"{name}.hn"), hn, ForwardAbs, ForwardRel, $"{name}.hn");
        if (cn is not null) Compare(file.Tensor($"{name}.cn"), cn, ForwardAbs, ForwardRel, $"{name}.cn");

        var loss = (result * file.Tensor($"{name}.w")).Sum() + (hn * file.Tensor($"{name}.w_hn")).Sum();
        if (cn is not null) loss = loss + (cn * file.Tensor($"{name}.w_cn")).Sum();
        loss.Backward();
        Compare(file.Tensor($"{name}.grad.x"), x.Grad!, GradientAbs, GradientRel, $"{name}.grad.x");
        Compare(file.Tensor($"{name}.grad.h0"), h0.Grad!, GradientAbs, GradientRel, $"{name}.grad.h0");
        if (c0 is not null) Compare(file.Tensor($"{name}.grad.c0"), c0.Grad!, GradientAbs, GradientRel, $"{name}.grad.c0");
        var ours = module!.StateDict();
        Assert.Equal(state.Keys.Order(), ours.Keys.Order());
        foreach (var torchName in state.Keys)
            Compare(file.Tensor($"{name}.grad.param.{torchName}"), ours[torchName].Grad!, GradientAbs, GradientRel, $"{name}.grad.{torchName}");
    }

    void Compare(Tensor expected, Tensor actual, double atol, double rtol, string what)
    {
        Assert.Equal(expected.Shape.ToArray(), actual.Shape.ToArray());
        double d = TensorAssert.Close(expected.ToArray(), actual.ToArray(), atol, rtol, what);
        output.WriteLine($"{what}: max |Δ| = {d:G3}");
    }
}
