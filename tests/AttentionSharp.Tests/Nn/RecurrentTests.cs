using AttentionSharp.Autograd;
using AttentionSharp.Kernels;
using AttentionSharp.Nn;
using static AttentionSharp.Tests.Autograd.GradCheckTests;
using AdamW = AttentionSharp.Training.AdamW;

namespace AttentionSharp.Tests.Nn;

public class RecurrentTests
{
    static RecurrentBase Create(string kind, RecurrentConfig config, Generator rng) => kind switch
    {
        "rnn" => new Rnn(config, rng),
        "lstm" => new Lstm(config, rng),
        _ => new Gru(config, rng),
    };

    /// <summary>The module's output, h_n and (LSTM) c_n, flattened into one tensor so a check covers all three.</summary>
    static Tensor Flat(RecurrentBase module, Tensor x, Tensor? h0, Tensor? c0)
    {
        var parts = module switch
        {
            Rnn rnn => Pair(rnn.Forward(x, h0)),
            Gru gru => Pair(gru.Forward(x, h0)),
            Lstm lstm => Triple(lstm.Forward(x, h0, c0)),
            _ => throw new ArgumentException(module.GetType().Name),
        };
        return Tensor.Cat(parts.Select(p => p.Reshape(-1)).ToList(), 0);

        static Tensor[] Pair((Tensor Output, Tensor HN) r) => [r.Output, r.HN];
        static Tensor[] Triple((Tensor Output, Tensor HN, Tensor CN) r) => [r.Output, r.HN, r.CN];
    }

