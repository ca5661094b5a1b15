using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;

namespace AttentionSharp.Tests.Kernels;

/// <summary>
/// Flash attention's backward pass told to set its gradients (the autograd's first writer of a new buffer) gives exactly
/// what adding to zeros gives: every row of dQ, dK and dV is cleared by the thread that owns it, whatever the buffer held.
/// </summary>
[Trait("Category", "Kernels")]
public unsafe class FlashGradientClearTests
{
    [Theory]
    [InlineData(2, 4, 2, 70, 70, 8, true, 0)]
    [InlineData(1, 3, 3, 33, 33, 13, false, 0)]
    [InlineData(2, 4, 1, 3, 70, 8, true, 0)]
    [InlineData(1, 2, 2, 90, 90, 16, true, 5)]
    public void SettingEqualsAddingToZeros(int batch, int heads, int kvHeads, int tq, int tk, int hs, bool causal, int window)
    {
        var rng = new Random(batch * 1000 + tq * 10 + hs);
        float[] q = Uniform(rng, batch * heads * tq * hs, 1f), k = Uniform(rng, batch * kvHeads * tk * hs, 1f);
        float[] v = Uniform(rng, batch * kvHeads * tk * hs, 1f), dO = Uniform(rng, batch * heads * tq * hs, 1f);
        var o = new float[q.Length];
        var lse = new float[batch * heads * tq];
        float[] dqAdded = new float[q.Length], dkAdded = new float[k.Length], dvAdded = new float[v.Length];
        float[] dqSet = Garbage(q.Length), dkSet = Garbage(k.Length), dvSet = Garbage(v.Length);
        var p = new AttentionProblem
        {
            Batch = batch, Heads = heads, KvHeads = kvHeads, QueryLength = tq, KeyLength = tk, HeadSize = hs,
            Scale = 1f / MathF.Sqrt(hs), Causal = causal, Window = window,
        };
        fixed (float* pq = q, pk = k, pv = v, pdo = dO, po = o, pl = lse)
        fixed (float* qa = dqAdded, ka = dkAdded, va = dvAdded, qs = dqSet, ks = dkSet, vs = dvSet)
        {
            HeadTensor Query(float* x) => HeadTensor.Dense(x, heads, tq, hs);
            HeadTensor Key(float* x) => HeadTensor.Dense(x, kvHeads, tk, hs);
            AttentionFlash.Forward(in p, Query(pq), Key(pk), Key(pv), Query(po), pl);
            AttentionFlash.Backward(in p, Query(pq), Key(pk), Key(pv), Query(po), pl, Query(pdo), Query(qa), Key(ka), Key(va));
            AttentionFlash.Backward(in p, Query(pq), Key(pk), Key(pv), Query(po), pl, Query(pdo), Query(qs), Key(ks), Key(vs),
                clear: true);
        }
        Same(dqAdded, dqSet, "dQ");
        Same(dkAdded, dkSet, "dK");
        Same(dvAdded, dvSet, "dV");
    }

    static float[] Garbage(int n) => Enumerable.Range(0, n).Select(i => i % 3 == 0 ? float.NaN : 1e30f * (i % 7 - 3)).ToArray();

    static void Same(float[] expected, float[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"{what}: element {i} is {actual[i]:R} set, {expected[i]:R} added to zeros");
    }
}
