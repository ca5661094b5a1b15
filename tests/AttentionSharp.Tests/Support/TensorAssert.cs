using Xunit.Sdk;

namespace AttentionSharp.Tests.Support;

/// <summary>Element-wise comparisons whose failures name the index, the expected and actual values and the largest difference.</summary>
public static class TensorAssert
{
    /// <summary>Asserts |expected − actual| ≤ atol + rtol·|expected| everywhere; returns the largest absolute difference.</summary>
    public static double Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol = 0, string what = "values")
    {
        if (expected.Length != actual.Length)
            throw new XunitException($"{what}: expected {expected.Length} elements, got {actual.Length}.");
        double maxDiff = 0; int worst = -1; bool failed = false; int firstBad = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            double diff = double.IsNaN(e) && double.IsNaN(a) ? 0 : e == a ? 0 : Math.Abs(e - a);
            if (double.IsNaN(diff)) diff = double.PositiveInfinity;
            if (diff > maxDiff) { maxDiff = diff; worst = i; }
            if (!(diff <= atol + rtol * Math.Abs(e)) && !failed) { failed = true; firstBad = i; }
        }
        if (failed)
            throw new XunitException($"{what}: first mismatch at index {firstBad}: expected {expected[firstBad]:G9}, actual {actual[firstBad]:G9}; max difference {maxDiff:G4} at index {worst} (atol {atol:G3}, rtol {rtol:G3}).");
        return maxDiff;
    }

    public static double Close(Tensor expected, Tensor actual, double atol, double rtol = 0, string what = "tensor")
    {
        if (!expected.Shape.SequenceEqual(actual.Shape))
            throw new XunitException($"{what}: expected shape {Format(expected.Shape)}, got {Format(actual.Shape)}.");
        return Close(expected.ToArray(), actual.ToArray(), atol, rtol, what);
    }

    public static string Format(ReadOnlySpan<int> shape) => "(" + string.Join(", ", shape.ToArray()) + ")";
}
