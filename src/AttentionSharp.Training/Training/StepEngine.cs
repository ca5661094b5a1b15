using AttentionSharp.Autograd;
using AttentionSharp.Nn;

namespace AttentionSharp.Training;

/// <summary>Where a training run's steps compute (<c>attn train --device</c>).</summary>
public enum TrainDevice
{
    /// <summary>The CPU engine, on the model's own tensors.</summary>
    Cpu,

    /// <summary>An NVIDIA GPU, on a device copy of the model that is written back for evaluation and checkpoints.</summary>
    Cuda,
}

/// <summary>
/// The arithmetic of one optimizer step, below the <see cref="Trainer"/>'s loop: forward and backward passes of a
/// micro-batch, the gradient norm, the NaN/Inf report and the AdamW update. The trainer keeps everything else — the
/// micro-batches and their weights, the schedule, the NaN policy, the time limit, evaluation and checkpoints — so a
/// device plugs into the one training loop by implementing this. The CPU's is <see cref="HostStepEngine"/>; a device's
/// keeps its own copy of the weights and moments and writes them back in <see cref="CopyToHost"/>.
/// </summary>
public interface IStepEngine : IDisposable
{
    /// <summary>Sets every gradient to zero.</summary>
    void ZeroGrad();

    /// <summary>
    /// Forward and backward over rows [first, first + rows) of the loss source's current batch: accumulates the
    /// gradient of <paramref name="scale"/>·loss and returns the (unscaled) mean loss. An engine that back-propagates
    /// through the host model's parameters calls <paramref name="gradientReady"/> with each one as its gradient becomes
    /// final (<see cref="Tensor.Backward(Tensor?, Action{Tensor})"/>); one that keeps its own copy calls nothing.
    /// </summary>
    float ForwardBackward(int firstRow, int rows, float scale, Action<Tensor>? gradientReady = null);

    /// <summary>‖g‖ over every gradient and the clip coefficient (<see cref="GradientClipping.CoefficientFor"/>).</summary>
    (float Norm, float Coefficient) ClipCoefficient(float maxNorm);

    /// <summary>"step N: gradient of NAME is +Inf (at index i)" and the like (<see cref="NonFiniteCheck"/>), or null.</summary>
    string? DescribeNonFinite(int step, float loss, float gradNorm);

    /// <summary>
    /// One AdamW step at the optimizer's <see cref="AdamW.LearningRate"/> with its hyperparameters and decay groups,
    /// gradients read as <paramref name="gradScale"/>·grad.
    /// </summary>
    void Step(float gradScale);

    /// <summary>
    /// Makes the host model and optimizer current (weights, moments, step count) before they are read: evaluation,
    /// checkpoints, samples. Nothing to do for the CPU engine.
    /// </summary>
    void CopyToHost();
}

/// <summary>
/// The engine of the library's own modules: the model's tensors, autograd, <see cref="GradientClipping"/> and
/// <see cref="AdamW"/>, on the CPU, or on <paramref name="device"/>: the model moves there for the steps
/// (<see cref="Module.To"/>; the optimizer's moments follow) and back to the CPU in <see cref="CopyToHost"/>, so that
/// evaluation, checkpoints and samples read it as on the CPU. <paramref name="owned"/> (the device) is disposed with the
/// engine.
/// </summary>
public sealed class HostStepEngine(Module model, ILossSource source, AdamW optimizer, TrainOptions options,
    Device? device = null, IDisposable? owned = null) : IStepEngine
{
    readonly (string Name, Generator Generator)[] _generators = [.. model.NamedGenerators()];
    readonly Device _device = device ?? Device.Cpu;

    /// <summary>Moves the model to the engine's device (nothing to do on the CPU, or when it is there).</summary>
    void OnDevice()
    {
        if (!_device.IsCpu) model.To(_device);
    }

    public void ZeroGrad()
    {
        OnDevice();
        optimizer.ZeroGrad();
    }

    public float ForwardBackward(int firstRow, int rows, float scale, Action<Tensor>? gradientReady = null)
    {
        OnDevice();
        using var anomaly = options.DetectAnomaly ? GradMode.DetectAnomaly() : default(GradMode.AnomalyScope?);
        // Dropout masks as for rows first… of the global batch, so N ranks draw what one process would.
        foreach (var (_, generator) in _generators) generator.FirstRow = firstRow;
        var loss = source.Loss(firstRow, rows);
        var (root, seed) = scale == 1f ? (loss, null)
            : _device.IsCpu ? (loss * scale, null)
            : (loss, Tensor.Scalar(scale).To(_device));           // ∂(scale·loss)/∂loss, seeded on the device
        if (gradientReady is null) root.Backward(seed);
        else root.Backward(seed, gradientReady);
        return loss.Item();
    }

    public (float Norm, float Coefficient) ClipCoefficient(float maxNorm) =>
        GradientClipping.ClipCoefficient(model.Parameters(), maxNorm);

    public string? DescribeNonFinite(int step, float loss, float gradNorm) =>
        NonFiniteCheck.Describe(step, loss, gradNorm, model);

    public void Step(float gradScale) => optimizer.Step(gradScale);

    public void CopyToHost()
    {
        if (!_device.IsCpu) model.To(Device.Cpu);
    }

    public void Dispose()
    {
        CopyToHost();
        owned?.Dispose();
    }
}

/// <summary>
/// A loss source whose batches are token windows (a language model's): what a device engine uploads instead of
/// calling <see cref="ILossSource.Loss"/>.
/// </summary>
public interface ITokenBatches
{
    /// <summary>T: tokens per row.</summary>
    int Time { get; }

    /// <summary>The inputs and next-token targets of rows [first, first + rows) of the current batch, (rows, T) each.</summary>
    (ReadOnlyMemory<int> Inputs, ReadOnlyMemory<int> Targets) Rows(int firstRow, int rows);
}
