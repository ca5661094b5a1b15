using AttentionSharp.Models;
using AttentionSharp.Training;

namespace AttentionSharp.Gpu;

/// <summary>
/// The library's own <see cref="Gpt"/> moved to a device (<see cref="Nn.Module.To"/>) and trained through autograd,
/// <see cref="GradientClipping"/> and <see cref="AdamW"/> on device tensors, driven as <see cref="GpuGptCheck"/> drives
/// <see cref="GpuGpt"/>: so the one comparison checks both ways of training a GPT on a device.
/// </summary>
internal sealed class DeviceGptTrainable : IGpuTrainable, IDisposable
{
    readonly Gpt _model;
    readonly Dictionary<string, Tensor> _parameters;
    AdamW? _optimizer;
    TensorScope? _scope;   // the last step's tensors, given back to the device's cache when the next step begins
    Tensor? _logits, _loss;

    public DeviceGptTrainable(Gpt model, Device device)
    {
        _model = model;
        model.To(device);
        _parameters = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
    }

    public void ZeroGrad() => _model.ZeroGrad();

    public float Forward(ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int batch, int time)
    {
        _scope?.Dispose();
        _scope = TensorScope.Begin();
        _logits = _model.Forward(ids, batch, time);
        _loss = _model.Loss(_logits, targets);
        return _loss.Item();
    }

    public void Backward(float lossScale = 1f)
    {
        var loss = _loss ?? throw new InvalidOperationException("Backward needs a forward pass first.");
        if (lossScale == 1f) loss.Backward();
        else loss.Backward(Tensor.Scalar(lossScale).To(loss.Device));
    }

    public Tensor Logits() => (_logits ?? throw new InvalidOperationException("No forward pass yet.")).To(Device.Cpu);

    public float[] Gradient(string name) =>
        _parameters[name].Grad?.ToArray() ?? throw new InvalidOperationException($"{name} has no gradient yet.");

    public float[] Parameter(string name) => _parameters[name].ToArray();

    public float GradNorm() => GradientClipping.ClipCoefficient(_model.Parameters(), 1f).Norm;

    public void AdamWStep(float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale = 1f)
    {
        _optimizer ??= new AdamW(_model.ParameterGroups(), lr, beta1, beta2, eps, weightDecay);
        if (_optimizer.Beta1 != beta1 || _optimizer.Beta2 != beta2 || _optimizer.Eps != eps
            || _optimizer.WeightDecay != weightDecay || _optimizer.StepCount + 1 != step)
            throw new ArgumentException("The device GPT's AdamW keeps its hyperparameters and counts its own steps.");
        _optimizer.LearningRate = lr;
        _optimizer.Step(gradScale);
    }

    public void Dispose()
    {
        _scope?.Dispose();
        _scope = null;
    }
}
