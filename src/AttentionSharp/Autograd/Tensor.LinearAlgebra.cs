using System.Numerics.Tensors;
using AttentionSharp.Kernels;
using GemmOp = AttentionSharp.Kernels.Transpose;

namespace AttentionSharp;

// Matrix products on the GEMM kernels. Transposed views (e.g. k.Transpose(-2, -1)) are passed to GEMM as transposed
// operands, never copied.
public sealed unsafe partial class Tensor
{
    /// <summary>How one operand's last two dimensions reach GEMM: as stored, or transposed, with its leading dimension.</summary>
    readonly record struct MatrixOperand(Tensor Tensor, GemmOp Op, int Ld);

    /// <summary>
    /// Reads a (…, r, c) tensor as a GEMM operand when its last two dimensions are dense either way round; null if not.
    /// </summary>
    static MatrixOperand? AsOperand(Tensor t)
    {
        int r = t._shape[^2], c = t._shape[^1];
        int sr = t._strides[^2], sc = t._strides[^1];
        if ((sc == 1 || c == 1) && sr >= Math.Max(c, 1)) return new(t, GemmOp.No, Math.Max(sr, 1));
        if ((sr == 1 || r == 1) && sc >= Math.Max(r, 1)) return new(t, GemmOp.Yes, Math.Max(sc, 1));
        return null;
    }

    /// <summary>One element stride over all batch dimensions of a broadcast operand, if they collapse into one.</summary>
    static bool CollapseBatch(int[] batchShape, int[] batchStrides, out long stride)
    {
        stride = 0;
        bool found = false;
        for (int i = batchShape.Length - 1; i >= 0; i--)
        {
            if (batchShape[i] == 1) continue;
            if (!found) { stride = batchStrides[i]; found = true; continue; }
            // Dimension i must step over all of the inner batch dimensions at once.
            long expected = stride;
            for (int j = i + 1; j < batchShape.Length; j++) if (batchShape[j] != 1) expected *= batchShape[j];
            if (batchStrides[i] != expected) return false;
        }
        return true;
    }

    /// <summary>
    /// Matrix product with batch broadcasting (as torch.matmul for rank ≥ 2): (…, M, K) · (…, K, N) → (…, M, N).
    /// </summary>
    public Tensor MatMul(Tensor other)
    {
        if (Rank < 2 || other.Rank < 2)
            throw new ArgumentException(
                $"MatMul needs rank ≥ 2 operands; got {ShapeMath.Format(Shape)} and {ShapeMath.Format(other.Shape)}.");
        int m = _shape[^2], k = _shape[^1], n = other._shape[^1];
        if (other._shape[^2] != k)
            throw new ArgumentException($"MatMul: inner dimensions differ: {ShapeMath.Format(Shape)} · " +
                $"{ShapeMath.Format(other.Shape)} ({k} vs {other._shape[^2]}).");
        var batch = ShapeMath.Broadcast(_shape.AsSpan(0, Rank - 2), other._shape.AsSpan(0, other.Rank - 2));
        var a = AsOperand(this) is not null ? this : Contiguous();
        var b = AsOperand(other) is not null ? other : other.Contiguous();
        var opA = AsOperand(a)!.Value; var opB = AsOperand(b)!.Value;
        var sa = ShapeMath.BroadcastStrides(a._shape.AsSpan(0, a.Rank - 2), a._strides.AsSpan(0, a.Rank - 2), batch);
        var sb = ShapeMath.BroadcastStrides(b._shape.AsSpan(0, b.Rank - 2), b._strides.AsSpan(0, b.Rank - 2), batch);
        var outShape = new int[batch.Length + 2];
        batch.CopyTo(outShape, 0); outShape[^2] = m; outShape[^1] = n;
        var result = Uninitialized(outShape);
        int batchCount = ShapeMath.Count(batch);
        BatchedGemm(opA.Op, opB.Op, batch, batchCount, m, n, k, a.Pointer, opA.Ld, sa, b.Pointer, opB.Ld, sb, result.Pointer, n,
            (long)m * n, accumulate: false);

        return Record(result, "MatMul", [a, b], g =>
        {
            var gStrides = ScaleStrides(ShapeMath.ContiguousStrides(batch), (long)m * n);
            if (a.RequiresGrad)
            {
                // dA = dC · Bᵀ  (M×N · N×K), summed over batch dimensions A was broadcast along.
                var flipB = opB.Op == GemmOp.No ? GemmOp.Yes : GemmOp.No;
                WithBroadcastGrad(a, batch, batchCount, m, k, (dst, strideDst, acc) =>
                    BatchedGemm(GemmOp.No, flipB, batch, batchCount, m, k, n, g.Pointer, n, gStrides, b.Pointer, opB.Ld, sb,
                        dst, k, strideDst, acc));
            }
            if (b.RequiresGrad)
            {
                // dB = Aᵀ · dC  (K×M · M×N)
                var flipA = opA.Op == GemmOp.No ? GemmOp.Yes : GemmOp.No;
                WithBroadcastGrad(b, batch, batchCount, k, n, (dst, strideDst, acc) =>
                    BatchedGemm(flipA, GemmOp.No, batch, batchCount, k, n, m, a.Pointer, opA.Ld, sa, g.Pointer, n, gStrides,
                        dst, n, strideDst, acc));
            }
        });
    }

