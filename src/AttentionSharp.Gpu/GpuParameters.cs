// Source: Karpathy, llm.c train_gpt2.cu: parameters, gradients and AdamW moments in flat buffers of one layout.

namespace AttentionSharp.Gpu;

/// <summary>
/// A device model's parameters in one flat buffer, and its gradients and AdamW moments in three more of the same
/// layout: the parameters that decay first, then the rest, each group in the CPU model's order, so one AdamW step is
/// one launch per group over a contiguous range. Each parameter is a slice by the CPU model's name. Used by
/// <see cref="GpuGpt"/> and <see cref="GpuRecurrentClassifier"/>.
/// </summary>
public sealed class GpuParameters : IDisposable
{
    readonly GpuDevice _device;
    readonly GpuTensor _normSquared;
    readonly Dictionary<string, (long Offset, int[] Shape)> _layout = [];
    readonly string[] _names;
    readonly long _decayed;

    /// <summary>
    /// Lays out <paramref name="parameters"/> (name, host tensor, whether AdamW decays it) and uploads their values;
    /// gradients and moments start at zero. <paramref name="model"/> names the model in messages.
    /// </summary>
    public GpuParameters(GpuDevice device, IReadOnlyList<(string Name, Tensor Parameter, bool Decay)> parameters, string model)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(parameters);
        _device = device;
        Model = model;
        _names = [.. parameters.Select(p => p.Name)];
        long offset = 0;
        foreach (var (name, p, _) in parameters.Where(p => p.Decay).Concat(parameters.Where(p => !p.Decay)))
        {
            if (!_layout.TryAdd(name, (offset, p.Shape.ToArray())))
                throw new ArgumentException($"The parameter name '{name}' appears twice in the {model}.", nameof(parameters));
            offset += p.Count;
        }
        _decayed = parameters.Where(p => p.Decay).Sum(p => (long)p.Parameter.Count);
        if (offset > int.MaxValue)
            throw new NotSupportedException(
                $"The {model} on the GPU holds at most {int.MaxValue} parameters; this one has {offset}.");
        Count = offset;
        Values = device.Zeros((int)offset);
        Gradients = device.Zeros((int)offset);
        M = device.Zeros((int)offset);
        V = device.Zeros((int)offset);
        _normSquared = device.Zeros(1);
        CopyFrom(parameters.Select(p => (p.Name, p.Parameter)));
    }

    /// <summary>The model's name in messages ("GPU GPT", …).</summary>
    public string Model { get; }

    /// <summary>Parameters, in all.</summary>
    public long Count { get; }

    /// <summary>Parameter names in the CPU model's order.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>The flat parameter buffer.</summary>
    public GpuTensor Values { get; }

    /// <summary>The flat gradient buffer, the same layout.</summary>
    public GpuTensor Gradients { get; }

    /// <summary>AdamW's first and second moments, the same layout.</summary>
    public GpuTensor M { get; }

    /// <inheritdoc cref="M"/>
    public GpuTensor V { get; }

    /// <summary>Whether there is a parameter named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _layout.ContainsKey(name);

    /// <summary>Parameter <paramref name="name"/>'s slice of a flat buffer of this layout, with its shape.</summary>
    public GpuTensor Slice(GpuTensor flat, string name) => _layout.TryGetValue(name, out var at)
        ? flat.Slice(at.Offset, at.Shape)
        : throw new ArgumentException(
            $"The {Model} has no parameter '{name}'; it has {string.Join(", ", _names)}.", nameof(name));

    /// <summary>Overwrites the device values with the host tensors of the same names.</summary>
    public void CopyFrom(IEnumerable<(string Name, Tensor Parameter)> parameters)
    {
        foreach (var (name, p) in parameters) Slice(Values, name).CopyFrom(p.Contiguous().Data);
    }

    /// <summary>Writes the device values into the host tensors of the same names.</summary>
    public void CopyTo(IEnumerable<(string Name, Tensor Parameter)> parameters)
    {
        foreach (var (name, p) in parameters) Slice(Values, name).CopyTo(p.Data);
    }

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGrad() => Gradients.Clear();

    /// <summary>
    /// ‖g‖, the L2 norm over every gradient together (one pass over the flat gradient buffer, one float read back): what
    /// global-norm clipping scales by, as the CPU's <c>GradientClipping</c> computes it.
    /// </summary>
    public float GradNorm()
    {
        _normSquared.Clear();
        _device.Reduce.SumOfSquares(_normSquared, Gradients);
        return MathF.Sqrt(_normSquared.ToArray()[0]);
    }

    /// <summary>
    /// One AdamW step (step is 1-based) over every parameter, as the CPU's <c>Training.AdamW</c> with
    /// <paramref name="weightDecay"/> on the parameters laid out as decaying and none on the rest; gradients are read as
    /// gradScale·grad (the clip coefficient). Two launches: the decayed range of the flat buffers, then the rest.
    /// </summary>
    public void AdamWStep(float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale = 1f)
    {
        long rest = Count - _decayed;
        if (_decayed > 0)
            _device.AdamW.Step(Values.Slice(0, (int)_decayed), Gradients.Slice(0, (int)_decayed), M.Slice(0, (int)_decayed),
                V.Slice(0, (int)_decayed), lr, beta1, beta2, eps, weightDecay, step, gradScale);
        if (rest > 0)
            _device.AdamW.Step(Values.Slice(_decayed, (int)rest), Gradients.Slice(_decayed, (int)rest),
                M.Slice(_decayed, (int)rest), V.Slice(_decayed, (int)rest), lr, beta1, beta2, eps, 0f, step, gradScale);
    }

    public void Dispose()
    {
        Values.Dispose();
        Gradients.Dispose();
        M.Dispose();
        V.Dispose();
        _normSquared.Dispose();
    }
}
