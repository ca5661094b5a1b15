namespace AttentionSharp.Training;

/// <summary>
/// Stochastic gradient descent with momentum, dampening, weight decay and Nesterov's variant, with torch.optim.SGD's
/// arithmetic: g ← g + λp; b ← μb + (1−τ)g (b ← g on the first step); g ← g + μb (Nesterov) or b; p ← p − lr·g.
/// </summary>
public sealed class Sgd
{
    readonly (Tensor Param, float[] Buffer)[] _state;

    public Sgd(IEnumerable<Tensor> parameters, float lr, float momentum = 0f, float dampening = 0f, float weightDecay = 0f, bool nesterov = false)
    {
        if (!(lr >= 0)) throw new ArgumentOutOfRangeException(nameof(lr), lr, "The learning rate must be non-negative.");
        if (!(momentum >= 0)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "Momentum must be non-negative.");
        if (nesterov && (momentum <= 0 || dampening != 0)) throw new ArgumentException("Nesterov momentum needs momentum > 0 and dampening = 0 (as torch.optim.SGD).");
        _state = parameters.Select(p => (p, new float[p.Count])).ToArray();
        LearningRate = lr; Momentum = momentum; Dampening = dampening; WeightDecay = weightDecay; Nesterov = nesterov;
    }

    public float LearningRate { get; set; }
    public float Momentum { get; }
    public float Dampening { get; }
    public float WeightDecay { get; }
    public bool Nesterov { get; }
    public int StepCount { get; private set; }

    public void Step()
    {
        StepCount++;
        foreach (var (p, buffer) in _state)
        {
            if (p.Grad is null) continue;
            Kernels.Sgd.Step(p.Data, p.Grad.Data, buffer, LearningRate, Momentum, Dampening, WeightDecay, Nesterov, StepCount == 1);
        }
    }

    public void ZeroGrad()
    {
        foreach (var s in _state) s.Param.ZeroGrad();
    }
}
