using AttentionSharp.Autograd;
using AttentionSharp.Kernels;

namespace AttentionSharp;

public sealed unsafe partial class Tensor
{
    /// <summary>
    /// Linear attention (Katharopoulos et al. 2020): O_i = φ(q_i)ᵀ·Σ_j φ(k_j)·v_jᵀ / (φ(q_i)ᵀ·Σ_j φ(k_j) + ε) with
    /// φ(x) = elu(x) + 1 and ε = <see cref="AttentionLinear.Epsilon"/>, the sums over every key, or with
    /// <paramref name="causal"/> over the keys j ≤ i + (Tk − Tq) (bottom-right aligned, as with a K/V cache).
    /// Q is (B, NH, Tq, HS), K and V (B, NKV, Tk, HS) with NKV dividing NH (grouped-query attention); returns (B, NH, Tq, HS).
    /// O(T·HS²) time and O(T·HS) memory: the (Tq, Tk) weights are never formed (there is no softmax and no scale).
    /// </summary>
    public static Tensor LinearAttention(Tensor q, Tensor k, Tensor v, bool causal = false)
    {
        var (b, nh, tq, hs, nkv, tk) = CheckAttentionShapes(q, k, v, new AttentionOptions());
        if (causal && tq > tk)
            throw new ArgumentException($"Causal linear attention places the queries at the last Tq of the Tk key positions; got Tq = {tq} > Tk = {tk}.");
        q = UnitLastStride(q); k = UnitLastStride(k); v = UnitLastStride(v);
        var p = new AttentionProblem { Batch = b, Heads = nh, KvHeads = nkv, QueryLength = tq, KeyLength = tk, HeadSize = hs, Causal = causal };
        var output = Uninitialized([b, nh, tq, hs]);                                        // (B, NH, Tq, HS)
        var denominators = Uninitialized([b, nh, tq]);                                      // φ(q_i)ᵀ·z_i + ε
        AttentionLinear.Forward(in p, Heads(q), Heads(k), Heads(v), Heads(output), denominators.Pointer);
        var result = Record(output, "LinearAttention", [q, k, v], g =>
        {
            var dq = q.RequiresGrad ? GradHeads(q) : default;
            var dk = k.RequiresGrad ? GradHeads(k) : default;
            var dv = v.RequiresGrad ? GradHeads(v) : default;
            AttentionLinear.Backward(in p, Heads(q), Heads(k), Heads(v), Heads(output), denominators.Pointer, Heads(g), dq, dk, dv);
        });
        if (result.GradFn is null) denominators.Dispose();
        return result;
    }

    /// <summary>
    /// One step of causal linear attention as a recurrence (decoding, no gradient): the new queries see the keys that
    /// <paramref name="state"/> summarises (S = Σ φ(k_j)·v_jᵀ and z = Σ φ(k_j) per key/value head, (B, NKV, HS·HS + HS))
    /// and, causally, the new keys k, v; then the state advances past them. O(T_new·HS²) whatever the length so far.
    /// </summary>
    public static Tensor LinearAttentionStep(Tensor q, Tensor k, Tensor v, Tensor state)
    {
        if (GradMode.IsEnabled && (q.RequiresGrad || k.RequiresGrad || v.RequiresGrad))
            throw new InvalidOperationException("The linear-attention state keeps no autograd history; decode inside GradMode.NoGrad().");
        var (b, nh, tq, hs, nkv, tk) = CheckAttentionShapes(q, k, v, new AttentionOptions());
        if (tq != tk) throw new ArgumentException($"A linear-attention step takes as many new keys as queries; got Tq = {tq}, Tk = {tk}.");
        if (!state.IsContiguous || state.Count != AttentionLinear.StateFloats(b, nkv, hs))
            throw new ArgumentException($"The linear-attention state must be a dense (B={b}, NKV={nkv}, HS·HS + HS={hs * hs + hs}) tensor; got {ShapeMath.Format(state.Shape)}.");
        q = UnitLastStride(q); k = UnitLastStride(k); v = UnitLastStride(v);
        var p = new AttentionProblem { Batch = b, Heads = nh, KvHeads = nkv, QueryLength = tq, KeyLength = tk, HeadSize = hs, Causal = true };
        var output = Uninitialized([b, nh, tq, hs]);                                        // (B, NH, T_new, HS)
        using var denominators = Uninitialized([b, nh, tq]);
        AttentionLinear.Forward(in p, Heads(q), Heads(k), Heads(v), Heads(output), denominators.Pointer, state.Pointer);
        AttentionLinear.AdvanceState(in p, Heads(k), Heads(v), state.Pointer);
        return output;
    }
}
