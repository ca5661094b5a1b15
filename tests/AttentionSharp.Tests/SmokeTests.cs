namespace AttentionSharp.Tests;

public class SmokeTests
{
    [Fact]
    public void ThreadCountIsPositive() => Assert.True(AttentionSharp.Kernels.Parallel.ThreadCount >= 1);
}
