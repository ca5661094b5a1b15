using System.Numerics.Tensors;
using AttentionSharp.Kernels.Simd;
using static AttentionSharp.Tests.Kernels.KernelTestKit;

namespace AttentionSharp.Tests.Kernels;

/// <summary>
/// The threaded element-wise helpers the autograd uses for copies and gradient sums give TensorPrimitives' floats bit
/// for bit, at every length (threaded ones included) and in place.
/// </summary>
[Trait("Category", "Kernels")]
public class ElementWiseTests
{
    [Fact]
    public void HelpersGiveTensorPrimitivesBits()
    {
        foreach (int n in Lengths())
        {
            var rng = new Random(n);
            var (a, b, y0) = (Uniform(rng, n, 3f), Uniform(rng, n, 3f), Uniform(rng, n, 3f));
            var (y, expected) = (new float[n], new float[n]);

            ElementWise.Copy(y, a);
            Assert.Equal(a, y);

            ElementWise.Add(y, a, b);
            TensorPrimitives.Add(a, b, expected);
            Assert.Equal(expected, y);

            ElementWise.Multiply(y, a, b);
            TensorPrimitives.Multiply(a, b, expected);
            Assert.Equal(expected, y);

            y0.CopyTo(y);
            ElementWise.MultiplyAccumulate(y, a, b);
            TensorPrimitives.MultiplyAdd(a, b, y0, expected);
            Assert.Equal(expected, y);

            ElementWise.Add(y, y, a); // in place, as gradients are summed
            TensorPrimitives.Add(expected, a, expected);
            Assert.Equal(expected, y);

            ElementWise.Clear(y);
            Assert.All(y, v => Assert.Equal(0, BitConverter.SingleToInt32Bits(v)));
        }
    }

    [Fact]
    public void HelpersRefuseSpansOfDifferentLengths()
    {
        var (a, b) = (new float[5], new float[4]);
        Assert.Throws<ArgumentException>(() => ElementWise.Add(a, a, b));
        Assert.Throws<ArgumentException>(() => ElementWise.Copy(b, a));
        Assert.Throws<ArgumentException>(() => ElementWise.MultiplyAccumulate(a, b, a));
    }
}
