using System.Text.Json.Nodes;
using AttentionSharp.Experiments;
using AttentionSharp.Gpu;
using AttentionSharp.Tests.Cli;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Gpu;

/// <summary>
/// <c>attn compare</c>'s parallelism experiment on a device, run on the simulator with tiny widths and lengths: its
/// results, the report's GPU table and the sentence saying where the Transformer overtakes each recurrent model.
/// </summary>
[Collection(GpuCollection.Name)]
[Trait("Category", "Gpu")]
public class GpuComparisonTests(GpuFixture fixture)
{
    static ComparisonOptions Tiny => ComparisonOptions.Quick with
    {
        Mode = "test",
        Distances = [2],
        GradientDistance = 2,
        Lengths = [4],
        GpuLengths = [4, 8],
        Embedding = 8,
    };

    [Fact]
    public void TheParallelismExperimentRunsOnTheDeviceAndTheReportGainsItsTable()
    {
        var lines = new List<string>();
        var results = new Comparison(Tiny, lines.Add).SpeedOnGpu(fixture.Simulator);
        Assert.Equal(8, results.Count);
        Assert.All(results, r => Assert.True(r.MillisecondsPerStep > 0 && r.TokensPerSecond > 0, r.ToString()));
        Assert.Equal([4, 8], results.Where(r => r.Model == SequenceModelKind.Gru).Select(r => r.Length));
        Assert.Contains(lines, l => l.StartsWith("speed GPU T=    8 Transformer", StringComparison.Ordinal));

        using var dir = new TempDirectory();
        ComparisonReport.Write(dir.Path, Tiny, "test machine", [], [], [], null, new GpuSpeedResults("Simulated GPU", results));
        var report = File.ReadAllText(dir.File("report.md"));
        Assert.Contains("## Parallelism on the GPU", report);
        Assert.Contains("On Simulated GPU:", report);
        Assert.Contains("| T | RNN | LSTM | GRU | Transformer |", report);
        Assert.Contains("On the GPU, the Transformer's tokens/s ", report);
        Assert.DoesNotContain("## Long-range dependency", report);   // the other experiments did not run
        Assert.True(new FileInfo(dir.File("speed-gpu.png")).Length > 100);
        Assert.False(File.Exists(dir.File("recall.png")));
        var json = JsonNode.Parse(File.ReadAllText(dir.File("results.json")))!;
        Assert.Equal("Simulated GPU", (string)json["gpu_speed"]!["device"]!);
        Assert.Equal(8, json["gpu_speed"]!["results"]!.AsArray().Count);
    }

    static SpeedResult At(SequenceModelKind kind, int length, double tokensPerSecond) =>
        new(kind, length, 1000.0 * 8 * length / tokensPerSecond, tokensPerSecond);

    [Fact]
    public void TheSentenceNamesTheLengthFromWhichTheTransformerStaysAhead()
    {
        SpeedResult[] speed =
        [
            At(SequenceModelKind.Transformer, 64, 100), At(SequenceModelKind.Transformer, 128, 300),
            At(SequenceModelKind.Transformer, 256, 500),
            // behind, ahead, behind again, then ahead: the last crossing counts
            At(SequenceModelKind.Rnn, 64, 200), At(SequenceModelKind.Rnn, 128, 200), At(SequenceModelKind.Rnn, 256, 400),
            At(SequenceModelKind.Lstm, 64, 50), At(SequenceModelKind.Lstm, 128, 50), At(SequenceModelKind.Lstm, 256, 50),
            At(SequenceModelKind.Gru, 64, 900), At(SequenceModelKind.Gru, 128, 900), At(SequenceModelKind.Gru, 256, 900),
        ];
        Assert.Equal("On the GPU, the Transformer's tokens/s overtakes the RNN's at T = 128, is above the LSTM's from the " +
                     "shortest T measured, 64 and does not overtake the GRU's at any T measured (up to 256).",
            ComparisonReport.Overtakes(speed, "On the GPU"));

        // Ahead at the short lengths and behind at the long ones (attention's T² on a CPU); ahead, behind, ahead, behind.
        SpeedResult[] cpu =
        [
            At(SequenceModelKind.Transformer, 64, 500), At(SequenceModelKind.Transformer, 128, 400),
            At(SequenceModelKind.Transformer, 256, 100), At(SequenceModelKind.Transformer, 512, 50),
            At(SequenceModelKind.Rnn, 64, 200), At(SequenceModelKind.Rnn, 128, 200), At(SequenceModelKind.Rnn, 256, 200),
            At(SequenceModelKind.Rnn, 512, 200),
            At(SequenceModelKind.Lstm, 64, 200), At(SequenceModelKind.Lstm, 128, 500), At(SequenceModelKind.Lstm, 256, 50),
            At(SequenceModelKind.Lstm, 512, 100),
            At(SequenceModelKind.Gru, 64, 900), At(SequenceModelKind.Gru, 512, 900),
        ];
        Assert.Equal("On the CPU, the Transformer's tokens/s is above the RNN's up to T = 128 and below it from T = 256, is " +
                     "below the LSTM's from T = 512 (above it at some shorter T) and does not overtake the GRU's at any T " +
                     "measured (up to 512).", ComparisonReport.Overtakes(cpu, "On the CPU"));
    }

    [Fact]
    public void AttnCompareRunsTheParallelismExperimentOnTheSimulatorAndRefusesBadLengths()
    {
        using var dir = new TempDirectory();
        var (code, output) = AttnProcess.Run("compare", "--device", "simulator", "--parallelism-only", "--lengths", "3", "5",
            "--out", dir.File("run"));
        Assert.True(code == 0, output);
        var report = File.ReadAllText(Path.Combine(dir.File("run"), "report.md"));
        Assert.Contains("## Parallelism on the GPU", report);
        Assert.Contains("| 5 | ", report);
        (code, output) = AttnProcess.Run("compare", "--device", "simulator", "--parallelism-only", "--lengths", "1",
            "--out", dir.File("bad"));
        Assert.Equal(2, code);
        Assert.Contains("error: --lengths: every length must be at least 2; got 1.", output);
        (code, output) = AttnProcess.Run("compare", "--device", "tpu", "--out", dir.File("bad"));
        Assert.Equal(2, code);
        Assert.Contains("error: --device 'tpu' is unknown", output);
    }
}
