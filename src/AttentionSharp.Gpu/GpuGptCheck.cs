// Source: Karpathy, llm.c test_gpt2.cu: the GPU model against a reference — logits, loss, every gradient, and several
// optimizer steps — printing the largest difference per tensor.
using AttentionSharp.Autograd;
using AttentionSharp.Models;
using AttentionSharp.Training;

namespace AttentionSharp.Gpu;

/// <summary>
/// <see cref="GpuGpt"/> against the CPU engine's <see cref="Gpt"/> from the same weights and batches: the logits and
/// loss, every parameter's gradient by name, then several training steps as the trainer takes them on the CPU
/// (<see cref="GradientClipping"/>'s coefficient folded into <see cref="AdamW"/>, the learning rate changing per step) —
/// the gradient norm and every parameter after each step. The tests and <c>attn bench gpu-check</c> both run this.
/// </summary>
public static class GpuGptCheck
{
    // Tolerances: |expected − actual| ≤ atol + rtol·|expected|.
    /// <summary>
    /// Logits and loss: every product and row reduction sums in another order than the CPU's (tiles, FMAs, group
    /// reductions), attention rescales its online softmax at other points, and a GPU's exp differs from the CPU's by a
    /// few ulp; over a few layers these roundings of O(1) values stay near 1e-6 (the simulator: 2e-7).
    /// </summary>
    public const double OutputAtol = 1e-5, OutputRtol = 1e-4;

    /// <summary>
    /// Gradients (of magnitude 1e-4–1e-1 here): the same reorderings, plus float atomics (dQ, LayerNorm and bias column
    /// sums, embedding scatter-adds) whose order varies, through the whole backward pass; the simulator differs by at
    /// most 1e-7.
    /// </summary>
    public const double GradientAtol = 2e-6, GradientRtol = 1e-3;

    /// <summary>
    /// Parameters after AdamW steps: the update m̂/(√v̂ + eps) of a weight whose gradient is near zero amplifies the
    /// gradient's relative rounding, so a step can move it by a fraction of lr differently; the simulator differs by
    /// 7e-6 after three steps at lr ≤ 1e-2.
    /// </summary>
    public const double ParameterAtol = 1e-4, ParameterRtol = 1e-3;

    /// <summary>The largest norm the check clips to: small enough that clipping acts on every step.</summary>
    public const float MaxNorm = 0.5f;

