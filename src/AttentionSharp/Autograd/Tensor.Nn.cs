using System.Numerics.Tensors;
using AttentionSharp.Kernels;

namespace AttentionSharp;

// The neural-network operations (torch.nn.functional's vocabulary), each one forward kernel and one backward kernel from
// Kernels/. Row operations work on the last dimension: a (…, C) tensor is rows = Count / C rows of C.
public sealed unsafe partial class Tensor
{
    int LastDim => Rank == 0 ? 1 : _shape[^1];
    int Rows => LastDim == 0 ? 0 : Count / LastDim;

    /// <summary>softmax(x)ᵢ = exp(xᵢ − max x) / Σⱼ exp(xⱼ − max x) along <paramref name="dim"/>.</summary>
    public Tensor Softmax(int dim = -1) => AlongLastDim(dim, static x => x.SoftmaxLast(log: false));

    /// <summary>log softmax(x)ᵢ = xᵢ − max x − log Σⱼ exp(xⱼ − max x) along <paramref name="dim"/>.</summary>
    public Tensor LogSoftmax(int dim = -1) => AlongLastDim(dim, static x => x.SoftmaxLast(log: true));

    Tensor AlongLastDim(int dim, Func<Tensor, Tensor> op)
    {
        int d = ShapeMath.NormalizeDim(dim, Rank);
        if (d == Rank - 1) return op(this);
        return op(Transpose(d, -1).Contiguous()).Transpose(d, -1).Contiguous();
    }

    Tensor SoftmaxLast(bool log)
    {
        var x = Contiguous();
        int rows = x.Rows, cols = x.LastDim;
        var y = Uninitialized(_shape);
        if (log) Kernels.LogSoftmax.Forward(y.Data, x.Data, rows, cols);
        else Kernels.Softmax.Forward(y.Data, x.Data, rows, cols);
        return Record(y, log ? "LogSoftmax" : "Softmax", [x], g =>
        {
            if (!x.RequiresGrad) return;
            if (log) Kernels.LogSoftmax.Backward(x.GradBuffer(), g.Data, y.Data, rows, cols);
            else Kernels.Softmax.Backward(x.GradBuffer(), g.Data, y.Data, rows, cols);
        });
    }

