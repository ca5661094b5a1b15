using AttentionSharp.Autograd;

namespace AttentionSharp;

public sealed unsafe partial class Tensor
{
    bool _requiresGrad;
    Tensor? _grad;

    /// <summary>
    /// Whether gradients flow to this tensor. Set it on leaves (parameters, inputs you differentiate by); results of
    /// recorded operations get it from their inputs.
    /// </summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (!value && GradFn is not null)
                throw new InvalidOperationException("Only leaf tensors can stop requiring gradients; use Detach() on a result.");
            _requiresGrad = value;
        }
    }

    /// <summary>The operation that produced this tensor, or null for a leaf.</summary>
    public GradNode? GradFn { get; internal set; }

    /// <summary>True for tensors not produced by a recorded operation.</summary>
    public bool IsLeaf => GradFn is null;

    /// <summary>
    /// The accumulated gradient of a leaf after <see cref="Backward(Tensor?)"/> (null until then). Backward adds to it, so call
    /// ZeroGrad between steps, or keep it to accumulate over several batches.
    /// </summary>
    public Tensor? Grad
    {
        get => _grad;
        set
        {
            if (value is not null && !ShapeMath.SameShape(value.Shape, Shape))
                throw new ArgumentException($"A gradient must have the tensor's shape {ShapeMath.Format(Shape)}, " +
                    $"got {ShapeMath.Format(value.Shape)}.");
            _grad = value;
        }
    }

    /// <summary>
    /// The gradient buffer backward rules accumulate into, created as zeros on first use. Public for code outside the
    /// engine that rewrites gradients in place, such as a data-parallel all-reduce.
    /// </summary>
    public Span<float> GradBuffer()
    {
        if (_memory is not null)
            throw new InvalidOperationException($"This tensor is on {_memory.Device.Name}: its gradient is the device " +
                "tensor Grad, not a host buffer.");
        if (_grad is null)
        {
            _grad = Uninitialized(_shape).DetachFromScope(); // gradients outlive the step's scope; the engine frees non-leaf ones
            Kernels.Simd.ElementWise.Clear(_grad.Data);
        }
        return _grad.Data;
    }

    /// <summary>
    /// The gradient buffer for a backward rule that sets every element of it: a tensor without one yet gets a new buffer
    /// left uninitialised, with <paramref name="overwrite"/> true, and the rule writes its gradient there instead of
    /// adding it to zeros (one pass over the memory instead of three); otherwise the existing buffer, added to.
    /// </summary>
    internal Span<float> GradBufferToSet(out bool overwrite)
    {
        overwrite = _grad is null;
        if (overwrite) _grad = Uninitialized(_shape).DetachFromScope();
        return GradBuffer();
    }

    /// <summary>Clears the gradient (sets it to zero if present).</summary>
    public void ZeroGrad()
    {
        if (_grad is null) return;
        if (_grad._memory is not null) DeviceBackendOf(_grad).Fill(_grad, 0f);
        else Kernels.Simd.ElementWise.Clear(_grad.Data);
    }

    /// <summary>The same values with no history: gradients do not flow through the result.</summary>
    public Tensor Detach() => ViewOf(_offset, _shape, _strides);

    /// <summary>
    /// Back-propagates from this tensor: fills <see cref="Grad"/> of every leaf that requires a gradient. A scalar needs
    /// no <paramref name="gradient"/> (it is taken as 1); otherwise pass ∂L/∂this with this tensor's shape.
    /// </summary>
    public void Backward(Tensor? gradient = null) => Engine.Backward(this, gradient);

    /// <summary>
    /// <see cref="Backward(Tensor?)"/>, calling <paramref name="gradientReady"/> with each leaf that requires a gradient
    /// as soon as the sweep has added the last part of it (in the order the sweep finishes them, on the calling thread),
    /// so that work on finished gradients (a data-parallel all-reduce) can start while the sweep goes on. A leaf the
    /// graph does not reach is not reported.
    /// </summary>
    public void Backward(Tensor? gradient, Action<Tensor> gradientReady)
    {
        ArgumentNullException.ThrowIfNull(gradientReady);
        Engine.Backward(this, gradient, gradientReady);
    }

    /// <summary>
    /// Records <paramref name="output"/> as produced from <paramref name="inputs"/> when any of them needs a gradient.
    /// </summary>
    internal static Tensor Record(Tensor output, string name, Tensor[] inputs, Action<Tensor> backward)
    {
        if (GradMode.IsAnomalyDetectionEnabled) NonFiniteException.CheckOutput(output, name);
        if (!GradMode.IsEnabled) return output;
        bool any = false;
        foreach (var input in inputs) any |= input._requiresGrad;
        if (!any) return output;
        output._requiresGrad = true;
        output.GradFn = new GradNode(name, inputs, backward);
        if (OpProfiler.Enabled) OpProfiler.Forward(name);
        return output;
    }

    internal void ReleaseGradBuffer()
    {
        _grad?.Dispose();
        _grad = null;
    }
}
