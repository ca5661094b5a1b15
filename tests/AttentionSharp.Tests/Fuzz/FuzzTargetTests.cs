using AttentionSharp.Fuzz;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.Fuzz;

[CollectionDefinition(nameof(FuzzTargetTests), DisableParallelization = true)]
public sealed class FuzzTargetCollection;

/// <summary>
/// A short run of every fuzz target in each test run (the long runs use attn-fuzz, see README): every mutated input is
/// accepted or rejected with the reader's own exception, and the mutations reach both outcomes.
/// </summary>
/// <remarks>
/// Alone, not beside other tests: a slow input is judged by the process's processor time, which parallel tests would
/// inflate.
/// </remarks>
[Collection(nameof(FuzzTargetTests))]
public class FuzzTargetTests(ITestOutputHelper output)
{
    const int Inputs = 3_000;

    public static TheoryData<string> Targets => [.. FuzzTarget.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Targets))]
    public void MutatedInputsAreAcceptedOrRejectedCleanly(string name)
    {
        var target = FuzzTarget.All.Single(t => t.Name == name);
        var result = FuzzRunner.Run(target, Inputs, seed: 7, crashDir: null, log: null);
        output.WriteLine($"{name}: {result.Accepted} accepted, {result.Rejected} rejected, {result.Crashes} crashes");
        Assert.True(result.Crashes == 0, string.Join("\n", result.Examples));
        Assert.True(result.Accepted > 0 && result.Rejected > Inputs / 10, $"accepted {result.Accepted}, rejected {result.Rejected}: the mutations should reach both outcomes");
    }

    [Fact]
    public void ASeedIsAcceptedUnchangedByEveryTarget()
    {
        foreach (var target in FuzzTarget.All)
            foreach (var seed in target.Seeds()) target.Run(seed);
    }
}
