using AttentionSharp.Models;
using AttentionSharp.Tests.Support;
using AttentionSharp.Training;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.Parity;

/// <summary>
/// Our GPT against a nanoGPT-style GPT-2 in PyTorch (tests/fixtures/gpt.safetensors) with the same weights: logits,
/// loss, the gradient of every parameter (the tied wte gets both of its uses), and five AdamW steps' losses.
/// </summary>
public class GptParityTests(ITestOutputHelper output)
{
    // Two layers of fp32 attention, LayerNorm and GELU in another summation order: a few ulps per op, compounded.
    const double LogitsAbs = 2e-5, LossAbs = 2e-6, GradientAbs = 2e-6, GradientRel = 1e-3, LossesAbs = 2e-5;

    static readonly GptConfig Config = new() { VocabSize = 23, ContextLength = 8, Layers = 2, Heads = 2, Width = 16 };

    static Gpt LoadModel(AttentionSharp.IO.SafetensorsFile file)
    {
        var model = new Gpt(Config, new Generator(0));
        model.LoadStateDict(model.StateDict().Keys.ToDictionary(k => k, k => file.Tensor("init." + k)));
        return model;
    }

    [Fact]
    public void LogitsLossAndEveryGradientMatchPyTorch()
    {
        var file = Fixtures.Open("gpt.safetensors");
        var model = LoadModel(file);
        var x = file.Ints("x"); var y = file.Ints("y");
        var logits = model.Forward(x, 2, 8);
        var loss = model.Loss(logits, y);
        Report("logits", TensorAssert.Close(file.ReadFloat32("logits"), logits.ToArray(), LogitsAbs, 1e-5, "logits"));
        Report("loss", TensorAssert.Close(file.ReadFloat32("loss"), [loss.Item()], LossAbs, 1e-6, "loss"));
        loss.Backward();
        int checkedCount = 0;
        foreach (var (name, p) in model.NamedParameters())
        {
            Report("grad." + name, TensorAssert.Close(file.ReadFloat32("grad." + name), p.Grad!.ToArray(), GradientAbs, GradientRel, "gradient of " + name));
            checkedCount++;
        }
        Assert.Equal(2 + 12 * 2 + 2, checkedCount);
    }

    [Fact]
    public void FiveAdamWStepsFollowPyTorch()
    {
        var file = Fixtures.Open("gpt.safetensors");
        var model = LoadModel(file);
        var x = file.Ints("x"); var y = file.Ints("y");
        var optimizer = new AdamW(model.ParameterGroups(), lr: 1e-2f, beta1: 0.9f, beta2: 0.95f, eps: 1e-8f, weightDecay: 0.1f);
        var expected = file.ReadFloat32("losses");
        var losses = new float[expected.Length];
        for (int step = 0; step < losses.Length; step++)
        {
            optimizer.ZeroGrad();
            var loss = model.Loss(model.Forward(x, 2, 8), y);
            loss.Backward();
            losses[step] = loss.Item();
            optimizer.Step();
        }
        Report("losses", TensorAssert.Close(expected, losses, LossesAbs, 1e-5, "losses over five AdamW steps"));
    }

    void Report(string name, double diff) => output.WriteLine($"{name}: max |Δ| = {diff:G3}");
}
