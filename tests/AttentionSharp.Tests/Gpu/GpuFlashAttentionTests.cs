using AttentionSharp.Gpu;

namespace AttentionSharp.Tests.Gpu;

/// <summary>
/// FlashAttention-2 forward and backward on ILGPU's CPU accelerator against the CPU engine: sequence lengths below,
/// across and not a multiple of the tiles (1, 17, 65), head sizes 8 and 16, causal and key-padded.
/// </summary>
[Collection(GpuCollection.Name)]
[Trait("Category", "Gpu")]
public class GpuFlashAttentionTests(GpuFixture fixture)
{
    readonly GpuDevice _device = fixture.Simulator;

    [Theory]
    [InlineData(1, 8)]
    [InlineData(1, 16)]
    [InlineData(17, 8)]
    [InlineData(17, 16)]
    [InlineData(65, 8)]
    [InlineData(65, 16)]
    public void CausalAttentionMatchesTheCpu(int time, int headSize) =>
        GpuChecks.Attention(_device, batch: 2, heads: 2, time, headSize, causal: true, padding: false);

    [Theory]
    [InlineData(1, 8)]
    [InlineData(1, 16)]
    [InlineData(17, 8)]
    [InlineData(17, 16)]
    [InlineData(65, 8)]
    [InlineData(65, 16)]
    public void PaddedAttentionMatchesTheCpu(int time, int headSize) =>
        GpuChecks.Attention(_device, batch: 2, heads: 2, time, headSize, causal: false, padding: true);

    [Fact]
    public void CausalPaddedAttentionWithAFullyMaskedRowMatchesTheCpu() =>
        GpuChecks.Attention(_device, batch: 2, heads: 1, time: 23, headSize: 8, causal: true, padding: true);

    [Theory]
    [InlineData(17, true, false)]
    [InlineData(23, false, true)]
    [InlineData(65, true, true)]
    public void AttentionWithDropoutDropsTheCpusWeights(int time, bool causal, bool padding) =>
        GpuChecks.Attention(_device, batch: 2, heads: 2, time, headSize: 8, causal, padding, dropout: 0.3f);

    [Fact]
    public void AttentionWithDropoutDropsTheCpusWeightsInTheCudaTileShapes() =>
        GpuChecks.Attention(fixture.CudaShapes, batch: 1, heads: 2, time: 40, headSize: 8, causal: true, padding: true,
            dropout: 0.2f);

    [Theory]
    [InlineData(5, 23, true)]
    [InlineData(20, 37, false)]
    public void AttentionWithMoreKeysThanQueriesMatchesTheCpu(int queries, int keys, bool causal) =>
        GpuChecks.Attention(_device, batch: 2, heads: 1, queries, headSize: 8, causal, padding: true, keyTime: keys);

    [Fact]
    public void AttentionReadsAndWritesHeadsInPlaceInAFusedProjection()
    {
        // qkv (B, T, 3·C) as GPT-2's c_attn writes it: the heads of Q, K and V are read in place (row stride 3·C), the
        // output written as (B, T, NH, HS), and dQ, dK, dV land in the matching slices of one (B, T, 3·C) gradient.
        const int b = 2, t = 17, nh = 2, hs = 8, c = nh * hs;
        var qkv = Tensor.Randn(new Generator(5), b, t, 3 * c);
        qkv.RequiresGrad = true;
        Tensor Heads(int part) => qkv.Narrow(2, part * c, c).Reshape(b, t, nh, hs).Transpose(1, 2);
        var y = Tensor.ScaledDotProductAttention(Heads(0), Heads(1), Heads(2), new AttentionOptions { Causal = true })
            .Transpose(1, 2);
        var dy = Tensor.Randn(new Generator(6), b, t, nh, hs);
        y.Backward(dy);

        var problem = new GpuAttentionProblem(b, nh, t, t, hs) { Causal = true };
        using var gqkv = _device.Upload(qkv);
        using var gdqkv = _device.Zeros(b, t, 3 * c);
        using var go = _device.Zeros(b, t, nh, hs);
        using var gdo = _device.Upload(dy);
        using var gl = _device.Zeros(b, nh, t);
        GpuHeads Packed(GpuTensor tensor, int part) => new(tensor, (long)t * 3 * c, hs, 3 * c, part * c);
        GpuHeads Merged(GpuTensor tensor) => new(tensor, (long)t * c, hs, c);
        _device.FlashAttention.Forward(problem, Packed(gqkv, 0), Packed(gqkv, 1), Packed(gqkv, 2), Merged(go), gl);
        _device.FlashAttention.Backward(problem, Packed(gqkv, 0), Packed(gqkv, 1), Packed(gqkv, 2), Merged(go), gl, Merged(gdo),
            Packed(gdqkv, 0), Packed(gdqkv, 1), Packed(gdqkv, 2));
        Kernels.KernelTestKit.Close(y.ToArray(), go.ToArray(), GpuChecks.AttentionAtol, GpuChecks.AttentionRtol,
            "attention on a fused QKV projection");
        Kernels.KernelTestKit.Close(qkv.Grad!.ToArray(), gdqkv.ToArray(), GpuChecks.AttentionAtol, GpuChecks.AttentionRtol,
            "attention gradient into a fused QKV gradient");
    }

    [Fact]
    public void AttentionRejectsHeadsLargerThanTheKernelsHold()
    {
        using var x = _device.Zeros(1, 1, 2, 130);
        using var lse = _device.Zeros(2);
        var heads = GpuHeads.Dense(x, 1, 2, 130);
        var e = Assert.Throws<ArgumentException>(() =>
            _device.FlashAttention.Forward(new GpuAttentionProblem(1, 1, 2, 2, 130), heads, heads, heads, heads, lse));
        Assert.Contains("at most 128", e.Message);
    }
}
