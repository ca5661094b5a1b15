namespace AttentionSharp.Autograd;

/// <summary>
/// Whether operations record themselves for backward on this thread. Inference runs inside <see cref="NoGrad"/> and keeps
/// nothing for the backward pass.
/// </summary>
public static class GradMode
{
    [ThreadStatic] static int _disabledDepth;

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
