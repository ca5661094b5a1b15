using AttentionSharp.Gpu;
using AttentionSharp.Models;
using AttentionSharp.Training;

namespace AttentionSharp.Benchmarks;

/// <summary>What <see cref="GpuTrainBenchmark.Run"/> measures.</summary>
public sealed record GpuTrainBenchOptions
{
    /// <summary>
    /// Configurations by name (<see cref="TrainBenchConfig.All"/>); by default <see cref="TrainBenchConfig.GpuDefault"/>.
    /// </summary>
    public IReadOnlyList<string> Configs { get; init; } = TrainBenchConfig.GpuDefault;

    /// <summary>Timed steps per configuration; the median counts.</summary>
    public int Steps { get; init; } = 10;

    /// <summary>Untimed steps first (kernel compilation, the activation arena).</summary>
    public int Warmups { get; init; } = 3;

    public string? JsonPath { get; init; }
}

/// <summary>
/// One GPT training step on the device as <c>attn train --device cuda</c> takes it (<see cref="GpuStepEngine"/>'s
/// arithmetic: forward with the loss read back, backward, the gradient norm read back, clipping to 1 folded into AdamW),
/// timed from its first launch until the device finished; tokens/s and MFU against the device's FP32 peak with the CPU
/// benchmark's FLOPs count (<see cref="TrainBenchConfig.StepFlops"/>). Beside it, the same step through the library's
/// own modules on the device (<see cref="Nn.Module.To"/>, autograd, <see cref="GradientClipping"/>, <see cref="AdamW"/>),
/// so that the two ways of training a GPT on a GPU are timed in one run.
/// </summary>
public static class GpuTrainBenchmark
{
    const float LearningRate = 1e-4f, WeightDecay = 0.1f;

    public static int Run(GpuDevice device, GpuTrainBenchOptions options, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(options);
        var configs = options.Configs.Select(TrainBenchConfig.Named).ToList();
        if (options.Steps < 1) throw new ArgumentException($"--steps must be at least 1, got {options.Steps}.");
        output.WriteLine($"GPT training step on {device} (forward, backward, clip, AdamW), fp32; median of {options.Steps} " +
                         $"steps after {options.Warmups} warm-up steps");
        output.WriteLine($"MFU: (6·N + 12·L·C·T) FLOPs per token (N without wpe) / step time / FP32 peak " +
                         (device.PeakGflops is { } p ? $"({p:F0} GFLOP/s)" : "(unknown here: no MFU)"));
        output.WriteLine();
        output.WriteLine("autograd ms: the same step through Gpt.To(device), autograd, clipping and AdamW on device tensors");
        output.WriteLine();
        output.WriteLine($"{"config",-16}{"B×T",11}{"ms",10}{"tok/s",11}{"MFU",8}{"loss",9}{"autograd ms",13}");
        var results = new List<Dictionary<string, object?>>();
        foreach (var config in configs)
        {
            var (ms, loss, parameters) = Measure(device, config, options);
            double autogradMs = MeasureAutograd(device, config, options);
            double tokensPerSecond = config.TokensPerStep / (ms / 1e3);
            double? mfu = device.PeakGflops is { } peak ? config.StepFlops(parameters) / (ms / 1e3) / (peak * 1e9) : null;
            output.WriteLine($"{config.Name,-16}{$"{config.Batch}×{config.Context}",11}{ms,10:F1}{tokensPerSecond,11:F0}" +
                             $"{(mfu is { } f ? f.ToString("P1") : "-"),8}{loss,9:F4}{autogradMs,13:F1}");
            results.Add(new()
            {
                ["config"] = config.Name,
                ["batch"] = config.Batch,
                ["context"] = config.Context,
                ["ms"] = Math.Round(ms, 3),
                ["tokens_per_s"] = Math.Round(tokensPerSecond, 1),
                ["mfu"] = mfu is { } m ? Math.Round(m, 4) : null,
                ["step_gflop"] = Math.Round(config.StepFlops(parameters) / 1e9, 1),
                ["first_loss"] = loss,
                ["autograd_ms"] = Math.Round(autogradMs, 3),
            });
        }
        if (options.JsonPath is { } path)
        {
            var report = GpuBenchDevice.Describe(device);
            report["steps"] = options.Steps;
            report["flops"] = "(6*N + 12*L*C*T) per token, N = parameters without wpe";
            report["timing"] = "median step, from its first launch until the device finished (two scalar reads inside)";
            report["results"] = results;
            GpuBenchDevice.WriteJson(path, report);
            output.WriteLine();
            output.WriteLine($"Wrote {path}");
        }
        return 0;
    }

