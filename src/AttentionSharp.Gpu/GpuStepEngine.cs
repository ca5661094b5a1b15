using AttentionSharp.Models;
using AttentionSharp.Training;

namespace AttentionSharp.Gpu;

/// <summary>
/// The trainer's step on a GPU (<see cref="IStepEngine"/>): a <see cref="GpuGpt"/> holding the weights, gradients and
/// AdamW moments, fed the task's token windows. The <see cref="Trainer"/>'s loop is the CPU's — micro-batches, the
/// schedule, the NaN policy, the time limit — and before evaluation and checkpoints <see cref="CopyToHost"/> writes the
/// weights into the CPU model and the moments and step count into the CPU optimizer, which the checkpoint code saves as
/// on the CPU.
/// </summary>
public sealed class GpuStepEngine : IStepEngine
{
    readonly GpuDevice _device;
    readonly bool _ownsDevice;
    readonly Gpt _model;
    readonly GpuGpt _gpu;
    readonly ITokenBatches _batches;
    readonly AdamW _optimizer;
    int _steps;

    /// <summary>
    /// Uploads <paramref name="model"/>'s weights and <paramref name="optimizer"/>'s moments (a resumed run's, or
    /// zeros) to <paramref name="device"/>; <paramref name="ownsDevice"/> disposes the device with the engine.
    /// </summary>
    public GpuStepEngine(GpuDevice device, Gpt model, ITokenBatches batches, AdamW optimizer, bool ownsDevice = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(optimizer);
        _device = device;
        _ownsDevice = ownsDevice;
        _model = model;
        _batches = batches;
        _optimizer = optimizer;
        _gpu = GpuGpt.From(device, model);
        int i = 0;
        foreach (var name in _gpu.ParameterNames)
        {
            var (m, v) = optimizer.Moments(i++);
            _gpu.CopyMomentsFrom(name, m, v);
        }
        _steps = optimizer.StepCount;
    }

    /// <summary>
    /// The engine of <c>attn train --device cuda</c>: opens the first CUDA device (throwing
    /// <see cref="GpuUnavailableException"/> with one sentence when there is none) and describes it. A GPT on token
    /// windows trains on <see cref="GpuGpt"/>; another task's model trains through its own modules on device tensors
    /// (<see cref="Trainer.EngineOn"/>).
    /// </summary>
    public static (IStepEngine Engine, string Description) ForCuda(ITrainingTask task, Trainer trainer)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(trainer);
        var gpt = task.Model as Gpt;
        // Refused before a device is opened, so the sentence names the setting even on a machine without a GPU.
        if (gpt is not null && task is ITokenBatches && GpuGpt.Unsupported(gpt.Config) is { } reason)
            throw new NotSupportedException(reason);
        var device = GpuDevice.Cuda();
        try
        {
            if (gpt is not null && task is ITokenBatches batches)
                return (new GpuStepEngine(device, gpt, batches, trainer.Optimizer, ownsDevice: true), device.ToString());
            return (trainer.EngineOn(device, owned: device), $"{device}, the model's own modules on device tensors");
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>The device model (for hosts that sample from it).</summary>
    public GpuGpt Model => _gpu;

    public void ZeroGrad() => _gpu.ZeroGrad();

    /// <summary>The device model has its own gradients: <paramref name="gradientReady"/> is not called.</summary>
    public float ForwardBackward(int firstRow, int rows, float scale, Action<Tensor>? gradientReady = null)
    {
        var (inputs, targets) = _batches.Rows(firstRow, rows);
        float loss = _gpu.Forward(inputs.Span, targets.Span, rows, _batches.Time);
        _gpu.Backward(scale);
        return loss;
    }

    public (float Norm, float Coefficient) ClipCoefficient(float maxNorm)
    {
        float norm = _gpu.GradNorm();
        return (norm, GradientClipping.CoefficientFor(norm, maxNorm));
    }

    public string? DescribeNonFinite(int step, float loss, float gradNorm) =>
        NonFiniteCheck.Describe(step, loss, gradNorm, _gpu.ParameterNames.Select(name => (name, _gpu.Gradient(name))));

    public void Step(float gradScale)
    {
        _steps++;
        var o = _optimizer;
        _gpu.AdamWStep(o.LearningRate, o.Beta1, o.Beta2, o.Eps, o.WeightDecay, _steps, gradScale);
    }

    public void CopyToHost()
    {
        _gpu.CopyTo(_model);
        int i = 0;
        foreach (var name in _gpu.ParameterNames)
        {
            var (m, v) = _optimizer.Moments(i++);
            _gpu.CopyMomentsTo(name, m, v);
        }
        _optimizer.RestoreStep(_steps);
    }

    public void Dispose()
    {
        _gpu.Dispose();
        if (_ownsDevice) _device.Dispose();
    }
}
