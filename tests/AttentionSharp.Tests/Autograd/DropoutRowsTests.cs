using AttentionSharp.Kernels;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Autograd;

/// <summary>
/// Dropout of rows r… of a batch, told its first row, draws the mask the whole batch draws there — what lets
/// data-parallel ranks drop exactly what one process drops (element-wise dropout and attention-weight dropout alike).
/// </summary>
public class DropoutRowsTests
{
    // The same arithmetic on the same rows; only summation over other rows differs (none here).
    const double Atol = 1e-6, Rtol = 1e-6;
    const int B = 4, First = 2, NH = 2, T = 9, HS = 8;

    [Fact]
    public void ElementwiseDropoutOfLaterRowsMatchesTheWholeBatchsRows()
    {
        using var x = Tensor.Randn(new Generator(1), B, T, HS);
        var whole = x.Dropout(0.4f, training: true, new Generator(11)).ToArray();
        var part = x.Narrow(0, First, B - First).Dropout(0.4f, training: true, new Generator(11), firstRow: First).ToArray();
        Assert.Equal(whole[(First * T * HS)..], part);
        Assert.Contains(0f, part); // something was dropped
    }

    [Fact]
    public void TheGeneratorsFirstRowPlacesTheRowsAsTheArgumentDoes()
    {
        using var x = Tensor.Randn(new Generator(1), B, T, HS);
        var told = x.Narrow(0, First, B - First).Dropout(0.4f, training: true, new Generator(11), firstRow: First).ToArray();
        var fromState = x.Narrow(0, First, B - First).Dropout(0.4f, training: true, new Generator(11) { FirstRow = First }).ToArray();
        Assert.Equal(told, fromState);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Generator(1) { FirstRow = -1 });
    }

    [Theory]
    [InlineData(AttentionImplementation.Plain)]
    [InlineData(AttentionImplementation.Flash)]
    public void AttentionDropoutOfLaterBatchesMatchesTheWholeBatchs(AttentionImplementation implementation)
    {
        var rng = new Generator(2);
        using var q = Tensor.Randn(rng, B, NH, T, HS);
        using var k = Tensor.Randn(rng, B, NH, T, HS);
        using var v = Tensor.Randn(rng, B, NH, T, HS);
        var options = new AttentionOptions { Causal = true, Dropout = 0.3f, Implementation = implementation };
        var whole = Run(q, k, v, options);
        var part = Run(q.Narrow(0, First, B - First).Contiguous(), k.Narrow(0, First, B - First).Contiguous(), v.Narrow(0, First, B - First).Contiguous(),
            options with { DropoutFirstBatch = First });
        string[] what = ["O", "dQ", "dK", "dV"];
        for (int i = 0; i < 4; i++)
            TensorAssert.Close(whole[i][(First * NH * T * HS)..], part[i], Atol, Rtol, $"{implementation}: {what[i]} of batches {First}…");
    }

    static float[][] Run(Tensor q, Tensor k, Tensor v, AttentionOptions options)
    {
        Tensor ql = q.Detach(), kl = k.Detach(), vl = v.Detach();
        ql.RequiresGrad = kl.RequiresGrad = vl.RequiresGrad = true;
        var y = Tensor.ScaledDotProductAttention(ql, kl, vl, options with { DropoutRng = new Generator(8) });
        y.Sum().Backward();
        return [y.ToArray(), ql.Grad!.ToArray(), kl.Grad!.ToArray(), vl.Grad!.ToArray()];
    }

    [Fact]
    public unsafe void TheReferenceKernelDrawsTheSameMaskForLaterBatches()
    {
        var rng = new Generator(3);
        float[] q = Tensor.Randn(rng, B, NH, T, HS).ToArray(), k = Tensor.Randn(rng, B, NH, T, HS).ToArray(), v = Tensor.Randn(rng, B, NH, T, HS).ToArray();
        var problem = new AttentionProblem { Batch = B, Heads = NH, KvHeads = NH, QueryLength = T, KeyLength = T, HeadSize = HS, Scale = 0.35f, Causal = true, Dropout = 0.3f, DropoutSeed = 99 };
        var whole = new float[q.Length];
        AttentionSharp.Kernels.Reference.Attention.Forward(whole, new float[B * NH * T * T], q, k, v, problem);
        int skip = First * NH * T * HS;
        var part = new float[q.Length - skip];
        AttentionSharp.Kernels.Reference.Attention.Forward(part, new float[(B - First) * NH * T * T], q.AsSpan(skip), k.AsSpan(skip), v.AsSpan(skip),
            problem with { Batch = B - First, DropoutFirstBatch = First });
        TensorAssert.Close(whole[skip..], part, Atol, Rtol, "reference O of later batches");
        var undropped = new float[q.Length - skip];
        AttentionSharp.Kernels.Reference.Attention.Forward(undropped, new float[(B - First) * NH * T * T], q.AsSpan(skip), k.AsSpan(skip), v.AsSpan(skip),
            problem with { Batch = B - First });
        Assert.NotEqual(part, undropped); // without the offset the first batch's mask would be reused
    }
}
