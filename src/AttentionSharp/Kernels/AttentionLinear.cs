// Source: Katharopoulos et al., "Transformers are RNNs: Fast Autoregressive Transformers with Linear Attention" (2020),
// eqs. 4–9 (the feature map φ(x) = elu(x) + 1 and the causal prefix sums); the chunked form of the prefix sums as in
// Hua et al., "Transformer Quality in Linear Time" (2022), §3.
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// Linear attention: O_i = φ(q_i)ᵀ·S_i / (φ(q_i)ᵀ·z_i + ε) with S_i = Σ_j φ(k_j)·v_jᵀ (HS × HS) and z_i = Σ_j φ(k_j), the
/// sums over every key, or under the causal mask over the keys j ≤ p_i = i + (Tk − Tq) (bottom-right aligned, as with a
/// K/V cache). It equals attention whose weights are φ(q_i)·φ(k_j) normalised by their row sum, without the softmax:
/// O(T·HS²) time and O(HS²) state instead of O(T²).
/// </summary>
/// <remarks>
/// <para>The causal sums run over chunks of <see cref="Chunk"/> positions: within a chunk the T×T form (a masked
/// Chunk × Chunk product), across chunks the running state S, z — so the work is GEMM-shaped tiles rather than one rank-1
/// update per position. The forward pass saves the denominators; the backward pass recomputes the state.</para>
/// <para>φ(x) = elu(x) + 1 is x + 1 for x &gt; 0 and eˣ otherwise, so φ &gt; 0 and every denominator is positive; ε =
/// <see cref="Epsilon"/> only keeps the division finite when φ underflows (q or k far below 0).</para>
/// <para>Only the causal mask applies (the weights are never formed, so there is nothing to pad, bias or drop). Threading:
/// (b, h) items forward, (b, key/value head) items backward, each owning its outputs; results do not depend on the thread
/// count.</para>
/// </remarks>
public static unsafe class AttentionLinear
{
    /// <summary>Positions per chunk of the causal prefix sums.</summary>
    public const int Chunk = 64;

    /// <summary>ε in the denominator φ(q)ᵀ·z + ε (the value of Katharopoulos et al.'s code).</summary>
    public const float Epsilon = 1e-6f;

    /// <summary>
    /// o = linear attention of (q, k, v), (B, NH, Tq, HS); <paramref name="denominators"/> (B·NH·Tq floats) receives
    /// φ(q_i)ᵀ·z_i + ε. With a <paramref name="state"/> (recurrent decoding; see <see cref="StateFloats"/>), S and z start
    /// from it instead of from 0, as if the keys it summarises came before k: the state is read, not advanced.
    /// </summary>
    public static void Forward(in AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* denominators,
        float* state = null)
    {
        Check(in p);
        if (Vector512.IsHardwareAccelerated) Forward<Vec512>(p, q, k, v, o, denominators, state);
        else if (Vector256.IsHardwareAccelerated) Forward<Vec256>(p, q, k, v, o, denominators, state);
        else Forward<Vec1>(p, q, k, v, o, denominators, state);
    }

    /// <summary>Floats of the recurrent state: S (HS × HS) then z (HS) for each of the B·NKV key/value heads.</summary>
    public static long StateFloats(int batch, int kvHeads, int headSize) => (long)batch * kvHeads * (headSize * headSize + headSize);

    /// <summary>state += (φ(K)ᵀ·V, Σ_j φ(k_j)) of every key of k, v, per key/value head: the state after these keys.</summary>
    public static void AdvanceState(in AttentionProblem p, HeadTensor k, HeadTensor v, float* state)
    {
        p.Validate();
        if (Vector512.IsHardwareAccelerated) AdvanceState<Vec512>(p, k, v, state);
        else if (Vector256.IsHardwareAccelerated) AdvanceState<Vec256>(p, k, v, state);
        else AdvanceState<Vec1>(p, k, v, state);
    }

    static void AdvanceState<T>(AttentionProblem p, HeadTensor k, HeadTensor v, float* state) where T : unmanaged, ISimd<T>
    {
        int hs = p.HeadSize, tk = p.KeyLength;
        AttentionWork.Run(p.Batch * p.KvHeads, (long)Chunk * hs, (item, mem) =>
        {
            int b = item / p.KvHeads, g = item % p.KvHeads;
            float* s = state + item * ((long)hs * hs + hs), kbT = (float*)mem;
            for (int j0 = 0; j0 < tk; j0 += Chunk)
            {
                int n = Math.Min(Chunk, tk - j0);
                FeaturesTransposed(kbT, k.Head(b, g) + j0 * k.RowStride, k.RowStride, n, hs);
                AddState<T>(s, s + hs * hs, kbT, v.Head(b, g) + j0 * v.RowStride, v.RowStride, n, hs);
            }
        });
    }

