using System.Text.Json.Nodes;
using AttentionSharp.Generation;
using AttentionSharp.Gpu;
using AttentionSharp.Models;
using AttentionSharp.Tests.Cli;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Gpu;

/// <summary>
/// The GPU commands: without a GPU, --device cuda says why in one sentence and exits non-zero; the GPU benchmarks run
/// in the attn process on the simulator and write their JSON; decoding from the device model gives the CPU's tokens.
/// </summary>
[Collection(GpuCollection.Name)]
[Trait("Category", "Gpu")]
public class GpuCommandTests(GpuFixture fixture)
{
    static readonly string? NoCuda = GpuDevice.CudaUnavailableReason();

    [Fact]
    public void WithoutAGpuDeviceCudaSaysWhyInOneSentenceAndExitsNonZero()
    {
        if (NoCuda is null) return;   // a GPU machine runs these commands for real (scripts/gpu-check.sh)
        using var dir = new TempDirectory();
        var data = dir.Write("text.txt", string.Concat(Enumerable.Repeat("the cat sat on the mat. ", 200)));
        foreach (var args in new[]
        {
            new[] { "train", "--data", data, "--device", "cuda", "--steps", "1", "--out", dir.File("run") },
            ["bench", "gemm", "--device", "cuda"],
            ["bench", "train", "--device", "cuda"],
            ["bench", "gpu-check"],
            ["compare", "--device", "cuda", "--parallelism-only", "--out", dir.File("compare")],
        })
        {
            var (code, output) = AttnProcess.Run(args);
            Assert.True(code != 0, $"attn {string.Join(' ', args)} exited 0: {output}");
            Assert.Contains($"error: {NoCuda}", output);
        }
    }

    [Fact]
    public void TheGpuBenchmarksRunInTheAttnProcessAndWriteTheirJson()
    {
        using var dir = new TempDirectory();
        var (code, output) = AttnProcess.Run("bench", "gemm", "--device", "simulator", "--shapes", "20x30x40",
            "--json", dir.File("gemm.json"));
        Assert.True(code == 0, output);
        var gemm = JsonNode.Parse(File.ReadAllText(dir.File("gemm.json")))!;
        Assert.Equal("20x30x40", (string)gemm["results"]![0]!["shape"]!);
        Assert.True((double)gemm["results"]![0]!["max_rel_diff"]! < 1e-5, output);
        (code, output) = AttnProcess.Run("bench", "train", "--device", "simulator", "--configs", "tiny", "--steps", "1",
            "--json", dir.File("train.json"));
        Assert.True(code == 0, output);
        var train = JsonNode.Parse(File.ReadAllText(dir.File("train.json")))!;
        Assert.Equal("tiny", (string)train["results"]![0]!["config"]!);
        Assert.True((double)train["results"]![0]!["ms"]! > 0);
        // ≈ ln V at initialisation
        Assert.True(Math.Abs((double)train["results"]![0]!["first_loss"]! - Math.Log(37)) < 0.5, output);
        (code, output) = AttnProcess.Run("bench", "gemm", "--device", "simulator", "--shapes", "20x30");
        Assert.Equal(2, code);
        Assert.Contains("--shapes: '20x30' is not MxKxN", output);
    }

    [Fact]
    public void DecodingFromTheDeviceModelGivesTheCpusTokens()
    {
        var config = new GptConfig { Layers = 2, Width = 32, Heads = 4, ContextLength = 16, VocabSize = 37 };
        var cpu = new Gpt(config, new Generator(3));
        using var gpu = GpuGpt.From(fixture.Simulator, cpu);
        int[][] prompts = [[1, 2, 3], [5]];
        var greedy = new SamplingOptions { Temperature = 0f };
        // 12 new tokens: the longer prompt reaches 15 of the 16 positions, inside the first context on both devices.
        var expected = TextGenerator.GenerateBatch(cpu, prompts, 12, greedy, TextGenerator.SampleGenerators(1, 2));
        var actual = GpuTextGenerator.GenerateBatch(gpu, prompts, 12, greedy, TextGenerator.SampleGenerators(1, 2));
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(expected[i].Tokens, actual[i].Tokens);
    }
}
