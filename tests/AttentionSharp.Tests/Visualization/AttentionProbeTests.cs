using AttentionSharp.Autograd;
using AttentionSharp.Models;
using AttentionSharp.Visualization;

namespace AttentionSharp.Tests.Visualization;

/// <summary>The probe sees every attention call of a forward pass, exactly the weights the plain path computes.</summary>
public class AttentionProbeTests
{
    static readonly GptConfig Shape = new() { VocabSize = 11, ContextLength = 12, Layers = 3, Heads = 2, Width = 8 };

    [Fact]
    public void AGptForwardRecordsOneCausalMapPerLayerAndTheSameLogits()
    {
        var model = new Gpt(Shape, new Generator(4));
        model.Eval();
        int[] ids = [1, 5, 2, 9, 9, 3, 0];
        float[] plain, probed;
        IReadOnlyList<AttentionRecord> records;
        using (GradMode.NoGrad())
        {
            plain = model.Forward(ids, 1, ids.Length).ToArray();
            using var probe = AttentionProbe.Start();
            probed = model.Forward(ids, 1, ids.Length).ToArray();
            records = probe.Records;
        }
        Support.TensorAssert.Close(plain, probed, 1e-5, 1e-5, "logits with and without a probe");
        Assert.Equal(Shape.Layers, records.Count);
        foreach (var r in records)
        {
            Assert.Equal((1, Shape.Heads, ids.Length, ids.Length), (r.Batch, r.Heads, r.QueryLength, r.KeyLength));
            for (int h = 0; h < r.Heads; h++)
            {
                var map = r.Map(0, h);
                for (int i = 0; i < ids.Length; i++)
                {
                    double sum = 0;
                    for (int j = 0; j < ids.Length; j++)
                    {
                        if (j > i) Assert.Equal(0f, map[i, j]);   // causal: nothing from the future
                        Assert.InRange(map[i, j], 0f, 1f);
                        sum += map[i, j];
                    }
                    Assert.Equal(1.0, sum, 5);
                }
                Assert.Equal(1f, map[0, 0]);   // the first token can only look at itself
            }
        }
    }

    [Fact]
    public void TheRecordEqualsTheWeightsOfTheDirectCall()
    {
        var rng = new Generator(8);
        using var q = Tensor.Randn(rng, 2, 3, 5, 4);
        using var k = Tensor.Randn(rng, 2, 3, 6, 4);
        using var v = Tensor.Randn(rng, 2, 3, 6, 4);
        var options = new AttentionOptions { KeyPadding = new bool[] { false, false, false, false, true, true, false, false, false, false, false, true } };
        var (_, expected) = Tensor.ScaledDotProductAttentionWithWeights(q, k, v, options);
        using var probe = AttentionProbe.Start();
        Tensor.ScaledDotProductAttention(q, k, v, options).Dispose();
        var record = Assert.Single(probe.Records);
        Assert.Equal(expected.ToArray(), record.Weights);
        Assert.Equal(0f, record.Map(0, 1)[2, 4]);   // a padding key gets no weight
    }

    [Fact]
    public void NothingIsRecordedOutsideAProbeAndProbesNest()
    {
        var rng = new Generator(9);
        using var x = Tensor.Randn(rng, 1, 1, 3, 2);
        using var outer = AttentionProbe.Start();
        using (var inner = AttentionProbe.Start())
        {
            Tensor.ScaledDotProductAttention(x, x, x).Dispose();
            Assert.Single(inner.Records);
        }
        Assert.Empty(outer.Records);
        Tensor.ScaledDotProductAttention(x, x, x).Dispose();
        Assert.Single(outer.Records);
        // A forced flash call has no weights to record.
        Tensor.ScaledDotProductAttention(x, x, x, new AttentionOptions { Implementation = AttentionImplementation.Flash }).Dispose();
        Assert.Single(outer.Records);
    }

    [Fact]
    public void ClosingProbesOutOfOrderIsAnError()
    {
        var outer = AttentionProbe.Start();
        var inner = AttentionProbe.Start();
        Assert.Contains("reverse order", Assert.Throws<InvalidOperationException>(outer.Dispose).Message);
        inner.Dispose();
        outer.Dispose();
        // Both are closed now: attention on this thread is no longer recorded (nor forced onto the plain path).
        using var x = Tensor.Randn(new Generator(1), 1, 1, 2, 2);
        Tensor.ScaledDotProductAttention(x, x, x).Dispose();
        Assert.Empty(outer.Records);
        Assert.Empty(inner.Records);
    }
}