    /// <summary>
    /// dq += ∂L/∂q, dk += ∂L/∂k, dv += ∂L/∂v given dO, the forward output o and its denominators; a null gradient operand is
    /// skipped. With a = φ(q), b = φ(k), n_i = a_iᵀS_i and d_i its denominator: ∂n_i = dO_i / d_i, ∂d_i = −dO_i·O_i / d_i,
    /// ∂a_i = S_i·∂n_i + z_i·∂d_i, ∂b_j = Σ_{i sees j} a_i·(∂n_i·v_j + ∂d_i), ∂v_j = Σ_{i sees j} (a_i·b_j)·∂n_i, and
    /// φ'(x) = min(1, φ(x)).
    /// </summary>
    public static void Backward(in AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* denominators,
        HeadTensor dO, HeadTensor dq, HeadTensor dk, HeadTensor dv)
    {
        Check(in p);
        if (Vector512.IsHardwareAccelerated) Backward<Vec512>(p, q, k, v, o, denominators, dO, dq, dk, dv);
        else if (Vector256.IsHardwareAccelerated) Backward<Vec256>(p, q, k, v, o, denominators, dO, dq, dk, dv);
        else Backward<Vec1>(p, q, k, v, o, denominators, dO, dq, dk, dv);
    }

    static void Check(in AttentionProblem p)
    {
        p.Validate();
        if (p.Additive != null || p.KeyPadding != null || p.Window > 0 || p.Dropout > 0)
            throw new ArgumentException("Linear attention never forms its weights, so only the causal mask applies: no padding, additive mask, window or dropout.");
        if (p.Causal && p.QueryLength > p.KeyLength)
            throw new ArgumentException($"Causal linear attention places the queries at the last Tq of the Tk key positions; Tq = {p.QueryLength} > Tk = {p.KeyLength}.");
    }

    /// <summary>The keys every query sees before its own chunk: all of them without the causal mask, else those before the first query.</summary>
    static int PrefixKeys(in AttentionProblem p) => p.Causal ? p.KeyLength - p.QueryLength : p.KeyLength;

    static void Forward<T>(AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* denominators, float* state)
        where T : unmanaged, ISimd<T>
    {
        int hs = p.HeadSize;
        long scratch = 3L * Chunk * hs + (long)Chunk * Chunk + (long)hs * hs + hs;
        AttentionWork.Run(p.Batch * p.Heads, scratch, (item, mem) =>
            ForwardHead<T>(in p, q, k, v, o, denominators, state, item / p.Heads, item % p.Heads, (float*)mem));
    }

