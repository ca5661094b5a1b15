using AttentionSharp.Kernels;

namespace AttentionSharp.Training;

/// <summary>
/// Adam with decoupled weight decay (Loshchilov and Hutter 2019), with the same arithmetic as torch.optim.AdamW:
/// p ← p − lr·λ·p; m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
/// p ← p − lr·m̂/(√v̂ + ε) with bias-corrected m̂, v̂.
/// Weight decay applies only to the parameters marked for it (by convention matrices, not biases, norms or embeddings'
/// positions; the caller decides).
/// </summary>
/// <remarks>
/// Parameters on a device (<see cref="Device"/>) keep their moments there and step with the device's kernel; create the
/// optimizer after moving the model (<see cref="Nn.Module.To"/>).
/// </remarks>
public sealed class AdamW
{
    readonly (Tensor Param, bool Decay, float[] M, float[] V)[] _state;
    readonly (Tensor M, Tensor V)?[] _onDevice;   // the moments of parameters on a device, there (see Follow)

    public AdamW(IEnumerable<(Tensor Param, bool Decay)> parameters, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 0.01f)
    {
        if (!(lr >= 0)) throw new ArgumentOutOfRangeException(nameof(lr), lr, "The learning rate must be non-negative.");
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1).");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1).");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be non-negative.");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay,
            "Weight decay must be non-negative.");
        _state = parameters.Select(p => (p.Param, p.Decay, new float[p.Param.Count], new float[p.Param.Count])).ToArray();
        _onDevice = new (Tensor, Tensor)?[_state.Length];
        for (int i = 0; i < _state.Length; i++) Follow(i);
        LearningRate = lr; Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
    }

    /// <summary>All parameters with weight decay.</summary>
    public AdamW(IEnumerable<Tensor> parameters, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
        float weightDecay = 0.01f)
        : this(parameters.Select(p => (p, true)), lr, beta1, beta2, eps, weightDecay) { }

    /// <summary>The rate used by the next <see cref="Step"/>; a schedule sets it before each step.</summary>
    public float LearningRate { get; set; }
    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Eps { get; }
    public float WeightDecay { get; }

    /// <summary>Steps taken so far (bias correction uses it).</summary>
    public int StepCount { get; private set; }

    /// <summary>
    /// Updates every parameter that has a gradient, read as <paramref name="gradScale"/>·grad (pass the factor from
    /// <see cref="GradientClipping.ClipCoefficient"/> to clip without a separate pass over the gradients).
    /// </summary>
    public void Step(float gradScale = 1f)
    {
        StepCount++;
        for (int i = 0; i < _state.Length; i++)   // a device's kernels queue in order, from this thread
        {
            Follow(i);
            var (p, decay, _, _) = _state[i];
            if (_onDevice[i] is not { } moments || p.Grad is null) continue;
            Kernels.AdamW.Step(p, p.Grad, moments.M, moments.V, LearningRate, Beta1, Beta2, Eps, decay ? WeightDecay : 0f,
                StepCount, gradScale);
        }
        Kernels.Parallel.ForEachTensor(_state.Length, i => _state[i].Param.Count, i =>
        {
            var (p, decay, m, v) = _state[i];
            if (p.Grad is null || _onDevice[i] is not null) return;
            Kernels.AdamW.Step(p.Data, p.Grad.Data, m, v, LearningRate, Beta1, Beta2, Eps, decay ? WeightDecay : 0f,
                StepCount, gradScale);
        });
    }

    /// <summary>Zeroes every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        Kernels.Parallel.ForEachTensor(_state.Length, i => _state[i].Param.Count, i => _state[i].Param.ZeroGrad());
    }

    /// <summary>
    /// First and second moments of parameter i, for checkpoints: the optimizer's own arrays for a parameter on the CPU, a
    /// copy of the device's for one on a device (write through <see cref="SetMoments"/>).
    /// </summary>
    public (float[] M, float[] V) Moments(int i)
    {
        Follow(i);
        var (_, _, m, v) = _state[i];
        if (_onDevice[i] is { } moments) { moments.M.CopyTo(m); moments.V.CopyTo(v); }
        return (m, v);
    }

    /// <summary>
    /// Puts parameter i's moments where the parameter lives, so that they follow a model moved after the optimizer was
    /// made (<see cref="Nn.Module.To"/>): onto its device from the host arrays, or back into them from a device.
    /// </summary>
    void Follow(int i)
    {
        var (p, _, m, v) = _state[i];
        var device = p.Device;
        if (_onDevice[i] is { } there)
        {
            if (ReferenceEquals(there.M.Device, device)) return;
            there.M.CopyTo(m); there.V.CopyTo(v);   // back to the host first
            there.M.Dispose(); there.V.Dispose();
            _onDevice[i] = null;
        }
        if (device.IsCpu) return;
        var (onM, onV) = (Tensor.Zeros(device, p.Shape).DetachFromScope(), Tensor.Zeros(device, p.Shape).DetachFromScope());
        onM.CopyFrom_(Tensor.FromArray(m, p.Shape)); onV.CopyFrom_(Tensor.FromArray(v, p.Shape));
        _onDevice[i] = (onM, onV);
    }

    /// <summary>Sets the moments of parameter i (a checkpoint's, on resuming), wherever they live.</summary>
    public void SetMoments(int i, ReadOnlySpan<float> m, ReadOnlySpan<float> v)
    {
        var (p, _, hostM, hostV) = _state[i];
        if (m.Length != p.Count || v.Length != p.Count)
            throw new ArgumentException($"Parameter {i} has {p.Count} elements; the moments given have {m.Length} and " +
                $"{v.Length}.");
        m.CopyTo(hostM); v.CopyTo(hostV);
        Follow(i);
        if (_onDevice[i] is { } moments)
        {
            moments.M.CopyFrom_(Tensor.FromArray(hostM, p.Shape));
            moments.V.CopyFrom_(Tensor.FromArray(hostV, p.Shape));
        }
    }

    /// <summary>Restores the step count (moments are restored through <see cref="Moments"/>).</summary>
    public void RestoreStep(int step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "The step count cannot be negative.");
        StepCount = step;
    }
}
