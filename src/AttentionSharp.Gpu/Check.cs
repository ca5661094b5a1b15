namespace AttentionSharp.Gpu;

/// <summary>Host-side argument checks of the kernel families: each says what was expected and what arrived.</summary>
internal static class Check
{
    /// <summary>The tensor lives on <paramref name="device"/> and holds exactly <paramref name="count"/> floats.</summary>
    public static void Count(GpuDevice device, GpuTensor tensor, long count, string name, string what)
    {
        ArgumentNullException.ThrowIfNull(tensor, name);
        OnDevice(device, tensor.Device, name);
        if (tensor.Count != count)
            throw new ArgumentException($"{name} must hold {what} = {count} floats; it holds {tensor.Count} (shape " +
                $"({string.Join(", ", tensor.Shape.ToArray())})).", name);
    }

    /// <summary>The tensor lives on <paramref name="device"/> and holds at least <paramref name="count"/> floats.</summary>
    public static void AtLeast(GpuDevice device, GpuTensor tensor, long count, string name, string what)
    {
        ArgumentNullException.ThrowIfNull(tensor, name);
        OnDevice(device, tensor.Device, name);
        if (tensor.Count < count)
            throw new ArgumentException($"{name} must hold at least {what} = {count} floats; it holds {tensor.Count}.", name);
    }

    /// <summary>The buffer lives on <paramref name="device"/> and holds exactly <paramref name="length"/> integers.</summary>
    public static void Length(GpuDevice device, GpuIntBuffer buffer, long length, string name, string what)
    {
        ArgumentNullException.ThrowIfNull(buffer, name);
        OnDevice(device, buffer.Device, name);
        if (buffer.Length != length)
            throw new ArgumentException($"{name} must hold {what} = {length} integers; it holds {buffer.Length}.", name);
    }

    public static void NonNegative(int value, string name)
    {
        if (value < 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be non-negative; got {value}.");
    }

    static void OnDevice(GpuDevice expected, GpuDevice actual, string name)
    {
        if (!ReferenceEquals(expected, actual))
            throw new ArgumentException($"{name} lives on another device ({actual.Name}) than the kernel's " +
                $"({expected.Name}).", name);
    }
}
