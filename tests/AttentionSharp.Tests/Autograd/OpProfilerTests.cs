using AttentionSharp.Autograd;

namespace AttentionSharp.Tests.Autograd;

/// <summary>The optional per-op timer: recorded ops are charged forward and backward, and nothing is kept when it is off.</summary>
public class OpProfilerTests
{
    [Fact]
    public void ChargesEachRecordedOpForwardAndBackward()
    {
        var rng = new Generator(5);
        var w = Tensor.Uniform(rng, -1f, 1f, 8, 6);
        w.RequiresGrad = true;
        var x = Tensor.Uniform(rng, -1f, 1f, 4, 8);
        OpProfiler.Reset();
        OpProfiler.Enabled = true;
        try
        {
            // Other tests may run meanwhile and add their own ops: only lower bounds hold for the counts.
            for (int i = 0; i < 3; i++)
            {
                OpProfiler.Mark();
                x.MatMul(w).Gelu(AttentionSharp.Kernels.GeluApproximation.Tanh).Sum().Backward();
            }
        }
        finally
        {
            OpProfiler.Enabled = false;
        }
        var totals = OpProfiler.Snapshot();
        foreach (var (name, pass) in new[] { ("MatMul", "forward"), ("MatMul", "backward"), ("Gelu", "forward"), ("Gelu", "backward") })
        {
            var entry = totals.SingleOrDefault(e => e.Name == name && e.Pass == pass);
            Assert.True(entry.Calls >= 3, $"{name} {pass}: {entry.Calls} calls recorded, expected at least 3");
            Assert.True(entry.Seconds > 0, $"{name} {pass}: no time recorded");
        }
        Assert.Equal(totals.OrderByDescending(e => e.Seconds).Select(e => e.Seconds), totals.Select(e => e.Seconds));
        OpProfiler.Reset();
        Assert.Empty(OpProfiler.Snapshot());
    }
}
