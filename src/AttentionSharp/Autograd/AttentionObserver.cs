namespace AttentionSharp.Autograd;

/// <summary>
/// Sees the weights of every scaled dot-product attention call made on a thread while it is subscribed through
/// <see cref="AttentionSubscription.Subscribe"/>. This is how layers above the core (e.g. the visualization's attention
/// probe) inspect any model without the core knowing them.
/// </summary>
public interface IAttentionObserver
{
    /// <summary>
    /// Called once per attention call, in call order, with its (B, NH, Tq, Tk) weights before dropout. The tensor carries
    /// no gradient; like any tensor made inside a <see cref="TensorScope"/>, it is disposed when that scope ends.
    /// </summary>
    void OnAttention(Tensor weights);
}

/// <summary>
/// Subscribes an <see cref="IAttentionObserver"/> on this thread until disposed; nested subscriptions: the innermost one
/// observes. While an observer is subscribed, <see cref="Tensor.ScaledDotProductAttention"/> and
/// <see cref="Tensor.PackedSelfAttention"/> run on the plain path (the weights exist there); outputs equal the flash
/// path's to rounding. Calls that force <see cref="AttentionImplementation.Flash"/> are not observed.
/// </summary>
public sealed class AttentionSubscription : IDisposable
{
    [ThreadStatic] static AttentionSubscription? t_current;

    readonly AttentionSubscription? _previous;
    readonly IAttentionObserver _observer;
    bool _disposed;

    AttentionSubscription(IAttentionObserver observer, AttentionSubscription? previous)
    {
        _observer = observer;
        _previous = previous;
    }

    /// <summary>The observer subscribed innermost on this thread, if any.</summary>
    public static IAttentionObserver? Current => t_current?._observer;

    /// <summary>Makes <paramref name="observer"/> see this thread's attention calls until the result is disposed.</summary>
    public static AttentionSubscription Subscribe(IAttentionObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        return t_current = new AttentionSubscription(observer, t_current);
    }

    /// <summary>Ends the subscription; subscriptions must end innermost first, on the thread that made them.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        if (t_current != this) throw new InvalidOperationException("Attention observers must be unsubscribed in the reverse order they were subscribed, on the thread that subscribed them.");
        _disposed = true;
        t_current = _previous;
    }
}
