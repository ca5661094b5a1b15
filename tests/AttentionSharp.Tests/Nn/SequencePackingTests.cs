using AttentionSharp.Autograd;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Nn;

/// <summary>
/// Sequences packed into one row (<see cref="SequencePacking"/>, <see cref="Tensor.GatherRows"/>): the op's gradient, the
/// round trip, and the encoder–decoder's packed teacher forcing against the padded form, value and every gradient.
/// </summary>
public class SequencePackingTests
{
    // The packed and padded forms add the same products in a different order where a product's row count changes
    // (a weight gradient sums over rows), so they round apart by a few float ulps; a wrong row, mask or position moves
    // the loss and gradients by far more (1e-2 and up).
    const double Abs = 2e-5, Rel = 1e-4;

    const int Pad = 0, Bos = 1, Eos = 2, Vocab = 13;

    static Tensor Leaf(Generator rng, params int[] shape)
    {
        var t = Tensor.Uniform(rng, -1f, 1f, shape);
        t.RequiresGrad = true;
        return t;
    }

    [Fact]
    public void GatherRowsMatchesFiniteDifferences()
    {
        var x = Leaf(new Generator(3), 2, 3, 4);                                       // six rows of 4
        int[] rows = [5, -1, 0, 5, 2, -1];                                             // a repeat, zeros
        var weights = Tensor.Uniform(new Generator(9), -1f, 1f, 2, 3, 4);
        var report = GradCheck.Check(v => Tensor.GatherRows(v[0], rows, 2, 3, 4) * weights, [x]);
        Assert.True(report.Passed, report.ToString());
    }

