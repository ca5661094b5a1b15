using AttentionSharp.Gpu;
using AttentionSharp.Kernels;
using AttentionSharp.Models;

namespace AttentionSharp.Benchmarks;

/// <summary>
/// <c>attn bench gpu-check</c>: <see cref="GpuGptCheck"/> — the comparison the tests run — on the device, for GPT
/// shapes from the tests' miniature up to GPT-2's width and vocabulary (on a GPU only: the CPU simulator runs the small
/// ones). It exercises every kernel a training step uses: GEMM in all three forms, the bias epilogue, FlashAttention
/// forward and backward, LayerNorm, GELU, cross-entropy, embedding, the adds, the reductions and AdamW. Then
/// <see cref="GpuRecurrentCheck"/> for the tanh RNN, the LSTM and the GRU (the recurrent kernels of <c>attn compare</c>'s
/// parallelism experiment).
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

    /// <summary>
    /// The recurrent classifiers checked: 2 layers of each cell, at the comparison's widths on a GPU, tiny on the simulator.
    /// </summary>
    public static IEnumerable<(string Name, Func<IReadOnlyList<GpuComparison>> Compare)> RecurrentCases(GpuDevice device)
    {
        bool gpu = device.Kind == GpuDeviceKind.Cuda;
        foreach (var cell in new[] { RecurrentCell.Tanh, RecurrentCell.Lstm, RecurrentCell.Gru })
            yield return gpu
                ? ($"{cell} (E 64, H 96, L 2, B 8, T 64)", () => GpuRecurrentCheck.Compare(device, cell, 25, 64, 96, 2, 8, 8, 64))
                : ($"{cell} (E 6, H 9, L 2, B 3, T 7)", () => GpuRecurrentCheck.Compare(device, cell, 11, 6, 9, 2, 4, 3, 7));
    }

    /// <summary>Runs every case; prints the largest difference per kind of tensor and every failure. 0 when all pass.</summary>
    public static int Run(GpuDevice device, string? jsonPath, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(device);
        output.WriteLine($"GpuGpt, the library's Gpt on device tensors and the recurrent classifiers against the CPU " +
                         $"engine on {device}: logits, loss, every gradient, AdamW steps with clipping.");
        var all = new List<Dictionary<string, object?>>();
        int failures = 0;
        var cases = Cases(device).Select(c => (Name: $"{c.Name} (L {c.Config.Layers}, C {c.Config.Width}, NH {c.Config.Heads}, " +
                                                      $"V {c.Config.VocabSize}, B {c.Batch}, T {c.Time})",
                Compare: (Func<IReadOnlyList<GpuComparison>>)(() => GpuGptCheck.Compare(device, c.Config, c.Batch, c.Time))))
            .Concat(Cases(device).Select(c => (Name: $"{c.Name} through autograd on device tensors",
                Compare: (Func<IReadOnlyList<GpuComparison>>)(() =>
                    GpuGptCheck.CompareAutograd(device, c.Config, c.Batch, c.Time)))))
            .Concat(RecurrentCases(device));
        foreach (var (name, compare) in cases)
        {
            var results = compare();
            var failed = results.Where(r => !r.Passed).ToList();
            failures += failed.Count;
            string Max(Func<GpuComparison, bool> which) =>
                results.Where(which).Select(r => r.MaxDifference).DefaultIfEmpty(0).Max().ToString("0.0E+0");
            output.WriteLine($"  {name}: {results.Count - failed.Count}/{results.Count} within tolerance; max |Δ| " +
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