    static void ForwardHead<T>(in AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* denominators,
        float* state, int b, int h, float* mem) where T : unmanaged, ISimd<T>
    {
        int hs = p.HeadSize, tq = p.QueryLength, shift = p.KeyLength - tq, g = h / p.Group;
        float* qa = mem, kbT = qa + Chunk * hs, acc = kbT + Chunk * hs, pm = acc + Chunk * hs, s = pm + Chunk * Chunk, z = s + hs * hs;
        var sz = new Span<float>(s, hs * hs + hs);
        if (state == null) sz.Clear();
        else new ReadOnlySpan<float>(state + ((long)b * p.KvHeads + g) * (hs * hs + hs), hs * hs + hs).CopyTo(sz);
        float* qh = q.Head(b, h), kh = k.Head(b, g), vh = v.Head(b, g), oh = o.Head(b, h);
        float* den = denominators + ((long)b * p.Heads + h) * tq;
        // S = Σ_j φ(k_j)·v_jᵀ, z = Σ_j φ(k_j) over the keys every query sees.
        int prefix = PrefixKeys(in p);
        for (int j0 = 0; j0 < prefix; j0 += Chunk)
        {
            int n = Math.Min(Chunk, prefix - j0);
            FeaturesTransposed(kbT, kh + j0 * k.RowStride, k.RowStride, n, hs);
            AddState<T>(s, z, kbT, vh + j0 * v.RowStride, v.RowStride, n, hs);
        }
        for (int i0 = 0; i0 < tq; i0 += Chunk)
        {
            int n = Math.Min(Chunk, tq - i0);
            Features(qa, qh + i0 * q.RowStride, q.RowStride, n, hs);
            // numerator φ(Q)·S, denominator φ(Q)·z + ε, with the state of the keys before this chunk
            AttentionTiles.Multiply<T>(n, hs, hs, qa, hs, 1, s, hs, acc, hs);
            for (int r = 0; r < n; r++) den[i0 + r] = Dot(qa + r * hs, z, hs) + Epsilon;
            if (p.Causal)
            {
                // Within the chunk, the T×T form: P = φ(Q)·φ(K)ᵀ with j ≤ i, numerator += P·V, denominator += rowsum P.
                int j0 = i0 + shift;
                FeaturesTransposed(kbT, kh + j0 * k.RowStride, k.RowStride, n, hs);
                AttentionTiles.Multiply<T>(n, n, hs, qa, hs, 1, kbT, Chunk, pm, Chunk);
                for (int r = 0; r < n; r++)
                {
                    new Span<float>(pm + r * Chunk + r + 1, n - r - 1).Clear();
                    den[i0 + r] += TensorPrimitives.Sum(new ReadOnlySpan<float>(pm + r * Chunk, r + 1));
                }
                AttentionTiles.MultiplyAdd<T>(n, hs, n, pm, Chunk, 1, vh + j0 * v.RowStride, v.RowStride, acc, hs);
                AddState<T>(s, z, kbT, vh + j0 * v.RowStride, v.RowStride, n, hs);
            }
            // O = numerator / denominator
            for (int r = 0; r < n; r++)
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(acc + r * hs, hs), 1f / den[i0 + r], new Span<float>(oh + (i0 + r) * o.RowStride, hs));
        }
    }

    static void Backward<T>(AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* denominators,
        HeadTensor dO, HeadTensor dq, HeadTensor dk, HeadTensor dv) where T : unmanaged, ISimd<T>
    {
        int hs = p.HeadSize;
        long scratch = 7L * Chunk * hs + 2L * Chunk * Chunk + 3L * hs * hs + 2L * hs + Chunk;
        AttentionWork.Run(p.Batch * p.KvHeads, scratch, (item, mem) =>
        {
            int b = item / p.KvHeads, g = item % p.KvHeads;
            for (int x = 0; x < p.Group; x++)
            {
                var w = new Workspace((float*)mem, hs);
                int h = g * p.Group + x;
                if (!dq.IsNull) BackwardQueries<T>(in p, q, k, v, o, denominators, dO, dq, b, h, w);
                if (!dk.IsNull || !dv.IsNull) BackwardKeys<T>(in p, q, k, v, o, denominators, dO, dk, dv, b, h, w);
            }
        });
    }

    /// <summary>The scratch of one backward item, carved from one block.</summary>
    readonly struct Workspace
    {
        public readonly float* Qa, Kb, KbT, VT, Dn, Acc, Pm, Gm, Ss, Sz, R, RT, Rz, Dd;

        public Workspace(float* m, int hs)
        {
            Qa = m; Kb = Qa + Chunk * hs; KbT = Kb + Chunk * hs; VT = KbT + Chunk * hs; Dn = VT + Chunk * hs;
            Acc = Dn + Chunk * hs; Pm = Acc + Chunk * hs; Gm = Pm + Chunk * Chunk; Ss = Gm + Chunk * Chunk;
            R = Ss + hs * hs; RT = R + hs * hs; Sz = RT + hs * hs; Rz = Sz + hs; Dd = Rz + hs;
        }
    }

    /// <summary>
    /// ∂n_i = dO_i / d_i and ∂d_i = −(dO_i·O_i) / d_i for rows [i0, i0 + n) of head (b, h), into w.Dn and w.Dd; also loads
    /// a = φ(Q) of those rows into w.Qa.
    /// </summary>
    static void RowGradients(in AttentionProblem p, HeadTensor q, HeadTensor o, float* denominators, HeadTensor dO, int b, int h,
        int i0, int n, Workspace w)
    {
        int hs = p.HeadSize;
        float* den = denominators + ((long)b * p.Heads + h) * p.QueryLength + i0;
        float* gh = dO.Head(b, h) + i0 * dO.RowStride, oh = o.Head(b, h) + i0 * o.RowStride;
        Features(w.Qa, q.Head(b, h) + i0 * q.RowStride, q.RowStride, n, hs);
        for (int r = 0; r < n; r++)
        {
            var gr = new ReadOnlySpan<float>(gh + r * dO.RowStride, hs);
            w.Dd[r] = -TensorPrimitives.Dot(gr, new ReadOnlySpan<float>(oh + r * o.RowStride, hs)) / den[r];
            TensorPrimitives.Multiply(gr, 1f / den[r], new Span<float>(w.Dn + r * hs, hs));
        }
    }

    /// <summary>
    /// G_ij = ∂n_i·v_j + ∂d_i for the chunk's rows and keys [j0, j0 + n), lower triangle only (j ≤ i): ∂(φ(q_i)·φ(k_j)).
    /// Needs w.Dn, w.Dd; loads Vᵀ of the keys into w.VT.
    /// </summary>
    static void WeightGradients<T>(HeadTensor v, int b, int g, int j0, int n, int hs, Workspace w) where T : unmanaged, ISimd<T>
    {
        AttentionTiles.Transpose(n, hs, v.Head(b, g) + j0 * v.RowStride, v.RowStride, Chunk, w.VT);
        AttentionTiles.Multiply<T>(n, n, hs, w.Dn, hs, 1, w.VT, Chunk, w.Gm, Chunk);
        for (int r = 0; r < n; r++)
        {
            float* gr = w.Gm + r * Chunk;
            for (int j = 0; j <= r; j++) gr[j] += w.Dd[r];
            new Span<float>(gr + r + 1, n - r - 1).Clear();
        }
    }

    /// <summary>Pass 1, forward in time: ∂a_i = Sᵢ·∂n_i + z_i·∂d_i, dq += ∂a ⊙ φ'(q).</summary>
    static void BackwardQueries<T>(in AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* denominators,
        HeadTensor dO, HeadTensor dq, int b, int h, Workspace w) where T : unmanaged, ISimd<T>
    {
        int hs = p.HeadSize, tq = p.QueryLength, shift = p.KeyLength - tq, g = h / p.Group;
        float* kh = k.Head(b, g), vh = v.Head(b, g), dqh = dq.Head(b, h);
        // Sᵀ = Σ_j v_j·φ(k_j)ᵀ (so that ∂n·Sᵀ is a row-major product) and z, over the keys before the first chunk.
        new Span<float>(w.Ss, hs * hs).Clear();
        new Span<float>(w.Sz, hs).Clear();
        int prefix = PrefixKeys(in p);
        for (int j0 = 0; j0 < prefix; j0 += Chunk)
        {
            int n = Math.Min(Chunk, prefix - j0);
            Features(w.Kb, kh + j0 * k.RowStride, k.RowStride, n, hs);
            AddStateTransposed<T>(w.Ss, w.Sz, w.Kb, vh + j0 * v.RowStride, v.RowStride, n, hs, w.VT);
        }
        for (int i0 = 0; i0 < tq; i0 += Chunk)
        {
            int n = Math.Min(Chunk, tq - i0);
            RowGradients(in p, q, o, denominators, dO, b, h, i0, n, w);
            // ∂a = ∂n·Sᵀ + ∂d·zᵀ with the state before this chunk
            AttentionTiles.Multiply<T>(n, hs, hs, w.Dn, hs, 1, w.Ss, hs, w.Acc, hs);
            for (int r = 0; r < n; r++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(w.Sz, hs), w.Dd[r], new ReadOnlySpan<float>(w.Acc + r * hs, hs), new Span<float>(w.Acc + r * hs, hs));
            if (p.Causal)
            {
                // within the chunk: ∂a_i += Σ_{j ≤ i} G_ij·φ(k_j)
                int j0 = i0 + shift;
                Features(w.Kb, kh + j0 * k.RowStride, k.RowStride, n, hs);
                WeightGradients<T>(v, b, g, j0, n, hs, w);
                AttentionTiles.MultiplyAdd<T>(n, hs, n, w.Gm, Chunk, 1, w.Kb, hs, w.Acc, hs);
                AddStateTransposed<T>(w.Ss, w.Sz, w.Kb, vh + j0 * v.RowStride, v.RowStride, n, hs, w.VT);
            }
            for (int r = 0; r < n; r++) AddTimesDerivative(dqh + (i0 + r) * dq.RowStride, w.Acc + r * hs, w.Qa + r * hs, hs);
        }
    }

    /// <summary>
    /// Pass 2, backward in time: with R = Σ_{i after} φ(q_i)·∂n_iᵀ and r = Σ_{i after} φ(q_i)·∂d_i over the queries of later
    /// chunks, ∂b_j = R·v_j + r (+ the chunk's own Gᵀ·φ(Q)), ∂v_j = Rᵀ·φ(k_j) (+ the chunk's own Pᵀ·∂n); dk += ∂b ⊙ φ'(k).
    /// </summary>
    static void BackwardKeys<T>(in AttentionProblem p, HeadTensor q, HeadTensor k, HeadTensor v, HeadTensor o, float* denominators,
        HeadTensor dO, HeadTensor dk, HeadTensor dv, int b, int h, Workspace w) where T : unmanaged, ISimd<T>
    {
        int hs = p.HeadSize, tq = p.QueryLength, shift = p.KeyLength - tq, g = h / p.Group;
        new Span<float>(w.R, 2 * hs * hs).Clear();
        new Span<float>(w.Rz, hs).Clear();
        int chunks = (tq + Chunk - 1) / Chunk;
        for (int c = chunks - 1; c >= 0; c--)
        {
            int i0 = c * Chunk, n = Math.Min(Chunk, tq - i0);
            RowGradients(in p, q, o, denominators, dO, b, h, i0, n, w);
            if (p.Causal)
            {
                int j0 = i0 + shift;
                float* kh = k.Head(b, g) + j0 * k.RowStride;
                Features(w.Kb, kh, k.RowStride, n, hs);
                FeaturesTransposed(w.KbT, kh, k.RowStride, n, hs);
                WeightGradients<T>(v, b, g, j0, n, hs, w);
                // P = φ(Q)·φ(K)ᵀ, lower triangle
                AttentionTiles.Multiply<T>(n, n, hs, w.Qa, hs, 1, w.KbT, Chunk, w.Pm, Chunk);
                for (int r = 0; r < n; r++) new Span<float>(w.Pm + r * Chunk + r + 1, n - r - 1).Clear();
                KeyGradients<T>(in p, k, v, dk, dv, b, g, j0, n, w, inChunk: true);
            }
            // R += φ(Q)ᵀ·∂n, Rᵀ += ∂nᵀ·φ(Q), r += φ(Q)ᵀ·∂d
            AttentionTiles.MultiplyAdd<T>(hs, hs, n, w.Qa, 1, hs, w.Dn, hs, w.R, hs);
            AttentionTiles.MultiplyAdd<T>(hs, hs, n, w.Dn, 1, hs, w.Qa, hs, w.RT, hs);
            for (int r = 0; r < n; r++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(w.Qa + r * hs, hs), w.Dd[r], new ReadOnlySpan<float>(w.Rz, hs), new Span<float>(w.Rz, hs));
        }
        // The keys every query sees: only the state term.
        int prefix = PrefixKeys(in p);
        for (int j0 = 0; j0 < prefix; j0 += Chunk)
        {
            int n = Math.Min(Chunk, prefix - j0);
            Features(w.Kb, k.Head(b, g) + j0 * k.RowStride, k.RowStride, n, hs);
            KeyGradients<T>(in p, k, v, dk, dv, b, g, j0, n, w, inChunk: false);
        }
    }

    /// <summary>
    /// dk, dv of keys [j0, j0 + n) from the state of later queries (w.R, w.RT, w.Rz) and, <paramref name="inChunk"/>, from
    /// the chunk's own queries (w.Gm, w.Pm, w.Qa, w.Dn). w.Kb holds φ(K) of the keys.
    /// </summary>
    static void KeyGradients<T>(in AttentionProblem p, HeadTensor k, HeadTensor v, HeadTensor dk, HeadTensor dv, int b, int g,
        int j0, int n, Workspace w, bool inChunk) where T : unmanaged, ISimd<T>
    {
        int hs = p.HeadSize;
        if (!dk.IsNull)
        {
            // ∂b = V·Rᵀ + 1·rᵀ (+ Gᵀ·φ(Q))
            AttentionTiles.Multiply<T>(n, hs, hs, v.Head(b, g) + j0 * v.RowStride, v.RowStride, 1, w.RT, hs, w.Acc, hs);
            for (int r = 0; r < n; r++)
                TensorPrimitives.Add(new ReadOnlySpan<float>(w.Acc + r * hs, hs), new ReadOnlySpan<float>(w.Rz, hs), new Span<float>(w.Acc + r * hs, hs));
            if (inChunk) AttentionTiles.MultiplyAdd<T>(n, hs, n, w.Gm, 1, Chunk, w.Qa, hs, w.Acc, hs);
            float* dkh = dk.Head(b, g) + j0 * dk.RowStride;
            for (int r = 0; r < n; r++) AddTimesDerivative(dkh + r * dk.RowStride, w.Acc + r * hs, w.Kb + r * hs, hs);
        }
        if (!dv.IsNull)
        {
            // ∂v = φ(K)·R (+ Pᵀ·∂n)
            AttentionTiles.Multiply<T>(n, hs, hs, w.Kb, hs, 1, w.R, hs, w.Acc, hs);
            if (inChunk) AttentionTiles.MultiplyAdd<T>(n, hs, n, w.Pm, 1, Chunk, w.Dn, hs, w.Acc, hs);
            float* dvh = dv.Head(b, g) + j0 * dv.RowStride;
            for (int r = 0; r < n; r++)
                TensorPrimitives.Add(new ReadOnlySpan<float>(dvh + r * dv.RowStride, hs), new ReadOnlySpan<float>(w.Acc + r * hs, hs), new Span<float>(dvh + r * dv.RowStride, hs));
        }
    }

    /// <summary>φ(x) = elu(x) + 1: x + 1 for x &gt; 0, eˣ otherwise.</summary>
    public static float Phi(float x) => x > 0 ? x + 1f : MathF.Exp(x);

    /// <summary>dst (n × hs, dense) = φ(src), rows of src <paramref name="lds"/> apart.</summary>
    static void Features(float* dst, float* src, long lds, int n, int hs)
    {
        for (int r = 0; r < n; r++)
        {
            float* s = src + r * lds, d = dst + r * hs;
            for (int c = 0; c < hs; c++) d[c] = Phi(s[c]);
        }
    }

    /// <summary>dst (hs × Chunk) = φ(src)ᵀ for n rows of src.</summary>
    static void FeaturesTransposed(float* dst, float* src, long lds, int n, int hs)
    {
        for (int r = 0; r < n; r++)
        {
            float* s = src + r * lds;
            for (int c = 0; c < hs; c++) dst[c * Chunk + r] = Phi(s[c]);
        }
    }

    /// <summary>S += φ(K)ᵀ·V, z += Σ_j φ(k_j) for n keys, φ(K)ᵀ given as kbT (hs × Chunk).</summary>
    static void AddState<T>(float* s, float* z, float* kbT, float* vRows, long ldv, int n, int hs) where T : unmanaged, ISimd<T>
    {
        AttentionTiles.MultiplyAdd<T>(hs, hs, n, kbT, Chunk, 1, vRows, ldv, s, hs);
        for (int c = 0; c < hs; c++) z[c] += TensorPrimitives.Sum(new ReadOnlySpan<float>(kbT + c * Chunk, n));
    }

    /// <summary>Sᵀ += Vᵀ·φ(K), z += Σ_j φ(k_j) for n keys, φ(K) given as kb (n × hs); vT is scratch for Vᵀ.</summary>
    static void AddStateTransposed<T>(float* st, float* z, float* kb, float* vRows, long ldv, int n, int hs, float* vT) where T : unmanaged, ISimd<T>
    {
        AttentionTiles.Transpose(n, hs, vRows, ldv, Chunk, vT);
        AttentionTiles.MultiplyAdd<T>(hs, hs, n, vT, Chunk, 1, kb, hs, st, hs);
        for (int r = 0; r < n; r++)
            TensorPrimitives.Add(new ReadOnlySpan<float>(z, hs), new ReadOnlySpan<float>(kb + r * hs, hs), new Span<float>(z, hs));
    }

    /// <summary>dst += grad ⊙ φ'(x) with φ'(x) = min(1, φ(x)) (1 for x &gt; 0, eˣ = φ(x) otherwise), given φ(x).</summary>
    static void AddTimesDerivative(float* dst, float* grad, float* phi, int n)
    {
        for (int c = 0; c < n; c++) dst[c] += grad[c] * Math.Min(1f, phi[c]);
    }

    static float Dot(float* a, float* b, int n) => TensorPrimitives.Dot(new ReadOnlySpan<float>(a, n), new ReadOnlySpan<float>(b, n));
}
