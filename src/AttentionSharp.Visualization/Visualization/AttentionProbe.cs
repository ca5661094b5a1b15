using AttentionSharp.Autograd;

namespace AttentionSharp.Visualization;

/// <summary>One call of scaled dot-product attention as the probe saw it: weights (B, NH, Tq, Tk), row-major.</summary>
public sealed record AttentionRecord(int Batch, int Heads, int QueryLength, int KeyLength, float[] Weights)
{
    /// <summary>The (Tq, Tk) map of one batch element and head, as a fresh array.</summary>
    public float[,] Map(int batch, int head)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(batch, Batch);
        ArgumentOutOfRangeException.ThrowIfNegative(head);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(head, Heads);
        var map = new float[QueryLength, KeyLength];
        int start = (batch * Heads + head) * QueryLength * KeyLength;
        for (int i = 0; i < QueryLength; i++)
            for (int j = 0; j < KeyLength; j++) map[i, j] = Weights[start + i * KeyLength + j];
        return map;
    }
}

/// <summary>
/// Records the attention weights of every <see cref="Tensor.ScaledDotProductAttention"/> call on this thread while it is
/// open, in call order — for a model's forward pass that is layer order (encoder–decoder models interleave self- and
/// cross-attention as their layers call them). Any model can be inspected this way without code of its own:
/// <code>
/// using (var probe = AttentionProbe.Start())
/// using (GradMode.NoGrad()) model.Forward(ids, 1, ids.Length);
/// var maps = probe.Records;   // one per attention call
/// </code>
/// A probe is an <see cref="IAttentionObserver"/>: while it is open, attention runs on the plain path (the weights exist
/// there); outputs equal the flash path's to rounding. Calls that force <see cref="AttentionImplementation.Flash"/> are not recorded.
/// </summary>
public sealed class AttentionProbe : IAttentionObserver, IDisposable
{
    readonly List<AttentionRecord> _records = [];
    readonly AttentionSubscription _subscription;
    bool _disposed;

    AttentionProbe() => _subscription = AttentionSubscription.Subscribe(this);

    /// <summary>Opens a probe on this thread (nested probes: the innermost records).</summary>
    public static AttentionProbe Start() => new();

    /// <summary>The attention calls recorded so far, in order.</summary>
    public IReadOnlyList<AttentionRecord> Records => _records;

    void IAttentionObserver.OnAttention(Tensor weights)
    {
        var s = weights.Shape;
        _records.Add(new AttentionRecord(s[0], s[1], s[2], s[3], weights.ToArray()));
    }

    public void Dispose()
    {
        if (_disposed) return;
        if (AttentionSubscription.Current != this) throw new InvalidOperationException("Attention probes must be closed in the reverse order they were opened, on the thread that opened them.");
        _disposed = true;
        _subscription.Dispose();
    }
}
