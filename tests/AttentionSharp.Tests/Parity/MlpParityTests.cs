using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;
using AttentionSharp.Training;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.Parity;

/// <summary>
/// A two-layer MLP classifier written with the public API, against the same network in PyTorch
/// (tests/fixtures/mlp.safetensors): logits, loss, every gradient, and the losses of six AdamW steps.
/// </summary>
public class MlpParityTests(ITestOutputHelper output)
{
    sealed class Mlp : Module
    {
        public Mlp(Generator rng)
        {
            Fc1 = RegisterModule("fc1", new Linear(10, 32, rng));
            Fc2 = RegisterModule("fc2", new Linear(32, 5, rng));
        }

        public Linear Fc1 { get; }
        public Linear Fc2 { get; }

        public Tensor Forward(Tensor x) => Fc2.Forward(Fc1.Forward(x).Gelu()); // (N, 10) → (N, 32) → (N, 5)
    }

    [Fact]
    public void LogitsLossGradientsAndTrainingMatchPyTorch()
    {
        var file = Fixtures.Open("mlp.safetensors");
        var model = new Mlp(new Generator(0));
        model.LoadStateDict(model.StateDict().Keys.ToDictionary(k => k, k => file.Tensor("init." + k)));
        var x = file.Tensor("x");
        var y = file.Ints("y");

        var logits = model.Forward(x);
        var loss = Tensor.CrossEntropy(logits, y);
        Report("logits", TensorAssert.Close(file.ReadFloat32("logits"), logits.ToArray(), 1e-5, 1e-5, "logits"));
        Report("loss", TensorAssert.Close(file.ReadFloat32("loss"), [loss.Item()], 1e-6, 1e-6, "loss"));
        loss.Backward();
        foreach (var (name, p) in model.NamedParameters())
            Report("grad." + name, TensorAssert.Close(file.ReadFloat32("grad." + name), p.Grad!.ToArray(), 1e-6, 1e-4, "gradient of " + name));

        // Six AdamW steps from the same start: the losses follow PyTorch's.
        model.LoadStateDict(model.StateDict().Keys.ToDictionary(k => k, k => file.Tensor("init." + k)));
        var optimizer = new AdamW(model.Parameters(), lr: 1e-2f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f, weightDecay: 0.01f);
        var expected = file.ReadFloat32("losses");
        var losses = new float[expected.Length];
        for (int step = 0; step < expected.Length; step++)
        {
            optimizer.ZeroGrad();
            var l = Tensor.CrossEntropy(model.Forward(x), y);
            l.Backward();
            losses[step] = l.Item();
            optimizer.Step();
        }
        Report("losses", TensorAssert.Close(expected, losses, 1e-5, 1e-5, "losses over AdamW steps"));
        Assert.True(losses[^1] < losses[0] - 0.1f, $"the loss should fall: {string.Join(", ", losses)}");
    }

    void Report(string name, double diff) => output.WriteLine($"{name}: max |Δ| = {diff:G3}");
}
