namespace AttentionSharp.Autograd;

/// <summary>
/// Whether operations record themselves for backward on this thread. Inference runs inside <see cref="NoGrad"/> and keeps
/// nothing for the backward pass.
/// </summary>
public static class GradMode
{
    [ThreadStatic] static int _disabledDepth;
    [ThreadStatic] static int _anomalyDepth;

    /// <summary>
    /// True inside a <see cref="DetectAnomaly"/> scope: every operation checks its output and throws a
    /// <see cref="NonFiniteException"/> naming itself when the output holds a NaN or ±∞ (torch.autograd.detect_anomaly's
    /// forward half). It costs one pass over each output, so it is off by default.
    /// </summary>
    public static bool IsAnomalyDetectionEnabled => _anomalyDepth > 0;

    /// <summary>Checks every operation's output for NaN and ±∞ until the returned scope is disposed.</summary>
    public static AnomalyScope DetectAnomaly()
    {
        _anomalyDepth++;
        return new AnomalyScope();
    }

    public readonly struct AnomalyScope : IDisposable
    {
        public void Dispose() => _anomalyDepth--;
    }

    /// <summary>True unless the current thread is inside a <see cref="NoGrad"/> scope.</summary>
    public static bool IsEnabled => _disabledDepth == 0;

    /// <summary>Disables recording until the returned scope is disposed: <c>using (GradMode.NoGrad()) { … }</c>.</summary>
    public static Scope NoGrad()
    {
        _disabledDepth++;
        return new Scope();
    }

    public readonly struct Scope : IDisposable
    {
        public void Dispose() => _disabledDepth--;
    }
}
