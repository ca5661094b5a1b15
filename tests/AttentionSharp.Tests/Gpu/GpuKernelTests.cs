using AttentionSharp.Gpu;
using AttentionSharp.Kernels;

namespace AttentionSharp.Tests.Gpu;

/// <summary>
/// Every GPU kernel family against the CPU engine on ILGPU's CPU accelerator, with small odd shapes so that edge tiles
/// of every kind are taken (GpuChecks holds the comparisons and their tolerances).
/// </summary>
[Collection(GpuCollection.Name)]
[Trait("Category", "Gpu")]
public class GpuKernelTests(GpuFixture fixture)
{
    readonly GpuDevice _device = fixture.Simulator;

    [Theory]
    [InlineData(Transpose.No, Transpose.No)]
    [InlineData(Transpose.No, Transpose.Yes)]
    [InlineData(Transpose.Yes, Transpose.No)]
    [InlineData(Transpose.Yes, Transpose.Yes)]
    public void GemmMatchesTheCpuInEveryTransposeForm(Transpose ta, Transpose tb)
    {
        GpuChecks.Gemm(_device, ta, tb, 37, 53, 29);
        GpuChecks.Gemm(_device, ta, tb, 37, 53, 29, batch: 3, alpha: 0.5f, beta: -1.5f);
    }

    [Fact]
    public void GemmHandlesDegenerateShapes()
    {
        GpuChecks.Gemm(_device, Transpose.No, Transpose.No, 1, 1, 1);
        GpuChecks.Gemm(_device, Transpose.No, Transpose.Yes, 5, 3, 0, beta: 2f);   // k = 0: C = β·C
        GpuChecks.Gemm(_device, Transpose.Yes, Transpose.No, 16, 16, 8);            // exactly one small tile
    }

    [Fact]
    public void GemmBroadcastsAStrideZeroOperandAndHonoursLeadingDimensions()
    {
        // A (2×3, stored in rows of 5), broadcast to both products; B_i (3×2, stored in rows of 4); C_i in rows of 6.
        float[] a = [1, 2, 3, 9, 9, 4, 5, 6, 9, 9];
        float[] b = [1, 0, 9, 9, 0, 1, 9, 9, 1, 1, 9, 9, /* second B */ 2, 0, 9, 9, 0, 2, 9, 9, 1, 0, 9, 9];
        using var ga = _device.Upload(a);
        using var gb = _device.Upload(b);
        using var gc = _device.Zeros(2 * 12);
        _device.Gemm.MultiplyBatched(Transpose.No, Transpose.No, 2, 2, 2, 3, 1f, ga, 5, 0, gb, 4, 12, 0f, gc, 6, 12);
        var c = gc.ToArray();
        Assert.Equal([4f, 5f, 10f, 11f], new[] { c[0], c[1], c[6], c[7] });
        Assert.Equal([5f, 4f, 14f, 10f], new[] { c[12], c[13], c[18], c[19] });
        Assert.All(new[] { c[2], c[5], c[8], c[11] }, value => Assert.Equal(0f, value));   // outside the 2×2 results
    }

    [Fact]
    public void GemmRejectsOperandsTooSmallForTheirShape()
    {
        using var small = _device.Zeros(10);
        using var c = _device.Zeros(12);
        var e = Assert.Throws<ArgumentException>(
            () => _device.Gemm.Multiply(Transpose.No, Transpose.No, 3, 4, 5, small, small, c));
        Assert.Contains("must hold at least", e.Message);
    }

    [Theory]
    [InlineData(1, 1, true)]
    [InlineData(7, 37, true)]
    [InlineData(5, 300, false)]
    public void LayerNormMatchesTheCpu(int rows, int cols, bool affine) => GpuChecks.LayerNorm(_device, rows, cols, affine);

    [Theory]
    [InlineData(GeluApproximation.None)]
    [InlineData(GeluApproximation.Tanh)]
    public void GeluMatchesTheCpu(GeluApproximation approximation) => GpuChecks.Gelu(_device, approximation);

    [Theory]
    [InlineData(4, 37)]
    [InlineData(3, 1)]
    public void SoftmaxMatchesTheCpu(int rows, int cols) => GpuChecks.Softmax(_device, rows, cols);

    [Theory]
    [InlineData(13, 53, 0f)]
    [InlineData(6, 301, 0.1f)]
    public void CrossEntropyMatchesTheCpu(int rows, int vocab, float labelSmoothing) =>
        GpuChecks.CrossEntropy(_device, rows, vocab, labelSmoothing);

    [Fact]
    public void CrossEntropyOfOnlyIgnoredRowsIsNaNAsPyTorch()
    {
        using var logits = _device.Zeros(2, 3);
        using var targets = _device.Upload([-100, -100]);
        using var rowLoss = _device.Zeros(2);
        using var lse = _device.Zeros(2);
        using var loss = _device.Zeros(1);
        _device.CrossEntropy.Forward(rowLoss, lse, logits, targets, 2, 3);
        _device.CrossEntropy.Mean(loss, rowLoss, targets);
        Assert.True(float.IsNaN(loss.ToArray()[0]));
    }

    [Fact]
    public void EmbeddingMatchesTheCpu() => GpuChecks.Embedding(_device, 11, 7, 23);

    [Fact]
    public void AdamWMatchesTheCpu() => GpuChecks.AdamW(_device, 1001);

    [Fact]
    public void ReductionsMatchTheCpu() => GpuChecks.Reductions(_device);
}
