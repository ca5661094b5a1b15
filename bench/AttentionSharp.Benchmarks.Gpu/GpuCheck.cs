using AttentionSharp.Gpu;
using AttentionSharp.Models;

namespace AttentionSharp.Benchmarks;

/// <summary>
/// <c>attn bench gpu-check</c>: <see cref="GpuGptCheck"/> — the comparison the tests run — on the device, for GPT
/// shapes from the tests' miniature up to GPT-2's width and vocabulary (on a GPU only: the CPU simulator runs the small
/// ones). It exercises every kernel a training step uses: GEMM in all three forms, the bias epilogue, FlashAttention
/// forward and backward, LayerNorm, GELU, cross-entropy, embedding, the adds, the reductions and AdamW.
/// </summary>
public static class GpuCheck
{
    /// <summary>The configurations checked, with B and T.</summary>
    public static IEnumerable<(string Name, GptConfig Config, int Batch, int Time)> Cases(GpuDevice device)
    {
        var small = new GptConfig { Layers = 2, Width = 32, Heads = 4, ContextLength = 16, VocabSize = 37 };
        yield return ("small", small, 3, 16);
        yield return ("small, no bias", small with { Bias = false }, 3, 16);
        if (device.Kind != GpuDeviceKind.Cuda) yield break;
        var medium = new GptConfig { Layers = 4, Width = 256, Heads = 4, ContextLength = 128, VocabSize = 1000 };
        yield return ("medium", medium, 4, 128);
        yield return ("gpt2-width", new GptConfig { Layers = 2, Width = 768, Heads = 12, ContextLength = 256 }, 2, 256);
    }

    /// <summary>Runs every case; prints the largest difference per kind of tensor and every failure. 0 when all pass.</summary>
    public static int Run(GpuDevice device, string? jsonPath, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(device);
        output.WriteLine(
            $"GpuGpt against the CPU engine on {device}: logits, loss, every gradient, 3 AdamW steps with clipping.");
        var all = new List<Dictionary<string, object?>>();
        int failures = 0;
        foreach (var (name, config, batch, time) in Cases(device))
        {
            var results = GpuGptCheck.Compare(device, config, batch, time);
            var failed = results.Where(r => !r.Passed).ToList();
            failures += failed.Count;
            string Max(Func<GpuComparison, bool> which) =>
                results.Where(which).Select(r => r.MaxDifference).DefaultIfEmpty(0).Max().ToString("0.0E+0");
            output.WriteLine($"  {name} (L {config.Layers}, C {config.Width}, NH {config.Heads}, V {config.VocabSize}, " +
                             $"B {batch}, T {time}): {results.Count - failed.Count}/{results.Count} within tolerance; max |Δ| " +
                             $"logits {Max(r => r.Name.StartsWith("logits"))}, loss {Max(r => r.Name.StartsWith("loss"))}, " +
                             $"gradients {Max(r => r.Name.StartsWith("grad"))}, parameters after steps " +
                             $"{Max(r => r.Name.StartsWith("step") && !r.Name.Contains("grad norm"))}");
            foreach (var f in failed) output.WriteLine($"    {f}");
            all.AddRange(results.Select(r => new Dictionary<string, object?>
            {
                ["case"] = name, ["tensor"] = r.Name, ["count"] = r.Count, ["max_abs_diff"] = r.MaxDifference,
                ["atol"] = r.Atol, ["rtol"] = r.Rtol, ["passed"] = r.Passed, ["failure"] = r.Failure,
            }));
        }
        output.WriteLine(failures == 0 ? "All within tolerance." : $"{failures} tensor(s) out of tolerance.");
        if (jsonPath is not null)
        {
            var report = GpuBenchDevice.Describe(device);
            report["passed"] = failures == 0;
            report["comparisons"] = all;
            GpuBenchDevice.WriteJson(jsonPath, report);
            output.WriteLine($"Wrote {jsonPath}");
        }
        return failures == 0 ? 0 : 1;
    }
}
