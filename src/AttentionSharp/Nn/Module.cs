namespace AttentionSharp.Nn;

/// <summary>
/// A layer or model: parameters and child modules registered explicitly by name (no reflection), so
/// <see cref="NamedParameters"/> yields PyTorch-style dotted names ("h.0.attn.c_attn.weight") that map one-to-one onto
/// checkpoints.
/// </summary>
public abstract class Module
{
    readonly List<(string Name, Tensor Tensor)> _parameters = [];
    readonly List<(string Name, Module Module)> _children = [];
    readonly List<(string Name, Generator Generator)> _generators = [];

    /// <summary>True in training mode (dropout active), false after <see cref="Eval"/>.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Registers a learnable tensor under <paramref name="name"/> and marks it as requiring a gradient.</summary>
    protected Tensor RegisterParameter(string name, Tensor tensor)
    {
        CheckName(name);
        tensor.RequiresGrad = true;
        _parameters.Add((name, tensor));
        return tensor;
    }

    /// <summary>Registers a child module under <paramref name="name"/>.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        _children.Add((name, module));
        return module;
    }

    /// <summary>
    /// Registers a generator this module draws from while training (dropout masks) under <paramref name="name"/>, so a
    /// checkpoint can save its state and resuming continues the same draws (<see cref="NamedGenerators"/>).
    /// </summary>
    protected Generator RegisterGenerator(string name, Generator generator)
    {
        if (_generators.Any(g => g.Name == name))
            throw new ArgumentException($"A generator '{name}' is already registered in {GetType().Name}.", nameof(name));
        _generators.Add((name, generator));
        return generator;
    }

    /// <summary>
    /// Every generator the module and its children draw from, with its dotted name; a generator shared by several
    /// modules is listed once, under its first name.
    /// </summary>
    public IEnumerable<(string Name, Generator Generator)> NamedGenerators()
    {
        var seen = new HashSet<Generator>(ReferenceEqualityComparer.Instance);
        return AllGenerators("").Where(g => seen.Add(g.Generator));
    }

    IEnumerable<(string Name, Generator Generator)> AllGenerators(string prefix)
    {
        foreach (var (name, g) in _generators) yield return (prefix + name, g);
        foreach (var (name, child) in _children)
            foreach (var g in child.AllGenerators(prefix + name + ".")) yield return g;
    }

    void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"A parameter or module name must be non-empty and contain no '.'; got '{name}'.",
                nameof(name));
        if (_parameters.Any(p => p.Name == name) || _children.Any(c => c.Name == name))
            throw new ArgumentException($"'{name}' is already registered in {GetType().Name}.", nameof(name));
    }

    /// <summary>Every parameter with its dotted name, depth first in registration order.</summary>
    public IEnumerable<(string Name, Tensor Parameter)> NamedParameters(string prefix = "")
    {
        foreach (var (name, t) in _parameters) yield return (prefix + name, t);
        foreach (var (name, child) in _children)
            foreach (var p in child.NamedParameters(prefix + name + ".")) yield return p;
    }

    /// <summary>Every parameter, in the order of <see cref="NamedParameters"/>.</summary>
    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Parameter);

    /// <summary>Child modules with their names.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children;

    /// <summary>The parameters by name (the live tensors, not copies).</summary>
    public Dictionary<string, Tensor> StateDict() => NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);

    /// <summary>
    /// Copies values into the parameters by name. With <paramref name="strict"/>, every parameter must be present and no
    /// extra name may appear; shapes must always match. Nothing is changed unless everything checks out.
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        var own = StateDict();
        var missing = own.Keys.Where(k => !state.ContainsKey(k)).ToList();
        var unexpected = state.Keys.Where(k => !own.ContainsKey(k)).ToList();
        if (strict && (missing.Count > 0 || unexpected.Count > 0))
            throw new ArgumentException("The state does not match the model:" +
                (missing.Count > 0 ? $" missing {string.Join(", ", missing)}." : "") +
                (unexpected.Count > 0 ? $" unexpected {string.Join(", ", unexpected)}." : ""));
        foreach (var (name, target) in own)
            if (state.TryGetValue(name, out var source) && !source.Shape.SequenceEqual(target.Shape))
                throw new ArgumentException($"Parameter '{name}' has shape {ShapeMath.Format(target.Shape)} in the model but " +
                    $"{ShapeMath.Format(source.Shape)} in the state.");
        foreach (var (name, target) in own)
            if (state.TryGetValue(name, out var source)) { target.ClearQuantized(); target.CopyFrom_(source); }
    }

    /// <summary>This module and every module under it, depth first.</summary>
    public IEnumerable<Module> Modules()
    {
        yield return this;
        foreach (var (_, child) in _children)
            foreach (var m in child.Modules()) yield return m;
    }

    /// <summary>Switches this module and its children to training (true) or evaluation (false) mode.</summary>
    public Module Train(bool mode = true)
    {
        Training = mode;
        foreach (var (_, child) in _children) child.Train(mode);
        return this;
    }

    /// <summary>Evaluation mode: dropout off.</summary>
    public Module Eval() => Train(false);

    /// <summary>
    /// Moves every parameter (and its gradient) to <paramref name="device"/> in place (<see cref="Tensor.MoveTo"/>), so
    /// that references to them, an optimizer's among them, follow; returns this module. Create the optimizer after the
    /// move, so that its moments live on the device too.
    /// </summary>
    public Module To(Device device)
    {
        foreach (var p in Parameters()) p.MoveTo(device);
        return this;
    }

    /// <summary>Zeroes every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.ZeroGrad();
    }

    /// <summary>Total number of learnable values.</summary>
    public long ParameterCount() => Parameters().Sum(p => (long)p.Count);
}
