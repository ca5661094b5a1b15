namespace AttentionSharp;

public sealed unsafe partial class Tensor
{
    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(params ReadOnlySpan<int> shape) => Full(0f, shape);

    /// <summary>A tensor of zeros on <paramref name="device"/>.</summary>
    public static Tensor Zeros(Device device, params ReadOnlySpan<int> shape)
    {
        ArgumentNullException.ThrowIfNull(device);
        return device.IsCpu ? Zeros(shape) : DeviceZeros(device, shape);
    }

    /// <summary>A tensor of ones.</summary>
    public static Tensor Ones(params ReadOnlySpan<int> shape) => Full(1f, shape);

    /// <summary>A tensor with every element equal to <paramref name="value"/>.</summary>
    public static Tensor Full(float value, params ReadOnlySpan<int> shape)
    {
        var t = Uninitialized(shape);
        t.Data.Fill(value);
        return t;
    }

    /// <summary>A tensor of zeros with the shape of <paramref name="like"/>.</summary>
    public static Tensor ZerosLike(Tensor like) => Zeros(like.Shape);

    /// <summary>The values start, start + step, … below end (as torch.arange).</summary>
    public static Tensor Arange(float start, float end, float step = 1f)
    {
        if (step == 0 || float.IsNaN(step)) throw new ArgumentException("Arange needs a non-zero step.", nameof(step));
        if (!float.IsFinite(start) || !float.IsFinite(end)) throw new ArgumentException("Arange needs finite bounds, " +
            $"got {start} and {end}.");
        int n = Math.Max(0, (int)Math.Ceiling((end - start) / (double)step));
        var t = Uninitialized([n]);
        var d = t.Data;
        for (int i = 0; i < n; i++) d[i] = (float)(start + (double)i * step);
        return t;
    }

    /// <summary>The values 0, 1, …, n − 1.</summary>
    public static Tensor Arange(int n) => Arange(0, n);

    /// <summary>A tensor holding a copy of <paramref name="data"/> with the given shape.</summary>
    public static Tensor FromArray(ReadOnlySpan<float> data, params ReadOnlySpan<int> shape)
    {
        int count = ShapeMath.Count(shape);
        if (count != data.Length)
            throw new ArgumentException($"Shape {ShapeMath.Format(shape)} holds {count} elements, but " +
                $"{data.Length} values were given.", nameof(data));
        var t = Uninitialized(shape);
        data.CopyTo(t.Data);
        return t;
    }

    /// <summary>A one-element tensor of rank 0.</summary>
    public static Tensor Scalar(float value) => Full(value, []);

    /// <summary>Samples of N(mean, std²) drawn from <paramref name="rng"/>.</summary>
    public static Tensor Randn(Generator rng, params ReadOnlySpan<int> shape) => Normal(rng, 0f, 1f, shape);

    /// <summary>Samples of N(mean, std²) drawn from <paramref name="rng"/>.</summary>
    public static Tensor Normal(Generator rng, float mean, float std, params ReadOnlySpan<int> shape)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (!(std >= 0)) throw new ArgumentOutOfRangeException(nameof(std), std, "The standard deviation must be non-negative.");
        var t = Uninitialized(shape);
        var d = t.Data;
        for (int i = 0; i < d.Length; i++) d[i] = (float)(mean + std * rng.NextNormal());
        return t;
    }

    /// <summary>Samples uniform in [low, high) drawn from <paramref name="rng"/>.</summary>
    public static Tensor Uniform(Generator rng, float low, float high, params ReadOnlySpan<int> shape)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (!(high >= low)) throw new ArgumentException($"Uniform needs low ≤ high, got [{low}, {high}).");
        var t = Uninitialized(shape);
        var d = t.Data;
        for (int i = 0; i < d.Length; i++) d[i] = (float)(low + (high - low) * rng.NextDouble());
        return t;
    }

    /// <summary>Samples uniform in [0, 1).</summary>
    public static Tensor Rand(Generator rng, params ReadOnlySpan<int> shape) => Uniform(rng, 0f, 1f, shape);

    /// <summary>A dense copy that records no history (torch's clone().detach()).</summary>
    public Tensor Copy()
    {
        if (_memory is not null) return DeviceCopy();
        var t = Uninitialized(_shape);
        CopyTo(t.Data);
        return t;
    }

    /// <summary>Copies <paramref name="source"/>'s elements into this tensor, in place (shapes must match).</summary>
    public void CopyFrom_(Tensor source)
    {
        if (!ShapeMath.SameShape(Shape, source.Shape))
            throw new ArgumentException($"Cannot copy a {ShapeMath.Format(source.Shape)} tensor " +
                $"into a {ShapeMath.Format(Shape)} one.", nameof(source));
        if (_memory is not null) { DeviceBackendOf(this).CopyFromHost(DenseOnDevice(this), source.ToArray()); return; }
        if (IsContiguous) { source.CopyTo(Data); return; }
        using var staged = ReferenceEquals(source.Storage, Storage) ? source.Copy() : null; // views may overlap: read all first
        var from = staged ?? source;
        Strided.Copy(Pointer, _strides, from.Pointer, from._strides, _shape);
    }
}