    /// <summary>
    /// Layer normalisation over the last dimension (Ba et al. 2016): y = (x − mean) / √(var + eps) · weight + bias, with the
    /// biased variance as PyTorch. weight and bias are (C) or null.
    /// </summary>
    public static Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps = 1e-5f)
    {
        int cols = x.LastDim;
        CheckVector(weight, cols, "LayerNorm weight"); CheckVector(bias, cols, "LayerNorm bias");
        if (DeviceOf("LayerNorm", x, weight, bias) is { } device) return DeviceLayerNorm(device, x, weight, bias, eps);
        var xc = x.Contiguous(); var w = weight?.Contiguous(); var b = bias?.Contiguous();
        int rows = xc.Rows;
        var y = Uninitialized(x._shape);
        var mean = new float[rows]; var rstd = new float[rows];
        Kernels.LayerNorm.Forward(y.Data, mean, rstd, xc.Data, w is null ? default : w.Data, b is null ? default : b.Data,
            rows, cols, eps);
        Tensor[] inputs = [xc, .. w is null ? Array.Empty<Tensor>() : [w], .. b is null ? Array.Empty<Tensor>() : [b]];
        return Record(y, "LayerNorm", inputs, g =>
        {
            Span<float> dx = xc.RequiresGrad ? xc.GradBuffer() : default;
            Span<float> dw = w is { RequiresGrad: true } ? w.GradBuffer() : default;
            Span<float> db = b is { RequiresGrad: true } ? b.GradBuffer() : default;
            if (!xc.RequiresGrad)
            {
                // The kernel always produces dx; give it scratch when x needs none.
                using var scratch = Zeros(x._shape);
                Kernels.LayerNorm.Backward(scratch.Data, dw, db, g.Data, xc.Data, w is null ? default : w.Data, mean, rstd,
                    rows, cols);
                return;
            }
            Kernels.LayerNorm.Backward(dx, dw, db, g.Data, xc.Data, w is null ? default : w.Data, mean, rstd, rows, cols);
        });
    }

    /// <summary>
    /// RMS normalisation over the last dimension (Zhang and Sennrich 2019): y = x / √(mean(x²) + eps) · weight.
    /// </summary>
    public static Tensor RmsNorm(Tensor x, Tensor? weight, float eps = 1e-6f)
    {
        int cols = x.LastDim;
        CheckVector(weight, cols, "RmsNorm weight");
        var xc = x.Contiguous(); var w = weight?.Contiguous();
        int rows = xc.Rows;
        var y = Uninitialized(x._shape);
        var rstd = new float[rows];
        Kernels.RmsNorm.Forward(y.Data, rstd, xc.Data, w is null ? default : w.Data, rows, cols, eps);
        Tensor[] inputs = w is null ? [xc] : [xc, w];
        return Record(y, "RmsNorm", inputs, g =>
        {
            using var scratch = xc.RequiresGrad ? null : Zeros(x._shape);
            Span<float> dx = scratch is null ? xc.GradBuffer() : scratch.Data;
            Span<float> dw = w is { RequiresGrad: true } ? w.GradBuffer() : default;
            Kernels.RmsNorm.Backward(dx, dw, g.Data, xc.Data, w is null ? default : w.Data, rstd, rows, cols);
        });
    }

    static void CheckVector(Tensor? t, int cols, string what)
    {
        if (t is not null && (t.Rank != 1 || t._shape[0] != cols))
            throw new ArgumentException(
                $"{what} must have shape ({cols},) to match the last dimension; got {ShapeMath.Format(t.Shape)}.");
    }

    /// <summary>
    /// GELU(x) = x·Φ(x) (Hendrycks and Gimpel 2016); <see cref="GeluApproximation.Tanh"/> uses
    /// 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).
    /// </summary>
    public Tensor Gelu(GeluApproximation approximation = GeluApproximation.None)
    {
        if (_memory is not null) return DeviceGelu(this, approximation);
        if (approximation != GeluApproximation.None || !Autograd.GradMode.IsEnabled || !RequiresGrad)
            return Activation("Gelu", (y, x) => Kernels.Gelu.Forward(y, x, approximation),
                (dx, dy, x) => Kernels.Gelu.Backward(dx, dy, x, approximation));
        // The erf form's slope shares Φ(x) with its value, so where a gradient will be wanted the forward pass forms
        // both and keeps GELU′(x), and the backward pass is one product, dx += dy ⊙ GELU′(x), with Backward's bits.
        var xc = Contiguous();
        var result = Uninitialized(_shape);
        var slope = Uninitialized(_shape);
        Kernels.Gelu.ForwardAndDerivative(result.Data, slope.Data, xc.Data, approximation);
        return Record(result, "Gelu", [xc], g =>
        {
            var dx = xc.GradBufferToSet(out bool set);
            if (set) Kernels.Simd.ElementWise.Multiply(dx, g.Data, slope.Data);
            else Kernels.Simd.ElementWise.MultiplyAccumulate(dx, g.Data, slope.Data);
        });
    }

    /// <summary>ReLU(x) = max(0, x).</summary>
    public Tensor Relu() => Activation("Relu", Kernels.Relu.Forward, Kernels.Relu.Backward);

    /// <summary>SiLU(x) = x·σ(x) (also called swish).</summary>
    public Tensor Silu() => Activation("Silu", Kernels.Silu.Forward, Kernels.Silu.Backward);

    delegate void ActivationForward(Span<float> y, ReadOnlySpan<float> x);
    delegate void ActivationBackward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x);

    Tensor Activation(string name, ActivationForward forward, ActivationBackward backward)
    {
        var x = Contiguous();
        var y = Uninitialized(_shape);
        forward(y.Data, x.Data);
        return Record(y, name, [x], g => { if (x.RequiresGrad) backward(x.GradBuffer(), g.Data, x.Data); });
    }

    /// <summary>SwiGLU(gate, up) = SiLU(gate) ⊙ up (Shazeer 2020), the gated FFN of LLaMA-style blocks.</summary>
    public static Tensor SwiGlu(Tensor gate, Tensor up)
    {
        if (!ShapeMath.SameShape(gate.Shape, up.Shape))
            throw new ArgumentException(
                $"SwiGlu needs gate and up of one shape; got {ShapeMath.Format(gate.Shape)} and {ShapeMath.Format(up.Shape)}.");
        var gc = gate.Contiguous(); var uc = up.Contiguous();
        var y = Uninitialized(gate._shape);
        Kernels.SwiGlu.Forward(y.Data, gc.Data, uc.Data);
        return Record(y, "SwiGlu", [gc, uc], g =>
        {
            using var sg = gc.RequiresGrad ? null : Zeros(gate._shape);
            using var su = uc.RequiresGrad ? null : Zeros(up._shape);
            Kernels.SwiGlu.Backward(sg is null ? gc.GradBuffer() : sg.Data, su is null ? uc.GradBuffer() : su.Data,
                g.Data, gc.Data, uc.Data);
        });
    }

    /// <summary>
    /// Rotary position embedding in one pass (<see cref="Kernels.Rotary"/>): x is (…, T, W), and the first
    /// <paramref name="heads"/> heads of <paramref name="headSize"/> floats at each of the T positions are rotated by the
    /// angles whose cosines and sines <paramref name="cos"/> and <paramref name="sin"/> hold (T rows of HS/2, the
    /// positions' own); the rest of each row passes through. The backward pass is the inverse rotation.
    /// </summary>
    internal static Tensor Rotary(Tensor x, int heads, int headSize, ReadOnlyMemory<float> cos, ReadOnlyMemory<float> sin)
    {
        if (x.Rank < 2 || x.Size(-1) == 0)
            throw new ArgumentException($"Rotary embedding needs (…, T, W) input with W > 0; got {ShapeMath.Format(x.Shape)}.",
                nameof(x));
        var xc = x.Contiguous();
        int t = x.Size(-2), width = x.Size(-1), rows = xc.Count / width;
        if (xc._memory is not null) return DeviceRotary(xc, rows, width, heads, headSize, t, cos.Span, sin.Span);
        var y = Uninitialized(x._shape);
        Kernels.Rotary.Forward(y.Data, xc.Data, rows, width, heads, headSize, t, cos.Span, sin.Span);
        return Record(y, "Rotary", [xc], g =>
        {
            if (!xc.RequiresGrad) return;
            var dx = xc.GradBufferToSet(out bool overwrite);
            Kernels.Rotary.Backward(dx, g.Data, rows, width, heads, headSize, t, cos.Span, sin.Span, accumulate: !overwrite);
        });
    }

    /// <summary>
    /// Inverted dropout: in training each element is zeroed with probability p and the rest scaled by 1/(1 − p); in
    /// evaluation (or with p = 0) the input is returned unchanged. The mask is drawn from <paramref name="rng"/>.
    /// The tensor is taken as rows r, r+1, … (along dimension 0) of a larger one, r = <paramref name="firstRow"/> or else
    /// the generator's <see cref="Generator.FirstRow"/>, and gets the mask that tensor would get there: data-parallel
    /// ranks together drop what one process drops.
    /// </summary>
    public Tensor Dropout(float p, bool training, Generator rng, int? firstRow = null)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1).");
        int first = firstRow ?? rng.FirstRow;
        if (first < 0) throw new ArgumentOutOfRangeException(nameof(firstRow), first, "The first row cannot be negative.");
        if (!training || p == 0) return this;
        ulong offset = first == 0 ? 0 : (ulong)first * (ulong)(Count / Size(0)); // elements before row first
        if (_memory is not null) return DeviceDropout(this, p, rng.NextUInt64(), offset);
        var x = Contiguous();
        var y = Uninitialized(_shape);
        var mask = new byte[Count];
        Kernels.Dropout.Forward(y.Data, mask, x.Data, p, rng.NextUInt64(), offset);
        return Record(y, "Dropout", [x], g => { if (x.RequiresGrad) Kernels.Dropout.Backward(x.GradBuffer(), g.Data, mask, p); });
    }

    /// <summary>
    /// Mean cross-entropy of (…, V) logits against integer targets (one per row), as F.cross_entropy: positions whose
    /// target is <paramref name="ignoreIndex"/> are skipped and excluded from the mean (all ignored gives NaN, as PyTorch);
    /// label smoothing ε mixes the one-hot target with the uniform distribution.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, int ignoreIndex = -100, float labelSmoothing = 0f)
    {
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "Label smoothing must be in [0, 1].");
        var x = logits.Contiguous();
        int vocab = x.LastDim, rows = x.Rows;
        if (targets.Length != rows)
            throw new ArgumentException($"CrossEntropy: logits {ShapeMath.Format(logits.Shape)} have {rows} rows but " +
                $"{targets.Length} targets were given.", nameof(targets));
        var t = targets.ToArray();
        if (x._memory is not null) return DeviceCrossEntropy(x, t, ignoreIndex, labelSmoothing);
        var rowLoss = new float[rows]; var lse = new float[rows];
        Kernels.CrossEntropy.Forward(rowLoss, lse, x.Data, t, rows, vocab, ignoreIndex, labelSmoothing);
        int counted = 0;
        foreach (var target in t) if (target != ignoreIndex) counted++;
        double total = 0;
        foreach (var l in rowLoss) total += l;
        var loss = Scalar(counted == 0 ? float.NaN : (float)(total / counted));
        return Record(loss, "CrossEntropy", [x], g =>
        {
            if (!x.RequiresGrad || counted == 0) return;
            // ∂mean/∂rowLossᵣ = g / count for counted rows; the kernel skips ignored rows.
            var dRow = new float[rows];
            Array.Fill(dRow, g.Data[0] / counted);
            var dx = x.GradBufferToSet(out bool set);
            Kernels.CrossEntropy.Backward(dx, dRow, x.Data, lse, t, rows, vocab, ignoreIndex, labelSmoothing, accumulate: !set);
        });
    }

    /// <summary>
    /// Rows of <paramref name="table"/> (V, D) picked by <paramref name="ids"/>, shaped (idShape…, D); the backward
    /// scatter-adds.
    /// </summary>
    public static Tensor Embedding(Tensor table, ReadOnlySpan<int> ids, params ReadOnlySpan<int> idShape)
    {
        if (table.Rank != 2)
            throw new ArgumentException($"An embedding table must be (V, D); got {ShapeMath.Format(table.Shape)}.",
                nameof(table));
        var shape = idShape.Length == 0 ? [ids.Length] : idShape.ToArray();
        if (ShapeMath.Count(shape) != ids.Length)
            throw new ArgumentException($"Embedding: {ids.Length} ids do not fill the shape {ShapeMath.Format(shape)}.",
                nameof(ids));
        int vocab = table._shape[0], dim = table._shape[1];
        var outShape = new int[shape.Length + 1];
        shape.CopyTo(outShape, 0); outShape[^1] = dim;
        if (table.Float32Released)
        {
            // An int8-only table: each row's q·scale, the values its released fp32 elements held.
            if (Autograd.GradMode.IsEnabled && table.RequiresGrad)
                throw new InvalidOperationException("Embedding: this table is int8 only (its fp32 elements were " +
                    "released), which " +
                    "is for inference; gradients cannot flow through it. Run the model under GradMode.NoGrad().");
            var rows = Uninitialized(outShape);
            for (int i = 0; i < ids.Length; i++)
            {
                if ((uint)ids[i] >= (uint)vocab)
                    throw new ArgumentOutOfRangeException(nameof(ids), ids[i], $"Embedding id must be in [0, {vocab}).");
                table.Quantized!.DequantizeRow(ids[i], rows.Data.Slice(i * dim, dim));
            }
            return rows;
        }
        if (table._memory is not null) return DeviceEmbedding(table, ids.ToArray(), outShape);
        var w = table.Contiguous();
        var y = Uninitialized(outShape);
        var idArray = ids.ToArray();
        Kernels.Embedding.Forward(y.Data, idArray, w.Data, vocab, dim);
        return Record(y, "Embedding", [w], g =>
        {
            if (w.RequiresGrad) Kernels.Embedding.Backward(w.GradBuffer(), g.Data, idArray, vocab, dim);
        });
    }
    /// <summary>
    /// Sliding K×K windows of images (B, Ch, H, W) → (B, Ho·Wo, Ch·K·K), windows in row-major order, values in (ch, i, j)
    /// order, zeros where a window reaches into the padding: torch's F.unfold with its last two dimensions swapped. A
    /// convolution is this followed by a <see cref="Linear(Tensor, Tensor, Tensor?, Tensor?)"/> with the weight reshaped to
    /// (C_out, Ch·K·K); with kernel = stride and no padding it cuts the image into patches.
    /// </summary>
    public Tensor Unfold2d(int kernel, int stride, int padding = 0)
    {
        if (Rank != 4) throw new ArgumentException($"Unfold2d expects images (B, Ch, H, W); got {ShapeMath.Format(Shape)}.");
        int b = _shape[0], ch = _shape[1], h = _shape[2], w = _shape[3];
        var (ho, wo) = Kernels.Unfold.OutputSize(h, w, kernel, stride, padding);
        if (_memory is not null)
        {
            // Patches (kernel = stride, no padding) are a permutation of the image: (B, Ch, Ho, K, Wo, K) read as
            // (B, Ho, Wo, Ch, K, K), which a device gathers; overlapping or padded windows run on the CPU only.
            if (kernel != stride || padding != 0 || ho * kernel != h || wo * kernel != w)
                throw new NotSupportedException($"Unfold2d on {Device.Name} cuts images into patches (kernel = stride, " +
                    $"no padding, sizes divisible); kernel {kernel}, stride {stride}, padding {padding} on {h}×{w} runs on " +
                    "the CPU only.");
            return Reshape(b, ch, ho, kernel, wo, kernel).Permute(0, 2, 4, 1, 3, 5).Reshape(b, ho * wo, ch * kernel * kernel);
        }
        var y = Uninitialized([b, ho * wo, ch * kernel * kernel]);
        // A view is read in place through its strides: a convolutional stem's channels-last rows seen as (B, Ch, H, W)
        // are not copied first. The gradient goes to the view, whose own backward lays it out for the rows.
        Kernels.Unfold.Forward(y.Data, Pointer, _strides, b, ch, h, w, kernel, stride, padding);
        return Record(y, "Unfold2d", [this], g =>
        {
            if (RequiresGrad) Kernels.Unfold.Backward(GradBuffer(), g.Data, b, ch, h, w, kernel, stride, padding);
        });
    }
}