    public static TheoryData<string, bool, int, bool> Stacks()
    {
        var data = new TheoryData<string, bool, int, bool>();
        foreach (var kind in new[] { "rnn", "lstm", "gru" })
        {
            data.Add(kind, false, 1, true);
            data.Add(kind, true, 2, true);
            data.Add(kind, true, 2, false);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Stacks))]
    public void ModuleGradientsMatchFiniteDifferences(string kind, bool bidirectional, int layers, bool batchFirst)
    {
        var rng = new Generator(23);
        const int B = 2, T = 3, I = 3, H = 4;
        var config = new RecurrentConfig { InputSize = I, HiddenSize = H, Layers = layers, Bidirectional = bidirectional, BatchFirst = batchFirst };
        var module = Create(kind, config, rng);
        int states = layers * config.Directions;
        var x = batchFirst ? Leaf(rng, B, T, I) : Leaf(rng, T, B, I);
        var h0 = Leaf(rng, states, B, H);
        var c0 = kind == "lstm" ? Leaf(rng, states, B, H) : null;
        Tensor[] inputs = [x, h0, .. c0 is null ? Array.Empty<Tensor>() : [c0], .. module.Parameters()];
        var report = GradCheck.Check(_ => Flat(module, x, h0, c0), inputs);
        Assert.True(report.Passed, report.ToString());
    }

    public static TheoryData<RecurrentCell, bool, bool> Ops()
    {
        var data = new TheoryData<RecurrentCell, bool, bool>();
        foreach (var cell in new[] { RecurrentCell.Tanh, RecurrentCell.Lstm, RecurrentCell.Gru })
        {
            data.Add(cell, false, true);
            data.Add(cell, true, false);
        }
        return data;
    }

    /// <summary>The op alone, with and without initial states and biases, forwards and reversed; T = 1 and odd H included.</summary>
    [Theory]
    [MemberData(nameof(Ops))]
    public void OpGradientsMatchFiniteDifferences(RecurrentCell cell, bool reverse, bool withStatesAndBias)
    {
        var rng = new Generator(5);
        int g = Recurrent.GateCount(cell);
        foreach (var (t, b, i, h) in new[] { (1, 2, 3, 5), (4, 1, 2, 3) })
        {
            var x = Leaf(rng, t, b, i);
            var wIh = Leaf(rng, g * h, i);
            var wHh = Leaf(rng, g * h, h);
            Tensor? h0 = withStatesAndBias ? Leaf(rng, b, h) : null;
            Tensor? c0 = withStatesAndBias && cell == RecurrentCell.Lstm ? Leaf(rng, b, h) : null;
            Tensor? bIh = withStatesAndBias ? Leaf(rng, g * h) : null;
            Tensor? bHh = withStatesAndBias ? Leaf(rng, g * h) : null;
            Tensor[] inputs = [x, wIh, wHh, .. new[] { h0, c0, bIh, bHh }.OfType<Tensor>()];
            var report = GradCheck.Check(_ =>
            {
                var (o, hn, cn) = Tensor.Recurrent(cell, x, h0, c0, wIh, wHh, bIh, bHh, reverse);
                Tensor[] parts = cn is null ? [o.Reshape(-1), hn.Reshape(-1)] : [o.Reshape(-1), hn.Reshape(-1), cn.Reshape(-1)];
                return Tensor.Cat(parts, 0);
            }, inputs);
            Assert.True(report.Passed, $"T={t} B={b} I={i} H={h}: {report}");
        }
    }

    [Fact]
    public void ParametersHavePyTorchNamesShapesAndBounds()
    {
        var lstm = new Lstm(new RecurrentConfig { InputSize = 3, HiddenSize = 5, Layers = 2, Bidirectional = true }, new Generator(1));
        var shapes = lstm.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Shape.ToArray());
        Assert.Equal(
        [
            "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
            "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
            "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
            "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse",
        ], shapes.Keys);
        Assert.Equal([20, 3], shapes["weight_ih_l0"]);
        Assert.Equal([20, 10], shapes["weight_ih_l1_reverse"]);
        Assert.Equal([20, 5], shapes["weight_hh_l1"]);
        Assert.Equal([20], shapes["bias_hh_l0_reverse"]);
        float bound = 1f / MathF.Sqrt(5);
        Assert.All(lstm.Parameters().SelectMany(p => p.ToArray()), v => Assert.InRange(v, -bound, bound));

        var gru = new Gru(new RecurrentConfig { InputSize = 3, HiddenSize = 5, Bias = false }, new Generator(1));
        Assert.Equal(["weight_ih_l0", "weight_hh_l0"], gru.NamedParameters().Select(p => p.Name));
        Assert.Equal([15, 3], gru.StateDict()["weight_ih_l0"].Shape.ToArray());
    }

    [Fact]
    public void ShapesFollowPyTorchAndStatesDefaultToZero()
    {
        var config = new RecurrentConfig { InputSize = 3, HiddenSize = 4, Layers = 2, Bidirectional = true };
        var rnn = new Rnn(config, new Generator(2));
        var x = Tensor.Uniform(new Generator(3), -1, 1, 2, 5, 3);
        var (output, hn) = rnn.Forward(x);
        Assert.Equal([2, 5, 8], output.Shape.ToArray());
        Assert.Equal([4, 2, 4], hn.Shape.ToArray());
        var (same, _) = rnn.Forward(x, Tensor.Zeros(4, 2, 4));
        Assert.Equal(output.ToArray(), same.ToArray());
        // h_n of the last layer: forward direction = output at t = T − 1, backward direction = output at t = 0.
        for (int b = 0; b < 2; b++)
            for (int j = 0; j < 4; j++)
            {
                Assert.Equal(output[b, 4, j], hn[2, b, j]);
                Assert.Equal(output[b, 0, 4 + j], hn[3, b, j]);
            }
        var ex = Assert.Throws<ArgumentException>(() => rnn.Forward(x, Tensor.Zeros(2, 2, 4)));
        Assert.Contains("(4, 2, 4)", ex.Message);
        Assert.Throws<ArgumentException>(() => new RecurrentConfig { Layers = 0 }.Validate());
    }

    [Fact]
    public void InferenceUnderNoGradRecordsNothingAndGivesTheSameValues()
    {
        var gru = new Gru(new RecurrentConfig { InputSize = 3, HiddenSize = 6, Layers = 2, Dropout = 0.5f }, new Generator(4));
        gru.Eval();
        var x = Tensor.Uniform(new Generator(5), -1, 1, 2, 4, 3);
        var (recorded, _) = gru.Forward(x);
        Assert.NotNull(recorded.GradFn);
        using (GradMode.NoGrad())
        using (TensorScope.Begin())
        {
            var (output, hn) = gru.Forward(x);
            Assert.Null(output.GradFn);
            Assert.Null(hn.GradFn);
            Assert.Equal(recorded.ToArray(), output.ToArray());
        }
    }

    /// <summary>
    /// The task recurrence exists for: read a token, hold it through several distractors, and emit it at the end. An LSTM
    /// that cannot carry state stays at the chance loss ln V; a working one gets well below it within a few dozen steps.
    /// </summary>
    [Fact]
    public void SmallLstmLearnsToCopyATokenFromSeveralStepsBack()
    {
        const int V = 4, T = 6, B = 32, H = 16, Steps = 80;
        var rng = new Generator(11);
        var lstm = new Lstm(new RecurrentConfig { InputSize = V, HiddenSize = H }, rng);
        var head = new Linear(H, V, rng);
        var optimizer = new AdamW(lstm.Parameters().Concat(head.Parameters()), lr: 3e-2f, weightDecay: 0f);
        var data = new Generator(12);
        var losses = new List<float>();
        for (int step = 0; step < Steps; step++)
        {
            using var scope = TensorScope.Begin();
            var x = Tensor.Zeros(B, T, V);
            var targets = new int[B];
            for (int b = 0; b < B; b++)
            {
                // The token to copy comes first; T − 1 random distractors follow.
                targets[b] = data.NextInt(V);
                x[b, 0, targets[b]] = 1f;
                for (int t = 1; t < T; t++) x[b, t, data.NextInt(V)] = 1f;
            }
            var (output, _, _) = lstm.Forward(x);
            var logits = head.Forward(output.Select(1, T - 1)); // (B, V)
            var loss = Tensor.CrossEntropy(logits, targets);
            lstm.ZeroGrad(); head.ZeroGrad();
            loss.Backward();
            optimizer.Step();
            losses.Add(loss.Item());
        }
        // Means over ten batches, so one lucky or unlucky batch decides nothing.
        float first = losses.Take(10).Average(), last = losses.TakeLast(10).Average();
        Assert.InRange(first, 1.2f, 1.6f);    // chance: ln 4 ≈ 1.386
        Assert.True(last < 0.1f, $"loss fell only from {first} to {last} in {Steps} steps: {string.Join(", ", losses.Select(l => l.ToString("F3")))}");
    }
}
