// Reference twin of Kernels.AttentionPlain and Kernels.AttentionFlash: loops in double over dense (B, H, T, HS) arrays.
// Source: Vaswani et al. (2017), eq. 1.
namespace AttentionSharp.Kernels.Reference;

/// <summary>
/// Plain scaled dot-product attention with the masks and dropout stream of <see cref="AttentionProblem"/> (its pointers
/// must stay valid during the call). q is (B, NH, Tq, HS), k and v (B, NKV, Tk, HS), o and dO (B, NH, Tq, HS), all dense.
/// </summary>
public static unsafe class Attention
{
    /// <summary>
    /// o = (P ⊙ dropout mask)·v with P = softmax(q·kᵀ·scale + mask); <paramref name="weights"/> receives P.
    /// </summary>
    public static void Forward(Span<float> o, Span<float> weights, ReadOnlySpan<float> q, ReadOnlySpan<float> k,
        ReadOnlySpan<float> v, in AttentionProblem p)
    {
        var w = Weights(q, k, p);
        var od = new double[(long)p.Batch * p.Heads * p.QueryLength * p.HeadSize];
        foreach (var (b, h, i) in Rows(p))
        {
            long qi = QueryRow(p, b, h, i);
            for (int j = 0; j < p.KeyLength; j++)
            {
                // O_i = Σ_j P̃_ij·V_j
                double pij = w[Index(p, b, h, i, j)] * DropoutFactor(p, b, h, i, j);
                long kj = KeyRow(p, b, h, j);
                for (int c = 0; c < p.HeadSize; c++) od[qi + c] += pij * v[(int)(kj + c)];
            }
        }
        Widen.Store(o, od);
        Widen.Store(weights, w);
    }

    /// <summary>dq, dk, dv += the gradients of L = Σ dO ⊙ o.</summary>
    public static void Backward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> dO, ReadOnlySpan<float> q,
        ReadOnlySpan<float> k, ReadOnlySpan<float> v, in AttentionProblem p)
    {
        var w = Weights(q, k, p);
        var dqd = new double[dq.Length];
        var dkd = new double[dk.Length];
        var dvd = new double[dv.Length];
        var dOd = Widen.From(dO); var qd = Widen.From(q); var kd = Widen.From(k); var vd = Widen.From(v);
        int hs = p.HeadSize;
        foreach (var (b, h, i) in Rows(p))
        {
            long qi = QueryRow(p, b, h, i);
            var dp = new double[p.KeyLength];
            double rowTerm = 0;
            for (int j = 0; j < p.KeyLength; j++)
            {
                long kj = KeyRow(p, b, h, j);
                double m = DropoutFactor(p, b, h, i, j), pij = w[Index(p, b, h, i, j)];
                // dV_j += P̃_ij·dO_i, dP_ij = (dO_i · V_j)·m_ij
                double dot = 0;
                for (int c = 0; c < hs; c++) { dvd[kj + c] += pij * m * dOd[qi + c]; dot += dOd[qi + c] * vd[kj + c]; }
                dp[j] = dot * m;
                rowTerm += pij * dp[j];
            }
            for (int j = 0; j < p.KeyLength; j++)
            {
                long kj = KeyRow(p, b, h, j);
                // dS_ij = P_ij·(dP_ij − Σ_l P_il·dP_il); dQ_i += dS_ij·K_j·scale, dK_j += dS_ij·Q_i·scale
                double ds = w[Index(p, b, h, i, j)] * (dp[j] - rowTerm) * p.Scale;
                for (int c = 0; c < hs; c++) { dqd[qi + c] += ds * kd[kj + c]; dkd[kj + c] += ds * qd[qi + c]; }
            }
        }
        Widen.Accumulate(dq, dqd);
        Widen.Accumulate(dk, dkd);
        Widen.Accumulate(dv, dvd);
    }

    /// <summary>P (B, NH, Tq, Tk) in double; a fully masked row is all zeros.</summary>
    static double[] Weights(ReadOnlySpan<float> q, ReadOnlySpan<float> k, AttentionProblem p)
    {
        var w = new double[(long)p.Batch * p.Heads * p.QueryLength * p.KeyLength];
        var qd = Widen.From(q); var kd = Widen.From(k);
        foreach (var (b, h, i) in Rows(p))
        {
            long qi = QueryRow(p, b, h, i);
            double max = double.NegativeInfinity;
            var s = new double[p.KeyLength];
            for (int j = 0; j < p.KeyLength; j++)
            {
                long kj = KeyRow(p, b, h, j);
                double dot = 0;
                for (int c = 0; c < p.HeadSize; c++) dot += qd[qi + c] * kd[kj + c];
                s[j] = dot * p.Scale + Mask(p, b, h, i, j);
                max = Math.Max(max, s[j]);
            }
            if (double.IsNegativeInfinity(max)) continue;
            double sum = 0;
            for (int j = 0; j < p.KeyLength; j++) sum += s[j] = Math.Exp(s[j] - max);
            for (int j = 0; j < p.KeyLength; j++) w[Index(p, b, h, i, j)] = s[j] / sum;
        }
        return w;
    }

    /// <summary>
    /// The additive mask plus −∞ for padding keys, keys after i + (Tk − Tq) under the causal mask and keys outside the
    /// window.
    /// </summary>
    static double Mask(AttentionProblem p, int b, int h, int i, int j)
    {
        int pos = i + (p.KeyLength - p.QueryLength);
        if (p.Causal && j > pos) return double.NegativeInfinity;
        // The sliding window: |p_i − j| < w unless query or key is a global token.
        bool global = p.Global != null && (p.Global[pos] || p.Global[j]);
        if (p.Window > 0 && Math.Abs(pos - j) >= p.Window && !global) return double.NegativeInfinity;
        if (p.KeyPadding != null && p.KeyPadding[(long)b * p.KeyLength + j]) return double.NegativeInfinity;
        return p.Additive == null ? 0
            : p.Additive[b * p.AdditiveStrideB + h * p.AdditiveStrideH + i * p.AdditiveStrideQ + j * p.AdditiveStrideK];
    }

    static double DropoutFactor(AttentionProblem p, int b, int h, int i, int j)
    {
        if (p.Dropout == 0) return 1;
        ulong index = ((((ulong)b + (ulong)p.DropoutFirstBatch) * (ulong)p.Heads + (ulong)h) * (ulong)p.QueryLength
                       + (ulong)i) * (ulong)p.KeyLength + (ulong)j;
        return Kernels.Dropout.Keep(p.DropoutSeed, index, p.Dropout) ? 1.0 / (1.0 - p.Dropout) : 0;
    }

    static IEnumerable<(int B, int H, int I)> Rows(AttentionProblem p)
    {
        for (int b = 0; b < p.Batch; b++)
            for (int h = 0; h < p.Heads; h++)
                for (int i = 0; i < p.LiveRows(b); i++) yield return (b, h, i);   // the rows computed
    }

    static long Index(AttentionProblem p, int b, int h, int i, int j) =>
        (((long)b * p.Heads + h) * p.QueryLength + i) * p.KeyLength + j;

    /// <summary>Start of row i of query head h.</summary>
    static long QueryRow(AttentionProblem p, int b, int h, int i) => (((long)b * p.Heads + h) * p.QueryLength + i) * p.HeadSize;

    /// <summary>Start of row j of the key/value head that query head h reads.</summary>
    static long KeyRow(AttentionProblem p, int b, int h, int j) =>
        (((long)b * p.KvHeads + h / p.Group) * p.KeyLength + j) * p.HeadSize;
}