    /// <summary>
    /// Builds a <see cref="Gpt"/> of <paramref name="config"/> (seeded), uploads it, and compares. Returns one
    /// comparison per tensor, in order: logits, loss, each gradient, then per step its gradient norm and each parameter.
    /// </summary>
    public static IReadOnlyList<GpuComparison> Compare(GpuDevice device, GptConfig config, int batch, int time, int steps = 3,
        ulong seed = 1337)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(config);
        var cpu = new Gpt(config, new Generator(seed));
        using var gpu = GpuGpt.From(device, cpu);
        return CompareGpt(gpu, cpu, batch, time, steps, seed, $"{device.Kind}/{device.Shapes}");
    }

    /// <summary>
    /// As <see cref="Compare"/> for the library's own <see cref="Gpt"/> moved to <paramref name="device"/> and trained
    /// through autograd on device tensors (<see cref="Nn.Module.To"/>), against the same model on the CPU.
    /// </summary>
    public static IReadOnlyList<GpuComparison> CompareAutograd(Device device, GptConfig config, int batch, int time,
        int steps = 3, ulong seed = 1337)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(config);
        var cpu = new Gpt(config, new Generator(seed));
        using var gpu = new DeviceGptTrainable(new Gpt(config, new Generator(seed)), device);
        return CompareGpt(gpu, cpu, batch, time, steps, seed, $"{device.Name}/autograd");
    }

    /// <summary>A device GPT against the CPU's <paramref name="cpu"/>, from one stream of random batches.</summary>
    static List<GpuComparison> CompareGpt(IGpuTrainable gpu, Gpt cpu, int batch, int time, int steps, ulong seed,
        string where)
    {
        var rng = new Generator(seed + 1);
        var optimizer = new AdamW(cpu.ParameterGroups(), 0f, 0.9f, 0.95f, 1e-8f, 0.1f);
        int vocab = cpu.Config.VocabSize;
        return CompareSteps(gpu, optimizer, [.. cpu.NamedParameters()], batch, time, steps, where,
            () =>
            {
                var ids = Draw(rng, batch * time, vocab);
                var targets = Draw(rng, batch * time, vocab);
                cpu.Train();
                return (ids, targets);
            },
            ids => cpu.Forward(ids, batch, time), (l, targets) => cpu.Loss(l, targets));
    }

    /// <summary>
    /// The comparison loop <see cref="Compare"/> and <see cref="GpuRecurrentCheck"/> share: for steps 0 to
    /// <paramref name="steps"/>, draws a batch, takes the CPU step (the optimizer's zero-grad, then
    /// <paramref name="cpuLogits"/> and <paramref name="cpuLoss"/> in a <see cref="TensorScope"/>, backward) and the
    /// GPU's (zero, forward, backward); on step 0 compares the logits, the loss and each gradient of
    /// <paramref name="named"/>; on every step but the last clips and steps AdamW on both sides (learning rate
    /// 1e-2·(step + 1)/steps) and compares the gradient norm and each parameter. <paramref name="where"/> ends every label.
    /// </summary>
    internal static List<GpuComparison> CompareSteps(IGpuTrainable gpu, AdamW optimizer,
        IReadOnlyList<(string Name, Tensor Parameter)> named, int batch, int time, int steps, string where,
        Func<(int[] Ids, int[] Targets)> draw, Func<int[], Tensor> cpuLogits, Func<Tensor, int[], Tensor> cpuLoss)
    {
        var results = new List<GpuComparison>();
        for (int step = 0; step <= steps; step++)
        {
            var (ids, targets) = draw();
            // The CPU step, as the trainer takes it: zero, forward, backward, clip coefficient, AdamW.
            optimizer.ZeroGrad();
            float[] logits;
            float loss;
            using (TensorScope.Begin())
            {
                var l = cpuLogits(ids);
                logits = l.ToArray();
                var lossTensor = cpuLoss(l, targets);
                loss = lossTensor.Item();
                lossTensor.Backward();
            }
            gpu.ZeroGrad();
            float gpuLoss = gpu.Forward(ids, targets, batch, time);
            gpu.Backward();
            if (step == 0)
            {
                results.Add(GpuComparison.Of($"logits {where}", logits, gpu.Logits().ToArray(), OutputAtol, OutputRtol));
                results.Add(GpuComparison.Of($"loss {where}", [loss], [gpuLoss], OutputAtol, OutputRtol));
                foreach (var (name, p) in named)
                    results.Add(GpuComparison.Of($"grad {name} {where}", p.Grad!.ToArray(), gpu.Gradient(name),
                        GradientAtol, GradientRtol));
            }
            if (step == steps) break;
            float lr = 1e-2f * (step + 1) / steps;
            var (norm, clip) = GradientClipping.ClipCoefficient(named.Select(p => p.Parameter), MaxNorm);
            optimizer.LearningRate = lr;
            optimizer.Step(clip);
            float gpuNorm = gpu.GradNorm();
            gpu.AdamWStep(lr, optimizer.Beta1, optimizer.Beta2, optimizer.Eps, optimizer.WeightDecay, step + 1,
                GradientClipping.CoefficientFor(gpuNorm, MaxNorm));
            results.Add(GpuComparison.Of($"step {step + 1} grad norm {where}", [norm], [gpuNorm], GradientAtol, GradientRtol));
            foreach (var (name, p) in named)
                results.Add(GpuComparison.Of($"step {step + 1} {name} {where}", p.ToArray(), gpu.Parameter(name),
                    ParameterAtol, ParameterRtol));
        }
        return results;
    }

    static int[] Draw(Generator rng, int count, int vocab)
    {
        var ids = new int[count];
        for (int i = 0; i < count; i++) ids[i] = rng.NextInt(vocab);
        return ids;
    }
}
