namespace AttentionSharp;

/// <summary>
/// Disposes every tensor created on this thread while it is the current scope, when the scope ends — so a training step
/// or an inference call returns all of its activations to <see cref="StoragePool"/> at once:
/// <code>using (TensorScope.Begin()) { var loss = model.Loss(…); loss.Backward(); optimizer.Step(); }</code>
/// Gradients of leaves are never owned by a scope. A tensor that must outlive the scope (a cache, a result) is released
/// from it with <see cref="Tensor.DetachFromScope"/>. Scopes nest; a tensor belongs to the innermost one.
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] static TensorScope? _current;

    readonly TensorScope? _outer;
    readonly List<Tensor> _tensors = [];
    bool _disposed;

    TensorScope(TensorScope? outer) => _outer = outer;

    /// <summary>Starts a scope on this thread; dispose it to release what was created inside.</summary>
    public static TensorScope Begin() => _current = new TensorScope(_current);

    internal static TensorScope? Current => _current;

    internal void Track(Tensor tensor) => _tensors.Add(tensor);

    /// <summary>How many tensors this scope will dispose.</summary>
    public int Count => _tensors.Count(t => ReferenceEquals(t.Scope, this));

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!ReferenceEquals(_current, this))
            throw new InvalidOperationException("Tensor scopes must end in the reverse order they began (an inner scope is still open).");
        _current = _outer;
        foreach (var t in _tensors)
            if (ReferenceEquals(t.Scope, this)) t.Dispose();
        _tensors.Clear();
    }
}
