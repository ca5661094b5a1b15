// Reference twin of Kernels.AttentionLinear: the explicit T×T form in double over dense (B, H, T, HS) arrays.
// Source: Katharopoulos et al. (2020), eq. 4.
namespace AttentionSharp.Kernels.Reference;

/// <summary>
/// Linear attention written as attention with weights W_ij = φ(q_i)·φ(k_j) (j ≤ i + (Tk − Tq) under the causal mask)
/// normalised by Σ_j W_ij + ε: O_i = Σ_j W_ij·v_j / (Σ_j W_ij + ε), φ(x) = elu(x) + 1. q is (B, NH, Tq, HS), k and v
/// (B, NKV, Tk, HS), o and dO (B, NH, Tq, HS), all dense; only <see cref="AttentionProblem.Causal"/> and the sizes are read.
/// </summary>
public static class LinearAttention
{
    /// <summary>o = the linear attention of q, k, v.</summary>
    public static void Forward(Span<float> o, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, in AttentionProblem p)
    {
        var od = new double[o.Length];
        var qd = Widen.From(q); var kd = Widen.From(k); var vd = Widen.From(v);
        int hs = p.HeadSize;
        foreach (var (b, h, i) in Rows(p))
        {
            var w = RowWeights(qd, kd, p, b, h, i);
            double den = w.Sum() + AttentionLinear.Epsilon;
            long qi = QueryRow(p, b, h, i);
            for (int j = 0; j < p.KeyLength; j++)
                for (int c = 0; c < hs; c++) od[qi + c] += w[j] * vd[KeyRow(p, b, h, j) + c] / den;
        }
        Widen.Store(o, od);
    }

    /// <summary>dq, dk, dv += the gradients of L = Σ dO ⊙ o.</summary>
    public static void Backward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> dO, ReadOnlySpan<float> q,
        ReadOnlySpan<float> k, ReadOnlySpan<float> v, in AttentionProblem p)
    {
        var qd = Widen.From(q); var kd = Widen.From(k); var vd = Widen.From(v); var gd = Widen.From(dO);
        var dqd = new double[dq.Length]; var dkd = new double[dk.Length]; var dvd = new double[dv.Length];
        int hs = p.HeadSize;
        foreach (var (b, h, i) in Rows(p))
        {
            var w = RowWeights(qd, kd, p, b, h, i);
            double den = w.Sum() + AttentionLinear.Epsilon;
            long qi = QueryRow(p, b, h, i);
            // O_i = N_i / den_i with N_i = Σ_j W_ij·v_j: ∂N_i = dO_i / den, ∂den = −dO_i·O_i / den
            var o = new double[hs];
            for (int j = 0; j < p.KeyLength; j++)
                for (int c = 0; c < hs; c++) o[c] += w[j] * vd[KeyRow(p, b, h, j) + c] / den;
            double dDen = 0;
            for (int c = 0; c < hs; c++) dDen -= gd[qi + c] * o[c] / den;
            for (int j = 0; j < p.KeyLength; j++)
            {
                if (w[j] == 0) continue; // masked (φ > 0, so an unmasked weight is never 0)
                long kj = KeyRow(p, b, h, j);
                // ∂W_ij = ∂N_i·v_j + ∂den; dv_j += W_ij·∂N_i
                double dW = dDen;
                for (int c = 0; c < hs; c++)
                {
                    dW += gd[qi + c] / den * vd[kj + c];
                    dvd[kj + c] += w[j] * gd[qi + c] / den;
                }
                // W_ij = φ(q_i)·φ(k_j): ∂q_ic += ∂W·φ(k_jc)·φ'(q_ic), ∂k_jc += ∂W·φ(q_ic)·φ'(k_jc)
                for (int c = 0; c < hs; c++)
                {
                    dqd[qi + c] += dW * Phi(kd[kj + c]) * PhiDerivative(qd[qi + c]);
                    dkd[kj + c] += dW * Phi(qd[qi + c]) * PhiDerivative(kd[kj + c]);
                }
            }
        }
        Widen.Accumulate(dq, dqd);
        Widen.Accumulate(dk, dkd);
        Widen.Accumulate(dv, dvd);
    }

    /// <summary>φ(x) = elu(x) + 1.</summary>
    static double Phi(double x) => x > 0 ? x + 1 : Math.Exp(x);

    /// <summary>φ'(x): 1 for x &gt; 0, eˣ otherwise.</summary>
    static double PhiDerivative(double x) => x > 0 ? 1 : Math.Exp(x);

    /// <summary>W_ij for every key j of query row i (0 where the causal mask forbids).</summary>
    static double[] RowWeights(double[] q, double[] k, AttentionProblem p, int b, int h, int i)
    {
        var w = new double[p.KeyLength];
        long qi = QueryRow(p, b, h, i);
        for (int j = 0; j < p.KeyLength; j++)
        {
            if (p.Causal && j > i + (p.KeyLength - p.QueryLength)) continue;
            long kj = KeyRow(p, b, h, j);
            double dot = 0;
            for (int c = 0; c < p.HeadSize; c++) dot += Phi(q[qi + c]) * Phi(k[kj + c]);
            w[j] = dot;
        }
        return w;
    }

    static IEnumerable<(int B, int H, int I)> Rows(AttentionProblem p)
    {
        for (int b = 0; b < p.Batch; b++)
            for (int h = 0; h < p.Heads; h++)
                for (int i = 0; i < p.QueryLength; i++) yield return (b, h, i);
    }

    static long QueryRow(AttentionProblem p, int b, int h, int i) => (((long)b * p.Heads + h) * p.QueryLength + i) * p.HeadSize;

    static long KeyRow(AttentionProblem p, int b, int h, int j) => (((long)b * p.KvHeads + h / p.Group) * p.KeyLength + j) * p.HeadSize;
}