    delegate void GradGemm(float* dst, long strideDst, bool accumulate);

    /// <summary>
    /// Runs a gradient GEMM for operand <paramref name="t"/>: straight into its gradient when it has the full batch shape,
    /// else into a full-batch temporary that is then summed over the broadcast dimensions.
    /// </summary>
    static void WithBroadcastGrad(Tensor t, int[] batch, int batchCount, int rows, int cols, GradGemm gemm)
    {
        var buf = t.GradBuffer();
        bool full = ShapeMath.Count(t._shape.AsSpan(0, t.Rank - 2)) == batchCount;
        if (full)
        {
            fixed (float* dst = buf) gemm(dst, (long)rows * cols, true);
            return;
        }
        var tmpShape = new int[batch.Length + 2];
        batch.CopyTo(tmpShape, 0); tmpShape[^2] = rows; tmpShape[^1] = cols;
        using var tmp = Uninitialized(tmpShape);
        gemm(tmp.Pointer, (long)rows * cols, false);
        t.AccumulateBroadcastGrad(tmp);
    }

    static int[] ScaleStrides(int[] strides, long factor)
    {
        var r = new int[strides.Length];
        for (int i = 0; i < r.Length; i++) r[i] = checked((int)(strides[i] * factor));
        return r;
    }

    static void BatchedGemm(GemmOp ta, GemmOp tb, int[] batch, int batchCount, int m, int n, int k,
        float* a, int lda, int[] sa, float* b, int ldb, int[] sb, float* c, int ldc, long strideC, bool accumulate)
    {
        if (batchCount == 0) return;
        if (CollapseBatch(batch, sa, out long strideA) && CollapseBatch(batch, sb, out long strideB))
        {
            Gemm.MultiplyBatched(ta, tb, batchCount, m, n, k, a, lda, strideA, b, ldb, strideB, c, ldc, strideC, accumulate);
            return;
        }
        Span<int> index = stackalloc int[batch.Length];
        for (int i = 0; i < batchCount; i++)
        {
            long offA = 0, offB = 0;
            for (int d = 0; d < batch.Length; d++) { offA += (long)index[d] * sa[d]; offB += (long)index[d] * sb[d]; }
            Gemm.Multiply(ta, tb, m, n, k, a + offA, lda, b + offB, ldb, c + i * strideC, ldc, accumulate);
            for (int d = batch.Length - 1; d >= 0; d--) { if (++index[d] < batch[d]) break; index[d] = 0; }
        }
    }

