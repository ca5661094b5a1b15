namespace AttentionSharp.Gpu;

/// <summary>No GPU can be opened; the message is one sentence saying why (no NVIDIA driver, no CUDA device, …).</summary>
public sealed class GpuUnavailableException : Exception
{
    public GpuUnavailableException(string message) : base(message) { }

    public GpuUnavailableException(string message, Exception inner) : base(message, inner) { }
}
