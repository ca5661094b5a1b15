using System.Runtime.Intrinsics;
using Xunit.Sdk;

namespace AttentionSharp.Tests.Kernels;

/// <summary>Random data, comparisons that report index, expected, actual and max difference, and finite differences.</summary>
internal static class KernelTestKit
{
    /// <summary>
    /// Every column count 1–257 for a few row counts, odd shapes, and one shape large enough to run threaded.
    /// </summary>
    public static IEnumerable<(int Rows, int Cols)> RowShapes()
    {
        for (int cols = 1; cols <= 257; cols++)
        {
            yield return (1, cols);
            yield return (3, cols);
        }
        yield return (0, 5);
        yield return (2, 0);
        yield return (3, 1000);
        yield return (7, 1);
        yield return (96, 1031); // > Work.ParallelThreshold floats: takes the threaded path
    }

    /// <summary>Every length 0–257 and one large enough to run threaded.</summary>
    public static IEnumerable<int> Lengths() => Enumerable.Range(0, 258).Append(100_003);

    /// <summary>
    /// The register width the kernels run with under the current runtime settings, printed in every failure. On .NET 10
    /// DOTNET_EnableAVX512=0 selects the 256-bit path (DOTNET_EnableAVX512F=0 no longer turns Vector512 off),
    /// DOTNET_EnableAVX2=0 or DOTNET_EnableHWIntrinsic=0 the scalar one.
    /// </summary>
    public static string ActiveWidth =>
        Vector512.IsHardwareAccelerated ? "512" : Vector256.IsHardwareAccelerated ? "256" : "scalar";

    public static float[] Uniform(Random rng, int n, float scale)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return x;
    }

    /// <summary>What a buffer may hold before a kernel writes it: NaN every third element, huge values between.</summary>
    public static float[] Garbage(int n) =>
        Enumerable.Range(0, n).Select(i => i % 3 == 0 ? float.NaN : 1e30f * (i % 7 - 3)).ToArray();

    /// <summary>
    /// Asserts that <paramref name="actual"/> holds the same bits as <paramref name="expected"/>, element by element.
    /// </summary>
    public static void SameBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"{what}: element {i} is {actual[i]:R}, expected {expected[i]:R} bit for bit");
    }

    public static double[] ToDouble(ReadOnlySpan<float> x)
    {
        var d = new double[x.Length];
        for (int i = 0; i < x.Length; i++) d[i] = x[i];
        return d;
    }

    /// <summary>
    /// Asserts |expected − actual| ≤ atol + rtol·|expected| element-wise; equal infinities and NaN against NaN pass.
    /// The failure message gives the first failing index, both values and the largest difference.
    /// </summary>
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int firstBad = -1;
        double maxDiff = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (e.Equals(a)) continue;
            double diff = Math.Abs(e - a);
            if (double.IsNaN(diff)) diff = double.PositiveInfinity;
            maxDiff = Math.Max(maxDiff, diff);
            if (!(diff <= atol + rtol * Math.Abs(e)) && firstBad < 0) firstBad = i;
        }
        if (firstBad >= 0)
            throw new XunitException(
                $"{what} [{ActiveWidth}]: index {firstBad}: expected {expected[firstBad]:R}, actual {actual[firstBad]:R}; " +
                $"max difference {maxDiff:G6} (atol {atol:G3}, rtol {rtol:G3}).");
    }

    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what)
    {
        var e = new float[expected.Length];
        for (int i = 0; i < e.Length; i++) e[i] = (float)expected[i];
        Close(e, actual, atol, rtol, what);
    }

    /// <summary>∂loss/∂x_i by central differences in double: (loss(x + h·e_i) − loss(x − h·e_i)) / 2h.</summary>
    public static double[] NumericGradient(Func<double[], double> loss, double[] x, double h = 1e-6)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + h;
            double plus = loss(x);
            x[i] = keep - h;
            double minus = loss(x);
            x[i] = keep;
            g[i] = (plus - minus) / (2 * h);
        }
        return g;
    }

    /// <summary>Σ_i w_i·y_i: a scalar loss whose gradient with respect to y is w.</summary>
    public static double Dot(ReadOnlySpan<double> w, ReadOnlySpan<double> y)
    {
        double s = 0;
        for (int i = 0; i < w.Length; i++) s += w[i] * y[i];
        return s;
    }
}