    static (double Ms, float FirstLoss, long ParametersWithoutWpe) Measure(GpuDevice device, TrainBenchConfig config,
        GpuTrainBenchOptions options)
    {
        var cpu = new Gpt(config.Gpt, new Generator(42));
        long parameters = cpu.ParameterCount() - (cpu.Wpe?.Weight.Count ?? 0);
        using var gpu = GpuGpt.From(device, cpu);
        var rng = new Generator(1234);
        var batches = Enumerable.Range(0, 4).Select(_ => (X: Draw(rng, config), Y: Draw(rng, config))).ToArray();
        var optimizer = new AdamW(cpu.ParameterGroups(), LearningRate, weightDecay: WeightDecay);
        int step = 0;
        float firstLoss = float.NaN;
        void Step()
        {
            var (x, y) = batches[step % batches.Length];
            gpu.ZeroGrad();
            float loss = gpu.Forward(x, y, config.Batch, config.Context);
            if (step == 0) firstLoss = loss;
            gpu.Backward();
            float clip = GradientClipping.CoefficientFor(gpu.GradNorm(), 1f);
            gpu.AdamWStep(optimizer.LearningRate, optimizer.Beta1, optimizer.Beta2, optimizer.Eps, optimizer.WeightDecay,
                ++step, clip);
        }
        return (MedianMs(device, options, Step), firstLoss, parameters);
    }

    /// <summary>The median ms of <paramref name="step"/> over the timed steps, after the warm-up ones.</summary>
    static double MedianMs(GpuDevice device, GpuTrainBenchOptions options, Action step)
    {
        for (int w = 0; w < options.Warmups; w++) step();
        var times = new List<double>();
        for (int s = 0; s < options.Steps; s++) times.Add(GpuBenchDevice.Seconds(device, step));
        return GpuBenchDevice.Median(times) * 1e3;
    }

    /// <summary>The same step on the library's <see cref="Gpt"/> moved to the device: median ms.</summary>
    static double MeasureAutograd(GpuDevice device, TrainBenchConfig config, GpuTrainBenchOptions options)
    {
        var model = new Gpt(config.Gpt, new Generator(42));
        model.To(device);
        var rng = new Generator(1234);
        var batches = Enumerable.Range(0, 4).Select(_ => (X: Draw(rng, config), Y: Draw(rng, config))).ToArray();
        var optimizer = new AdamW(model.ParameterGroups(), LearningRate, weightDecay: WeightDecay);
        int step = 0;
        void Step()
        {
            var (x, y) = batches[step++ % batches.Length];
            using var scope = TensorScope.Begin();
            optimizer.ZeroGrad();
            var loss = model.Loss(model.Forward(x, config.Batch, config.Context), y);
            loss.Item();   // read back, as the fused step reads its loss
            loss.Backward();
            optimizer.Step(GradientClipping.ClipCoefficient(model.Parameters(), 1f).Coefficient);
        }
        return MedianMs(device, options, Step);
    }

    static int[] Draw(Generator rng, TrainBenchConfig c)
    {
        var ids = new int[c.TokensPerStep];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(c.Vocab);
        return ids;
    }
}
