using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class RecurrentTests
{
    // Hidden states are bounded by 1; float GEMMs over ≤ 64 terms and the vectorised σ/tanh (≈ 2e-7) differ from the
    // double twin by a few 1e-7 per step, and T ≤ 6 steps compound that.
    const double ValueAbsTol = 1e-5, ValueRelTol = 1e-5;
    // Weight gradients sum T·B outer products in float; the twin sums them in double.
    const double GradientAbsTol = 5e-5, GradientRelTol = 1e-4;

    /// <summary>(T, B, I, H): T = 1, odd sizes, H below, between and above the 8- and 16-float register widths.</summary>
    static readonly (int T, int B, int I, int H)[] Shapes =
    [
        (1, 1, 1, 1), (1, 3, 5, 7), (2, 1, 4, 8), (4, 2, 3, 17), (3, 5, 7, 33), (6, 2, 9, 16),
    ];

    public static TheoryData<RecurrentCell, bool> Cells()
    {
        var data = new TheoryData<RecurrentCell, bool>();
        foreach (var cell in new[] { RecurrentCell.Tanh, RecurrentCell.Lstm, RecurrentCell.Gru })
            foreach (bool reverse in new[] { false, true })
                data.Add(cell, reverse);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public void MatchesReference(RecurrentCell cell, bool reverse)
    {
        foreach (var (t, b, i, h) in Shapes)
            foreach (bool withStates in new[] { true, false })
                Compare(cell, reverse, t, b, i, h, withStates, withBias: withStates);
    }

    [Fact]
    public void MatchesReferenceOnRowsLargeEnoughToRunThreaded() =>
        Compare(RecurrentCell.Lstm, reverse: false, steps: 2, batch: 64, inputSize: 3, hiddenSize: 520, withStates: true, withBias: true);

    [Fact]
    public void RejectsMismatchedLengths()
    {
        var ex = Assert.Throws<ArgumentException>(() => Recurrent.Forward(new float[6], [], [], new float[6], [], [],
            new float[3 * 2], new float[3 * 3], [], [], RecurrentCell.Tanh, 2, 1, 3, 3, false));
        Assert.Contains("wIh", ex.Message);
        Assert.Throws<ArgumentException>(() => Recurrent.Forward(new float[6], new float[3], [], new float[6], [], [],
            new float[9], new float[9], [], [], RecurrentCell.Gru, 2, 1, 3, 3, false));
    }

    static void Compare(RecurrentCell cell, bool reverse, int steps, int batch, int inputSize, int hiddenSize, bool withStates, bool withBias)
    {
        var rng = new Random(steps * 1000 + batch * 100 + hiddenSize + (int)cell * 7 + (reverse ? 3 : 0));
        int g = Recurrent.GateCount(cell), gh = g * hiddenSize, bh = batch * hiddenSize;
        bool lstm = cell == RecurrentCell.Lstm;
        float scale = 1f / MathF.Sqrt(hiddenSize);
        var x = Uniform(rng, steps * batch * inputSize, 1f);
        var h0 = withStates ? Uniform(rng, bh, 1f) : [];
        var c0 = withStates && lstm ? Uniform(rng, bh, 1f) : [];
        var wIh = Uniform(rng, gh * inputSize, 2f * scale);
        var wHh = Uniform(rng, gh * hiddenSize, 2f * scale);
        var bIh = withBias ? Uniform(rng, gh, scale) : [];
        var bHh = withBias ? Uniform(rng, gh, scale) : [];
        int savedLength = Recurrent.SavedLength(cell, steps, batch, hiddenSize);
        string what = $"{cell} reverse={reverse} T={steps} B={batch} I={inputSize} H={hiddenSize} states={withStates}";

        var (y, cN, saved) = (new float[steps * bh], new float[lstm ? bh : 0], new float[savedLength]);
        var (ye, cNe, savede) = (new float[steps * bh], new float[lstm ? bh : 0], new float[savedLength]);
        Recurrent.Forward(y, cN, saved, x, h0, c0, wIh, wHh, bIh, bHh, cell, steps, batch, inputSize, hiddenSize, reverse);
        Ref.Recurrent.Forward(ye, cNe, savede, x, h0, c0, wIh, wHh, bIh, bHh, cell, steps, batch, inputSize, hiddenSize, reverse);
        Close(ye, y, ValueAbsTol, ValueRelTol, what + " y");
        Close(cNe, cN, ValueAbsTol, ValueRelTol, what + " cN");
        Close(savede, saved, ValueAbsTol, ValueRelTol, what + " saved");

        // Both backward passes start from the twin's forward state and accumulate into the same non-zero gradients.
        var dy = Uniform(rng, y.Length, 1f);
        var dcN = lstm ? Uniform(rng, bh, 1f) : [];
        float[][] grads =
        [
            Uniform(rng, x.Length, 1f), withStates ? Uniform(rng, bh, 1f) : [], withStates && lstm ? Uniform(rng, bh, 1f) : [],
            Uniform(rng, wIh.Length, 1f), Uniform(rng, wHh.Length, 1f), Uniform(rng, gh, 1f), Uniform(rng, gh, 1f),
        ];
        var expected = grads.Select(a => (float[])a.Clone()).ToArray();
        Recurrent.Backward(grads[0], grads[1], grads[2], grads[3], grads[4], grads[5], grads[6], dy, dcN, savede, ye, x, h0, c0,
            wIh, wHh, cell, steps, batch, inputSize, hiddenSize, reverse);
        Ref.Recurrent.Backward(expected[0], expected[1], expected[2], expected[3], expected[4], expected[5], expected[6], dy, dcN,
            savede, ye, x, h0, c0, wIh, wHh, cell, steps, batch, inputSize, hiddenSize, reverse);
        string[] names = ["dx", "dh0", "dc0", "dW_ih", "dW_hh", "db_ih", "db_hh"];
        for (int k = 0; k < names.Length; k++) Close(expected[k], grads[k], GradientAbsTol, GradientRelTol, $"{what} {names[k]}");
    }
}
