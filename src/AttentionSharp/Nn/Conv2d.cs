namespace AttentionSharp.Nn;

/// <summary>
/// A 2-D convolution as torch.nn.Conv2d computes it (square kernel, zero padding, no dilation or groups): the image's
/// windows unrolled (<see cref="Tensor.Unfold2d"/>) times the weight (C_out, C_in, K, K) viewed as (C_out, C_in·K·K),
/// plus the bias. The weight and bias have torch's shapes and names, and its initialisation: U(−1/√fan_in, 1/√fan_in)
/// with fan_in = C_in·K·K.
/// </summary>
public sealed class Conv2d : Module
{
    public Conv2d(int inChannels, int outChannels, int kernel, int stride, int padding, Generator rng, bool bias = true)
    {
        if (inChannels <= 0 || outChannels <= 0)
            throw new ArgumentException($"Conv2d needs positive channel counts; got in_channels = {inChannels}, " +
                                        $"out_channels = {outChannels}.");
        if (kernel <= 0 || stride <= 0 || padding < 0 || padding >= kernel)
            throw new ArgumentException($"Conv2d needs kernel > 0, stride > 0 and 0 ≤ padding < kernel; got kernel {kernel}, " +
                                        $"stride {stride}, padding {padding}.");
        InChannels = inChannels; OutChannels = outChannels; Kernel = kernel; Stride = stride; Padding = padding;
        float bound = 1f / MathF.Sqrt(inChannels * kernel * kernel);
        Weight = RegisterParameter("weight", Tensor.Uniform(rng, -bound, bound, outChannels, inChannels, kernel, kernel));
        if (bias) Bias = RegisterParameter("bias", Tensor.Uniform(rng, -bound, bound, outChannels));
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int Kernel { get; }
    public int Stride { get; }
    public int Padding { get; }
    public Tensor Weight { get; }   // (out, in, K, K)
    public Tensor? Bias { get; }    // (out)

    /// <summary>The output side for an input side.</summary>
    public int OutputSide(int side) => Kernels.Unfold.OutputSide(side, Kernel, Stride, Padding);

    /// <summary>Images (B, C_in, H, W) → one row per output pixel, (B, Ho·Wo, C_out), pixels in row-major order.</summary>
    public Tensor ForwardRows(Tensor images)
    {
        if (images.Rank != 4 || images.Size(1) != InChannels)
            throw new ArgumentException($"Conv2d expects images (B, {InChannels}, H, W); got {ShapeMath.Format(images.Shape)}.",
                nameof(images));
        return Tensor.Linear(images.Unfold2d(Kernel, Stride, Padding),
            Weight.Reshape(OutChannels, InChannels * Kernel * Kernel), Bias);
    }

    /// <summary>Images (B, C_in, H, W) → (B, C_out, Ho, Wo), as torch.nn.Conv2d.</summary>
    public Tensor Forward(Tensor images)
    {
        var rows = ForwardRows(images);
        int b = images.Size(0), ho = OutputSide(images.Size(2)), wo = OutputSide(images.Size(3));
        return rows.Transpose(1, 2).Reshape(b, OutChannels, ho, wo);
    }
}
