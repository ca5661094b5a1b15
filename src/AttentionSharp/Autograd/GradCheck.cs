namespace AttentionSharp.Autograd;

/// <summary>
/// Compares the gradients that backward computes with central finite differences,
/// ∂L/∂xᵢ ≈ (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h, where L = Σ w ⊙ f(x) for fixed random weights w (so every output element
/// matters and the check does not pass by symmetry). fp32 arithmetic limits the agreement to about 1e-3 relative, so the
/// default tolerances are set for that; use small inputs of moderate magnitude.
/// </summary>
public static class GradCheck
{
    /// <summary>The result of a check: the worst absolute and relative errors and where they occurred.</summary>
    public sealed record Report(bool Passed, double MaxAbsError, double MaxRelError, int WorstInput, int WorstIndex, float Analytic, float Numeric)
    {
        public override string ToString() =>
            $"{(Passed ? "passed" : "FAILED")}: max |analytic − numeric| = {MaxAbsError:G4} (relative {MaxRelError:G4}) at input {WorstInput}, element {WorstIndex}: analytic {Analytic:G6}, numeric {Numeric:G6}";
    }

    /// <summary>Checks <paramref name="f"/> at <paramref name="inputs"/>; inputs that require a gradient are the ones checked.</summary>
    public static Report Check(Func<Tensor[], Tensor> f, Tensor[] inputs, float step = 1e-2f, double absTolerance = 2e-3, double relTolerance = 2e-2, ulong seed = 1)
    {
        ArgumentNullException.ThrowIfNull(f);
        // Analytic: backward of L = Σ w ⊙ f(x).
        foreach (var x in inputs) if (x.RequiresGrad) x.Grad = null;
        var y = f(inputs);
        using var w = Tensor.Uniform(new Generator(seed), -1f, 1f, y.Shape);
        (y * w).Sum().Backward();
        var weights = w.ToArray();

        double Loss()
        {
            using (GradMode.NoGrad())
            {
                using var yy = f(inputs);
                var values = yy.ToArray();
                double s = 0;
                for (int i = 0; i < values.Length; i++) s += (double)values[i] * weights[i];
                return s;
            }
        }

        double maxAbs = 0, maxRel = 0; int worstInput = -1, worstIndex = -1; float worstA = 0, worstN = 0; bool passed = true;
        for (int t = 0; t < inputs.Length; t++)
        {
            var x = inputs[t];
            if (!x.RequiresGrad) continue;
            if (!x.IsContiguous) throw new ArgumentException($"Gradient check needs dense inputs; input {t} is strided.");
            var analytic = x.Grad?.ToArray() ?? new float[x.Count];
            var data = x.Data;
            for (int i = 0; i < data.Length; i++)
            {
                float saved = data[i];
                data[i] = saved + step; double plus = Loss();
                data[i] = saved - step; double minus = Loss();
                data[i] = saved;
                float numeric = (float)((plus - minus) / (2 * step));
                double abs = Math.Abs(analytic[i] - numeric);
                double rel = abs / Math.Max(Math.Abs(numeric), 1e-6);
                bool ok = abs <= absTolerance + relTolerance * Math.Abs(numeric);
                if (!ok) passed = false;
                if (abs > maxAbs)
                {
                    maxAbs = abs; maxRel = rel; worstInput = t; worstIndex = i; worstA = analytic[i]; worstN = numeric;
                }
            }
        }
        return new Report(passed, maxAbs, maxRel, worstInput, worstIndex, worstA, worstN);
    }
}
