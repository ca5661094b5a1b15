// Reference twin of Kernels.Gelu: plain loops in double. Sources: Hendrycks & Gimpel (2016); Abramowitz & Stegun,
// Handbook of Mathematical Functions, 7.1.6 (the everywhere-positive series for erf used here) and 7.1.14 (the
// continued fraction for erfc).
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain GELU in both forms, with erf evaluated to double precision.</summary>
public static class Gelu
{
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, GeluApproximation approximation)
    {
        Guard.SameLength(nameof(y), y.Length, x.Length, nameof(x));
        for (int i = 0; i < x.Length; i++) y[i] = (float)Value(x[i], approximation);
    }

    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, GeluApproximation approximation)
    {
        Guard.SameLength(nameof(dx), dx.Length, x.Length, nameof(x));
        Guard.SameLength(nameof(dy), dy.Length, x.Length, nameof(x));
        for (int i = 0; i < x.Length; i++) dx[i] = (float)(dx[i] + dy[i] * Derivative(x[i], approximation));
    }

    const double Cubic = 0.044715;
    static readonly double Sqrt2OverPi = Math.Sqrt(2 / Math.PI);

    internal static double Value(double x, GeluApproximation approximation) => approximation switch
    {
        // ½x(1 + erf(x/√2))
        GeluApproximation.None => 0.5 * x * (1 + Erf(x / Math.Sqrt(2))),
        // ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
        GeluApproximation.Tanh => 0.5 * x * (1 + Math.Tanh(Sqrt2OverPi * (x + Cubic * x * x * x))),
        _ => throw new ArgumentOutOfRangeException(nameof(approximation), approximation, "approximation must be None or Tanh."),
    };

    internal static double Derivative(double x, GeluApproximation approximation)
    {
        if (approximation == GeluApproximation.None)
            // Φ(x) + x·φ(x)
            return 0.5 * (1 + Erf(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);
        if (approximation != GeluApproximation.Tanh)
            throw new ArgumentOutOfRangeException(nameof(approximation), approximation, "approximation must be None or Tanh.");
        // ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)
        double t = Math.Tanh(Sqrt2OverPi * (x + Cubic * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * Sqrt2OverPi * (1 + 3 * Cubic * x * x);
    }

    /// <summary>
    /// Φ(x) = ½·erfc(−x/√2) to double precision relative to itself, also far in the left tail where ½(1 + erf) cancels:
    /// for a = −x/√2 ≥ 2, erfc a = e^(−a²) / (√π·(a + ½/(a + 1/(a + (3/2)/(a + 2/(a + …)))))) (A&amp;S 7.1.14), the
    /// continued fraction evaluated from 200 terms deep.
    /// </summary>
    internal static double Cdf(double x)
    {
        double a = -x / Math.Sqrt(2);
        if (!(a >= 2)) return 0.5 * (1 - Erf(a));   // 1 − erf a ≥ 0.0047: no cancellation worth a digit
        double f = a;
        for (int k = 200; k >= 1; k--) f = a + k / 2.0 / f;
        return 0.5 * Math.Exp(-a * a) / (Math.Sqrt(Math.PI) * f);
    }

    /// <summary>
    /// erf x = (2/√π)·e^(−x²)·Σ_n 2ⁿx^(2n+1)/(1·3·…·(2n+1)) (A&amp;S 7.1.6): every term is positive, so there is no
    /// cancellation; beyond |x| = 6, erf is ±1 to double precision.
    /// </summary>
    internal static double Erf(double x)
    {
        if (double.IsNaN(x)) return x;
        double a = Math.Abs(x);
        if (a >= 6) return Math.CopySign(1, x);
        double term = a, sum = a;
        for (int n = 1; term > 1e-17 * sum; n++)
        {
            term *= 2 * a * a / (2 * n + 1);
            sum += term;
        }
        return Math.CopySign(2 / Math.Sqrt(Math.PI) * Math.Exp(-a * a) * sum, x);
    }
}