    /// <summary>
    /// y = x·Wᵀ + b (torch.nn.functional.linear): x (…, in), weight (out, in) as PyTorch stores it, bias (out) or null.
    /// With <paramref name="residual"/> (the output's shape), y = residual + (x·Wᵀ + b): a residual connection whose sum
    /// is formed in the product itself, so the branch's own output is never held (one activation fewer per block).
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null, Tensor? residual = null) =>
        LinearOf("Linear", x, weight, bias, null, residual);

    /// <summary>
    /// y = GELU(h)·Wᵀ + b, the second half of a Transformer's MLP, equal to <c>Linear(h.Gelu(approximation), weight,
    /// bias)</c> but without keeping GELU(h): the forward pass forms it in a scratch buffer, the backward pass forms it
    /// again for dW. The MLP's widest activation (4·C per token) is then held once (h) instead of twice, for one more
    /// GELU pass in backward. <paramref name="residual"/> as in <see cref="Linear"/>.
    /// </summary>
    public static Tensor GeluLinear(Tensor h, Tensor weight, Tensor? bias, GeluApproximation approximation,
        Tensor? residual = null) =>
        LinearOf("GeluLinear", h, weight, bias, new GeluPass(approximation), residual);

    /// <summary>
    /// y = LayerNorm(x; γ, β)·Wᵀ + b, equal to <c>Linear(LayerNorm(x, normWeight, normBias, eps), weight, bias)</c> but
    /// without keeping the normalised x: formed in a scratch for the product, and again in backward from x and the saved
    /// mean and 1/σ. A pre-LN Transformer block holds x anyway for its residual, so each normalisation before a
    /// projection then costs no activation of its own. <paramref name="residual"/> as in <see cref="Linear"/>.
    /// </summary>
    public static Tensor LayerNormLinear(Tensor x, Tensor? normWeight, Tensor? normBias, float eps, Tensor weight, Tensor? bias,
        Tensor? residual = null)
    {
        int cols = x.Rank < 1 ? 0 : x._shape[^1];
        CheckVector(normWeight, cols, "LayerNormLinear normWeight"); CheckVector(normBias, cols, "LayerNormLinear normBias");
        return LinearOf("LayerNormLinear", x, weight, bias,
            new LayerNormPass(normWeight?.Contiguous(), normBias?.Contiguous(), eps), residual);
    }

    /// <summary>
    /// [residual +] f(x)·Wᵀ + b, where f is <paramref name="pass"/> (or nothing): f(x) lives in a scratch buffer during
    /// the product and is formed again in backward, where the same scratch then takes dy·W for f's own backward.
    /// </summary>
    static Tensor LinearOf(string name, Tensor x, Tensor weight, Tensor? bias, InputPass? pass, Tensor? residual)
    {
        if (weight.Rank != 2)
            throw new ArgumentException($"{name} weight must be (out, in); got {ShapeMath.Format(weight.Shape)}.",
                nameof(weight));
        int outF = weight._shape[0], inF = weight._shape[1];
        if (x.Rank < 1 || x._shape[^1] != inF)
            throw new ArgumentException($"{name}: input {ShapeMath.Format(x.Shape)} does not end in in_features = {inF} " +
                $"of weight {ShapeMath.Format(weight.Shape)}.", nameof(x));
        if (bias is not null && (bias.Rank != 1 || bias._shape[0] != outF))
            throw new ArgumentException($"{name} bias must be ({outF},); got {ShapeMath.Format(bias.Shape)}.", nameof(bias));
        var outShape = (int[])x._shape.Clone(); outShape[^1] = outF;
        if (residual is not null && !ShapeMath.SameShape(residual.Shape, outShape))
            throw new ArgumentException($"{name} residual must have the output's shape {ShapeMath.Format(outShape)}; " +
                $"got {ShapeMath.Format(residual.Shape)}.", nameof(residual));
        int rows = x.Count / Math.Max(inF, 1);
        if (inF == 0) rows = ShapeMath.Count(x._shape.AsSpan(0, x.Rank - 1));
        if (DeviceOf(name, x, weight, bias, residual, (pass as LayerNormPass)?.Weight, (pass as LayerNormPass)?.Bias)
            is { } device)
            return DeviceLinear(name, device, x, weight, bias, pass, residual, outShape, rows);
        var xc = x.Contiguous(); var w = weight.Contiguous(); var bc = bias?.Contiguous(); var rc = residual?.Contiguous();
        if (weight.Quantized is { } int8) return QuantizedLinearOf(name, xc, int8, bc, pass, rc, outShape, rows);
        var result = Uninitialized(outShape);
        if (rc is not null) Kernels.Simd.ElementWise.Copy(result.Data, rc.Data);
        // (rows, in) · (out, in)ᵀ → (rows, out), bias (and the residual, already in place) added in the same pass.
        using (var a = pass is null ? null : Uninitialized(xc._shape).DetachFromScope())
        {
            pass?.Forward(xc, a!.Data, rows, inF);
            Gemm.Multiply(GemmOp.No, GemmOp.Yes, rows, outF, inF, (a ?? xc).Pointer, inF, w.Pointer, inF, result.Pointer, outF,
                accumulate: rc is not null, bias: bc is null ? null : bc.Pointer);
        }
        Tensor[] inputs = [xc, .. pass?.Parameters ?? [], w, .. bc is null ? [] : new[] { bc },
            .. rc is null ? [] : new[] { rc }];
        return Record(result, name, inputs, g =>
        {
            if (pass is null)
            {
                if (xc.RequiresGrad)
                    fixed (float* dx = xc.GradBufferToSet(out bool set)) // dx = dy · W   (rows, out) · (out, in)
                        Gemm.Multiply(GemmOp.No, GemmOp.No, rows, inF, outF, g.Pointer, outF, w.Pointer, inF, dx, inF,
                            accumulate: !set);
                if (w.RequiresGrad)
                    fixed (float* dw = w.GradBuffer()) // dW = dyᵀ · x   (out, rows) · (rows, in)
                        Gemm.Multiply(GemmOp.Yes, GemmOp.No, outF, inF, rows, g.Pointer, outF, xc.Pointer, inF, dw, inF,
                            accumulate: true);
            }
            else if (w.RequiresGrad || pass.NeedsGradient(xc))
            {
                // One scratch of x's shape serves twice: f(x) for dW, then dy·W for f's backward. Holding only one at a
                // time keeps the backward at two buffers of x's size (this and dx).
                using var scratch = Uninitialized(xc._shape).DetachFromScope();
                bool slopeFormed = false; // x's gradient holds f′(x), formed in the same pass as f(x)
                if (w.RequiresGrad)
                {
                    // f(x) has the forward pass's bits either way
                    slopeFormed = pass.ForwardWithSlope(xc, scratch.Data);
                    if (!slopeFormed) pass.Forward(xc, scratch.Data, rows, inF);
                    fixed (float* dw = w.GradBuffer()) // dW = dyᵀ · f(x)   (out, rows) · (rows, in)
                        Gemm.Multiply(GemmOp.Yes, GemmOp.No, outF, inF, rows, g.Pointer, outF, scratch.Pointer, inF, dw, inF,
                            accumulate: true);
                }
                if (pass.NeedsGradient(xc))
                {
                    // d f(x) = dy · W, then f's backward
                    Gemm.Multiply(GemmOp.No, GemmOp.No, rows, inF, outF, g.Pointer, outF, w.Pointer, inF, scratch.Pointer, inF,
                        accumulate: false);
                    if (slopeFormed) pass.BackwardFromSlope(xc, scratch.Data);
                    else pass.Backward(xc, scratch.Data, rows, inF);
                }
            }
            if (bc is not null && bc.RequiresGrad)
                Kernels.ColumnSum.Accumulate(bc.GradBuffer(), g.Data, rows); // db += Σ_rows dy
            if (rc is not null && rc.RequiresGrad) // the residual passes dy on unchanged
            {
                var dr = rc.GradBufferToSet(out bool set);
                if (set) Kernels.Simd.ElementWise.Copy(dr, g.Data);
                else Kernels.Simd.ElementWise.Add(dr, dr, g.Data);
            }
        });
    }

    /// <summary>
    /// <see cref="LinearOf"/> with an int8 weight: f(x) formed as in fp32, each row quantized to int8 (its own scale),
    /// the product accumulated in int32 and scaled back, bias and residual added (<see cref="Int8Gemm"/>). Inference
    /// only: nothing is recorded, and a call that would record a gradient is refused.
    /// </summary>
    static Tensor QuantizedLinearOf(string name, Tensor xc, QuantizedWeight weight, Tensor? bc, InputPass? pass, Tensor? rc,
        int[] outShape, int rows)
    {
        bool wantsGradient = Autograd.GradMode.IsEnabled && (xc.RequiresGrad || bc?.RequiresGrad == true
                             || rc?.RequiresGrad == true || pass?.NeedsGradient(xc) == true);
        if (wantsGradient)
            throw new InvalidOperationException($"{name}: this weight is int8, which is for inference; gradients " +
                $"cannot flow through it. " +
                "Run the model under GradMode.NoGrad(), or train from the fp32 checkpoint.");
        int inF = weight.Columns, outF = weight.Rows, stride = weight.Stride;
        var result = Uninitialized(outShape);
        var quantized = System.Buffers.ArrayPool<short>.Shared.Rent(rows * stride);
        var scales = System.Buffers.ArrayPool<float>.Shared.Rent(rows);
        try
        {
            using (var a = pass is null ? null : Uninitialized(xc._shape).DetachFromScope())
            {
                pass?.Forward(xc, a!.Data, rows, inF);
                Int8Gemm.QuantizeRows((a ?? xc).Data, rows, inF, quantized.AsSpan(0, rows * stride), scales.AsSpan(0, rows));
            }
            Int8Gemm.Multiply(quantized.AsSpan(0, rows * stride), scales.AsSpan(0, rows), rows, stride, weight.Packed,
                weight.Scales, outF, bc is null ? default : bc.Data, rc is null ? default : rc.Data, result.Data);
        }
        finally
        {
            System.Buffers.ArrayPool<short>.Shared.Return(quantized);
            System.Buffers.ArrayPool<float>.Shared.Return(scales);
        }
        return result;
    }

    /// <summary>
    /// An element-wise or row-wise function applied to a Linear layer's input inside the op (<see cref="LinearOf"/>): its
    /// output is never kept, so it must be cheap to form again.
    /// </summary>
    abstract class InputPass
    {
        /// <summary>Tensors besides x that f reads (graph inputs, for their gradients).</summary>
        public virtual Tensor[] Parameters => [];

        /// <summary>a = f(x), x being (rows, cols).</summary>
        public abstract void Forward(Tensor x, Span<float> a, int rows, int cols);

        public virtual bool NeedsGradient(Tensor x) => x.RequiresGrad;

        /// <summary>Given da = ∂L/∂f(x), accumulates the gradients of x and of <see cref="Parameters"/>.</summary>
        public abstract void Backward(Tensor x, ReadOnlySpan<float> da, int rows, int cols);

        /// <summary>
        /// For an element-wise f whose value and slope share work: a = f(x) as <see cref="Forward"/> gives it, and
        /// x's gradient, when it starts here, set to f′(x) in the same pass, for <see cref="BackwardFromSlope"/>.
        /// Returns false, having done nothing, when f has no such form or x's gradient is not started here.
        /// </summary>
        public virtual bool ForwardWithSlope(Tensor x, Span<float> a) => false;

        /// <summary>After <see cref="ForwardWithSlope"/>: x's gradient f′(x) becomes da ⊙ f′(x).</summary>
        public virtual void BackwardFromSlope(Tensor x, ReadOnlySpan<float> da) =>
            throw new InvalidOperationException("This pass forms no slope.");
    }

    sealed class GeluPass(GeluApproximation approximation) : InputPass
    {
        public GeluApproximation Approximation => approximation;

        public override void Forward(Tensor x, Span<float> a, int rows, int cols) =>
            Kernels.Gelu.Forward(a, x.Data, approximation);

        public override void Backward(Tensor x, ReadOnlySpan<float> da, int rows, int cols) // dx += GELU′(x) ⊙ da
        {
            var dx = x.GradBufferToSet(out bool set);
            Kernels.Gelu.Backward(dx, da, x.Data, approximation, accumulate: !set);
        }

        // The erf form's Φ(x) serves GELU and GELU′ both; the tanh form shares nothing, so keeps its two passes.
        public override bool ForwardWithSlope(Tensor x, Span<float> a)
        {
            if (approximation != GeluApproximation.None || !x.RequiresGrad || x._grad is not null) return false;
            Kernels.Gelu.ForwardAndDerivative(a, x.GradBufferToSet(out _), x.Data, approximation);
            return true;
        }

        public override void BackwardFromSlope(Tensor x, ReadOnlySpan<float> da) // dx = da ⊙ GELU′(x): Backward's bits
        {
            var dx = x.GradBuffer();
            Kernels.Simd.ElementWise.Multiply(dx, da, dx);
        }
    }

    /// <summary>LayerNorm over the last dimension; keeps each row's mean and 1/σ from the forward pass.</summary>
    sealed class LayerNormPass(Tensor? weight, Tensor? bias, float eps) : InputPass
    {
        float[] _mean = [], _rstd = [];

        public Tensor? Weight => weight;
        public Tensor? Bias => bias;
        public float Eps => eps;

        public override Tensor[] Parameters => [.. weight is null ? [] : new[] { weight }, .. bias is null ? [] : new[] { bias }];

        public override void Forward(Tensor x, Span<float> a, int rows, int cols)
        {
            if (_mean.Length != rows) { _mean = new float[rows]; _rstd = new float[rows]; }
            Kernels.LayerNorm.Forward(a, _mean, _rstd, x.Data, weight is null ? default : weight.Data,
                bias is null ? default : bias.Data, rows, cols, eps);
        }

        public override bool NeedsGradient(Tensor x) =>
            x.RequiresGrad || weight is { RequiresGrad: true } || bias is { RequiresGrad: true };

        public override void Backward(Tensor x, ReadOnlySpan<float> da, int rows, int cols)
        {
            Span<float> dw = weight is { RequiresGrad: true } ? weight.GradBuffer() : default;
            Span<float> db = bias is { RequiresGrad: true } ? bias.GradBuffer() : default;
            // The kernel always produces dx; give it scratch, to be written, when x needs none.
            using var dxScratch = x.RequiresGrad ? null : Uninitialized(x._shape).DetachFromScope();
            bool set = true;
            var dx = dxScratch is null ? x.GradBufferToSet(out set) : dxScratch.Data;
            Kernels.LayerNorm.Backward(dx, dw, db, da, x.Data, weight is null ? default : weight.Data, _mean, _rstd, rows, cols,
                accumulateInput: !set);
        }
    }
}