    [Fact]
    public void GatherRowsGivesZerosForMinusOneAndNamesABadRow()
    {
        var x = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 3, 2);
        var y = Tensor.GatherRows(x, [2, -1, 0]);
        Assert.Equal([3, 2], y.Shape.ToArray());
        Assert.Equal([5f, 6f, 0f, 0f, 1f, 2f], y.ToArray());
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.GatherRows(x, [0, 3]));
        Assert.Contains("rows[1] is 3", ex.Message);
        Assert.Throws<ArgumentException>(() => Tensor.GatherRows(x, [0, 1], 3, 2));
    }

    [Fact]
    public void IndexSelectGathersTheSlicesAlongAnyDimension()
    {
        // The row gather against the slices themselves, concatenated: every dimension, repeats, a strided input.
        var x = Tensor.Uniform(new Generator(6), -1f, 1f, 3, 4, 5);
        foreach (var input in new[] { x, x.Transpose(0, 2) })
            for (int dim = 0; dim < 3; dim++)
            {
                int[] indices = [2, 0, 2];
                var expected = Tensor.Cat([.. indices.Select(i => input.Narrow(dim, i, 1))], dim);
                var actual = input.IndexSelect(dim, indices);
                Assert.Equal(expected.Shape.ToArray(), actual.Shape.ToArray());
                Assert.Equal(expected.ToArray(), actual.ToArray());
            }
        Assert.Contains("outside [0, 3)", Assert.Throws<ArgumentOutOfRangeException>(() => x.IndexSelect(0, [3])).Message);
    }

    [Fact]
    public void PackAndUnpackKeepEveryPositionAndZeroThePadding()
    {
        var packing = new SequencePacking([2, 3, 1]);
        Assert.Equal((3, 3, 6), (packing.Batch, packing.Length, packing.Tokens));
        Assert.Equal([false, false, true, false, false, false, false, true, true], packing.Padding.ToArray());
        var padded = Tensor.Uniform(new Generator(4), -1f, 1f, 3, 3, 5);
        var packed = packing.Pack(padded);
        Assert.Equal([1, 6, 5], packed.Shape.ToArray());
        var back = packing.Unpack(packed).ToArray();
        var original = padded.ToArray();
        for (int row = 0; row < 9; row++)
            for (int c = 0; c < 5; c++)
                Assert.Equal(packing.Padding.Span[row] ? 0f : original[row * 5 + c], back[row * 5 + c]);
    }

    [Fact]
    public void PackingOfPaddedIdsAndItsErrors()
    {
        var packing = SequencePacking.OfPadded([4, 5, Pad, 6, 7, 8], 2, 3, Pad)!;
        Assert.Equal([2, 3], packing.Lengths);
        Assert.Null(SequencePacking.OfPadded([4, 5, 6, 7], 2, 2, Pad));                 // no padding: nothing to gain
        Assert.Null(SequencePacking.OfPadded([4, 5, Pad, Pad], 2, 2, Pad));             // an empty row
        Assert.Null(SequencePacking.OfPadded([4, Pad, 5, 6, Pad, Pad], 2, 3, Pad));     // padding before a token
        Assert.Contains("length 0", Assert.Throws<ArgumentException>(() => new SequencePacking([2, 0])).Message);
        Assert.Throws<ArgumentException>(() => new SequencePacking([4], maxLength: 3));
        var wrongShape = Assert.Throws<ArgumentException>(() => new SequencePacking([2, 3]).Unpack(Tensor.Zeros(2, 5, 4)));
        Assert.Contains("(1, 5, D)", wrongShape.Message);
    }

    public static TheoryData<string> Configurations() => ["pre-LN", "post-LN", "learned", "rotary", "alibi", "window"];

    /// <summary>
    /// Teacher forcing with the sources and targets packed gives the padded form's loss and every parameter's gradient,
    /// for each kind of block and position.
    /// </summary>
    [Theory]
    [MemberData(nameof(Configurations))]
    public void PackedTeacherForcingEqualsThePaddedForm(string name)
    {
        var config = EncoderDecoderConfig.Small(Vocab) with
        {
            Width = 24,
            Heads = 4,
            FeedForwardWidth = 48,
            LabelSmoothing = 0.1f,
            ShareEmbeddings = false,
            NormFirst = name != "post-LN",
            PositionalEncoding = name switch
            {
                "learned" => PositionalEncodingKind.Learned,
                "rotary" => PositionalEncodingKind.Rotary,
                "alibi" => PositionalEncodingKind.Alibi,
                _ => PositionalEncodingKind.Sinusoidal,
            },
            Attention = name == "window" ? AttentionPattern.Sliding(2) : AttentionPattern.Full,
        };
        var model = new EncoderDecoder(config, new Generator(11));
        // Three sources of length 5 (two right-padded) and targets of length 4 (two right-padded), EOS last.
        int[] source = [3, 4, 5, 6, 7, 8, 9, Pad, Pad, Pad, 10, 11, 12, 3, Pad];
        int[] labels = [5, 6, Eos, Pad, 7, 8, 9, Eos, 4, Eos, Pad, Pad];
        int[] input = [Bos, 5, 6, Pad, Bos, 7, 8, 9, Bos, 4, Pad, Pad];

        var padded = Gradients(model, () => model.Loss(model.Forward(source, 5, input, 4, 3), labels));
        var packed = Gradients(model, () => model.TeacherForcingLoss(source, 5, input, labels, 4, 3));
        Assert.Equal(padded.Loss, packed.Loss, 5);
        foreach (var (param, grad) in padded.Grads)
            TensorAssert.Close(grad, packed.Grads[param], Abs, Rel, $"{name}: the gradient of {param}");
    }

    [Fact]
    public void LinearAttentionKeepsThePaddedForm()
    {
        // Linear attention cannot skip padding keys, so its decoder reads the padded targets as before.
        var config = EncoderDecoderConfig.Small(Vocab) with
        {
            Width = 16,
            Heads = 2,
            FeedForwardWidth = 32,
            Attention = AttentionPattern.LinearAttention,
        };
        var model = new EncoderDecoder(config, new Generator(2));
        int[] source = [3, 4, 5, 6], labels = [5, Eos, 7, Pad], input = [Bos, 5, Bos, 7];
        float expected = model.Loss(model.Forward(source, 2, input, 2, 2), labels).Item();
        Assert.Equal(expected, model.TeacherForcingLoss(source, 2, input, labels, 2, 2).Item());
    }

    [Fact]
    public void PackedSequencesRefuseACache()
    {
        var attention = new MultiHeadAttention(new MultiHeadAttentionConfig { Width = 8, Heads = 2 }, new Generator(1));
        var packing = new SequencePacking([1, 2]);
        using var cache = new KvCache(1);
        using var noGrad = GradMode.NoGrad();
        var ex = Assert.Throws<ArgumentException>(() =>
            attention.Forward(Tensor.Zeros(1, 3, 8), new AttentionMask { Packing = packing }, cache[0]));
        Assert.Contains("K/V cache", ex.Message);
    }

    static (float Loss, Dictionary<string, float[]> Grads) Gradients(EncoderDecoder model, Func<Tensor> loss)
    {
        model.ZeroGrad();
        using var scope = TensorScope.Begin();
        var value = loss();
        value.Backward();
        return (value.Item(), model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad!.ToArray()));
    }
}
