namespace AttentionSharp.Gpu;

/// <summary>
/// One tensor compared between the CPU engine (expected) and a device (actual): |expected − actual| ≤ atol +
/// rtol·|expected| element-wise, equal infinities and NaN against NaN passing. Holds the largest difference and, when
/// it fails, the first failing index with both values.
/// </summary>
public sealed record GpuComparison(string Name, int Count, double MaxDifference, double Atol, double Rtol, string? Failure)
{
    /// <summary>Whether every element is within tolerance.</summary>
    public bool Passed => Failure is null;

    /// <summary>Compares <paramref name="actual"/> with <paramref name="expected"/>.</summary>
    public static GpuComparison Of(string name, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol,
        double rtol)
    {
        if (expected.Length != actual.Length)
            return new(name, expected.Length, double.NaN, atol, rtol,
                $"{expected.Length} values were expected, {actual.Length} arrived");
        string? failure = null;
        double max = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (e == a || (double.IsNaN(e) && double.IsNaN(a))) continue;
            double diff = Math.Abs(e - a);
            if (!(diff <= max)) max = diff;
            if (!(diff <= atol + rtol * Math.Abs(e)))
                failure ??= $"index {i}: expected {e:G9}, actual {a:G9}";
        }
        return new(name, expected.Length, max, atol, rtol, failure);
    }

    public override string ToString() =>
        $"{Name} ({Count}): max |Δ| {MaxDifference:G3} (atol {Atol:G2}, rtol {Rtol:G2})" +
        (Failure is null ? "" : $", FAILED at {Failure}");
}
