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
}
