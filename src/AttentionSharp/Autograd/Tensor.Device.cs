using AttentionSharp.Autograd;
using AttentionSharp.Kernels;
using GemmOp = AttentionSharp.Kernels.Transpose;

namespace AttentionSharp;

// Tensors on a device other than the CPU (Device.cs): moving them, their gradients, and the operations a device runs,
// each a forward and backward pair over the backend's kernels, recorded on the same autograd graph as the CPU's. The
// public operations (Linear, LayerNorm, Embedding, …) come here when their operands are on a device.
public sealed unsafe partial class Tensor
{
    /// <summary>Where the elements live: <see cref="AttentionSharp.Device.Cpu"/>, or the device they were moved to.</summary>
    public Device Device => _memory?.Device ?? Device.Cpu;

    internal static DeviceBackend DeviceBackendOf(Tensor t) => t._memory!.Device.Backend;

    /// <summary>The tensor itself, which a backend kernel reads as dense elements from its offset.</summary>
    internal static Tensor DenseOnDevice(Tensor t) => t.IsContiguous
        ? t
        : throw new InvalidOperationException($"This {ShapeMath.Format(t._shape)} view on {t.Device.Name} is strided " +
            "where a dense tensor is needed; call Contiguous() first.");

    /// <summary>A dense copy of a device tensor laid out in any order (no history).</summary>
    Tensor DeviceCopy()
    {
        var result = DeviceUninitialized(Device, _shape);
        DeviceBackendOf(this).Gather(result, this, _offset, _strides);
        return result;
    }

    /// <summary>
    /// Adds a dense gradient laid out in a view's shape into this tensor's device gradient, at
    /// <paramref name="offset"/> elements into it with <paramref name="strides"/> (the view's places in this tensor).
    /// </summary>
    void ScatterIntoDeviceGrad(Tensor g, int offset, int[] strides)
    {
        var grad = DeviceGrad();
        DeviceBackendOf(this).ScatterAdd(grad, grad._offset + offset, strides, DenseOnDevice(g));
    }

    static Tensor DeviceUninitialized(Device device, params ReadOnlySpan<int> shape)
    {
        var s = shape.ToArray();
        return new Tensor(device.Backend.Allocate(ShapeMath.Count(s)), 0, s, ShapeMath.ContiguousStrides(s));
    }

    static Tensor DeviceZeros(Device device, params ReadOnlySpan<int> shape)
    {
        var t = DeviceUninitialized(device, shape);
        device.Backend.Fill(t, 0f);
        return t;
    }

    /// <summary>
    /// A copy of this tensor on <paramref name="device"/> (this tensor itself when it is there already). Gradients flow
    /// back through the copy to this tensor's device, as torch's <c>to</c>.
    /// </summary>
    public Tensor To(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (ReferenceEquals(device, Device)) return this;
        var result = CopyOnto(device);
        var source = this;
        return Record(result, "To", [this], g =>
        {
            if (!source.RequiresGrad) return;
            using var back = g.CopyOnto(source.Device);
            source.AccumulateGradStrided(back);   // dense, in the source's shape, on its device
        });
    }

    /// <summary>A copy on <paramref name="device"/> without history, through the host between two devices.</summary>
    Tensor CopyOnto(Device device)
    {
        if (Float32Released) throw Int8Only();
        if (device.IsCpu) return FromArray(ToArray(), _shape);
        var result = DeviceUninitialized(device, _shape);
        if (_memory is null && IsContiguous) device.Backend.CopyFromHost(result, Data);
        else device.Backend.CopyFromHost(result, ToArray());
        return result;
    }

    /// <summary>
    /// Moves this leaf tensor (a parameter or buffer) to <paramref name="device"/> in place: the same object, so a
    /// module's and an optimizer's references follow it; its gradient, if any, moves too. For a model, call
    /// <see cref="Nn.Module.To"/>.
    /// </summary>
    public void MoveTo(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (ReferenceEquals(device, Device)) return;
        if (GradFn is not null)
            throw new InvalidOperationException("Only a leaf tensor moves in place; use To(device) for a computed one.");
        if (Quantized is not null)
            throw new InvalidOperationException("An int8 weight stays on the CPU: the devices run fp32 weights only.");
        if (!IsContiguous)
            throw new InvalidOperationException($"Only a dense tensor moves in place; this {ShapeMath.Format(_shape)} " +
                "one is a strided view.");
        var moved = CopyOnto(device);
        var grad = _grad?.CopyOnto(device);
        ReleaseGradBuffer();
        Interlocked.Exchange(ref _storage, moved._storage)?.Release();
        Interlocked.Exchange(ref _memory, moved._memory)?.Release();
        _offset = moved._offset;
        moved._storage = null; moved._memory = null;   // now this tensor's
        _grad = grad?.DetachFromScope();
    }

    /// <summary>
    /// The operands' device when any is on one other than the CPU (null when all are on the CPU); throws when they are
    /// on different devices.
    /// </summary>
    static Device? DeviceOf(string name, Tensor a, Tensor? b = null, Tensor? c = null, Tensor? d = null, Tensor? e = null,
        Tensor? f = null)
    {
        if (a._memory is null && b?._memory is null && c?._memory is null && d?._memory is null && e?._memory is null
            && f?._memory is null)
            return null;
        var device = a.Device;
        foreach (var t in (ReadOnlySpan<Tensor?>)[b, c, d, e, f])
            if (t is not null && !ReferenceEquals(t.Device, device))
                throw new InvalidOperationException($"{name}: its operands are on {device.Name} and {t.Device.Name}; " +
                    "move them to one device first (To or Module.To).");
        return device;
    }

    // --- gradients on a device ---

    /// <summary>The device gradient rules add into, created as zeros on first use.</summary>
    Tensor DeviceGrad() => _grad ??= DeviceZeros(Device, _shape).DetachFromScope();

    /// <summary>Adds <paramref name="g"/> (dense, this tensor's shape and device) into this tensor's gradient.</summary>
    void AccumulateDeviceGrad(Tensor g)
    {
        var backend = DeviceBackendOf(this);
        if (_grad is null)
        {
            _grad = DeviceUninitialized(Device, _shape).DetachFromScope();
            backend.Copy(_grad, DenseOnDevice(g));
        }
        else backend.AddRows(_grad, _grad, DenseOnDevice(g), 1, Count, 1);
    }

    /// <summary>The seed of a backward pass from a tensor on a device: 1 for a scalar, else the given gradient.</summary>
    internal static void SeedDeviceGradient(Tensor root, Tensor? gradient)
    {
        if (gradient is not null)
        {
            if (!ReferenceEquals(gradient.Device, root.Device))
                throw new ArgumentException($"The gradient is on {gradient.Device.Name}, the tensor on {root.Device.Name}.",
                    nameof(gradient));
            root.AccumulateDeviceGrad(gradient);
            return;
        }
        using var one = DeviceUninitialized(root.Device, root._shape);
        DeviceBackendOf(root).Fill(one, 1f);
        root.AccumulateDeviceGrad(one);
    }

    // --- operations ---

    /// <summary>a + b on a device, b of a's shape or of its last dimensions (broadcast over the leading ones).</summary>
    static Tensor DeviceAdd(Tensor a, Tensor b)
    {
        DeviceOf("Add", a, b);   // one device for both
        if (b.Count > a.Count) (a, b) = (b, a);
        int cols = b.Count, rows = cols == 0 ? 0 : a.Count / cols;
        if (b.Rank > a.Rank || !a.Shape[(a.Rank - b.Rank)..].SequenceEqual(b.Shape))
            throw new NotSupportedException($"Add on {a.Device.Name}: {ShapeMath.Format(b.Shape)} is broadcast over " +
                $"{ShapeMath.Format(a.Shape)}; a device adds equal shapes, or a tensor of the other's last dimensions.");
        a = a.Contiguous(); b = b.Contiguous();
        var backend = DeviceBackendOf(a);
        var y = DeviceUninitialized(a.Device, a._shape);
        backend.AddRows(y, a, b, rows, cols, 1);
        return Record(y, "Add", [a, b], g =>
        {
            if (a.RequiresGrad) a.AccumulateDeviceGrad(g);
            if (b.RequiresGrad)
            {
                if (rows == 1) b.AccumulateDeviceGrad(g);
                else backend.ColumnSum(b.DeviceGrad(), g, rows, cols);
            }
        });
    }

    /// <summary>[residual +] f(x)·Wᵀ + b on a device, f formed again in backward (<see cref="LinearOf"/>).</summary>
    static Tensor DeviceLinear(string name, Device device, Tensor x, Tensor w, Tensor? bias, InputPass? pass,
        Tensor? residual, int[] outShape, int rows)
    {
        x = x.Contiguous(); w = w.Contiguous(); bias = bias?.Contiguous(); residual = residual?.Contiguous();
        var backend = device.Backend;
        int outF = w._shape[0], inF = w._shape[1];
        var normWeight = (pass as LayerNormPass)?.Weight; var normBias = (pass as LayerNormPass)?.Bias;
        normWeight = normWeight?.Contiguous(); normBias = normBias?.Contiguous();
        var mean = pass is LayerNormPass ? DeviceUninitialized(device, rows) : null;
        var rstd = pass is LayerNormPass ? DeviceUninitialized(device, rows) : null;

        void FormInput(Tensor a)   // a = f(x)
        {
            if (pass is GeluPass gelu) backend.Gelu(a, x, gelu.Approximation);
            else if (pass is LayerNormPass norm)
                backend.LayerNorm(a, mean!, rstd!, x, normWeight, normBias, rows, inF, norm.Eps);
        }

        var y = DeviceUninitialized(device, outShape);
        using (var a = pass is null ? null : DeviceUninitialized(device, x._shape))
        {
            if (a is not null) FormInput(a);
            backend.Linear(y, a ?? x, w, bias, rows, inF, outF);
        }
        if (residual is not null) backend.AddRows(y, y, residual, 1, y.Count, 1);
        Tensor[] inputs = [x, .. pass?.Parameters ?? [], w, .. bias is null ? [] : new[] { bias },
            .. residual is null ? [] : new[] { residual }];
        var result = Record(y, name, inputs, g =>
        {
            try
            {
                if (w.RequiresGrad)   // dW += dyᵀ · f(x)
                {
                    using var a = pass is null ? null : DeviceUninitialized(device, x._shape);
                    if (a is not null) FormInput(a);
                    backend.Gemm(GemmOp.Yes, GemmOp.No, outF, inF, rows, g, a ?? x, w.DeviceGrad(), accumulate: true);
                }
                if (pass is null)
                {
                    if (x.RequiresGrad)   // dx += dy · W
                        backend.Gemm(GemmOp.No, GemmOp.No, rows, inF, outF, g, w, x.DeviceGrad(), accumulate: true);
                }
                else if (pass.NeedsGradient(x))
                {
                    using var da = DeviceUninitialized(device, x._shape);   // ∂L/∂f(x) = dy · W
                    backend.Gemm(GemmOp.No, GemmOp.No, rows, inF, outF, g, w, da, accumulate: false);
                    if (pass is GeluPass gelu) backend.GeluBackward(x.DeviceGrad(), da, x, gelu.Approximation);
                    else LayerNormBackwardOnDevice(da, x, normWeight, normBias, mean!, rstd!, rows, inF);
                }
                if (bias is { RequiresGrad: true }) backend.ColumnSum(bias.DeviceGrad(), g, rows, outF);   // db += Σ dy
                if (residual is { RequiresGrad: true }) residual.AccumulateDeviceGrad(g);
            }
            finally { mean?.Dispose(); rstd?.Dispose(); }
        });
        if (result.GradFn is null) { mean?.Dispose(); rstd?.Dispose(); }
        return result;
    }

    static Tensor DeviceLayerNorm(Device device, Tensor x, Tensor? weight, Tensor? bias, float eps)
    {
        x = x.Contiguous(); weight = weight?.Contiguous(); bias = bias?.Contiguous();
        var backend = device.Backend;
        int cols = x.LastDim, rows = x.Rows;
        var y = DeviceUninitialized(device, x._shape);
        var mean = DeviceUninitialized(device, rows); var rstd = DeviceUninitialized(device, rows);
        backend.LayerNorm(y, mean, rstd, x, weight, bias, rows, cols, eps);
        Tensor[] inputs =
            [x, .. weight is null ? Array.Empty<Tensor>() : [weight], .. bias is null ? Array.Empty<Tensor>() : [bias]];
        var result = Record(y, "LayerNorm", inputs, g =>
        {
            LayerNormBackwardOnDevice(g, x, weight, bias, mean, rstd, rows, cols);
            mean.Dispose(); rstd.Dispose();
        });
        if (result.GradFn is null) { mean.Dispose(); rstd.Dispose(); }
        return result;
    }

    /// <summary>
    /// LayerNorm's backward on a device: x's, γ's and β's gradients from dy and the saved mean and 1/σ, each only where
    /// it is wanted (the kernel always forms dx, so it gets scratch when x needs none).
    /// </summary>
    static void LayerNormBackwardOnDevice(Tensor dy, Tensor x, Tensor? weight, Tensor? bias, Tensor mean, Tensor rstd,
        int rows, int cols)
    {
        using var scratch = x.RequiresGrad ? null : DeviceZeros(x.Device, x._shape);
        DeviceBackendOf(x).LayerNormBackward(scratch ?? x.DeviceGrad(),
            weight is { RequiresGrad: true } ? weight.DeviceGrad() : null,
            bias is { RequiresGrad: true } ? bias.DeviceGrad() : null, dy, x, weight, mean, rstd, rows, cols);
    }

    static Tensor DeviceGelu(Tensor x, GeluApproximation approximation)
    {
        x = x.Contiguous();
        var backend = DeviceBackendOf(x);
        var y = DeviceUninitialized(x.Device, x._shape);
        backend.Gelu(y, x, approximation);
        return Record(y, "Gelu", [x], g => backend.GeluBackward(x.DeviceGrad(), g, x, approximation));
    }

    static Tensor DeviceEmbedding(Tensor table, int[] ids, int[] outShape)
    {
        table = table.Contiguous();
        var backend = DeviceBackendOf(table);
        int vocab = table._shape[0], dim = table._shape[1];
        foreach (int id in ids)
            if ((uint)id >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Embedding id must be in [0, {vocab}).");
        var indices = backend.Upload(ids);
        var y = DeviceUninitialized(table.Device, outShape);
        backend.Embedding(y, indices, table, vocab, dim);
        var result = Record(y, "Embedding", [table], g =>
        {
            using (indices) backend.EmbeddingBackward(table.DeviceGrad(), g, indices, vocab, dim);
        });
        if (result.GradFn is null) indices.Dispose();
        return result;
    }

    static Tensor DeviceCrossEntropy(Tensor logits, int[] targets, int ignoreIndex, float labelSmoothing)
    {
        var x = logits.Contiguous();
        var backend = DeviceBackendOf(x);
        int vocab = x.LastDim, rows = x.Rows;
        var indices = backend.Upload(targets);
        var loss = DeviceUninitialized(x.Device);
        var rowLoss = DeviceUninitialized(x.Device, rows); var lse = DeviceUninitialized(x.Device, rows);
        backend.CrossEntropy(loss, rowLoss, lse, x, indices, rows, vocab, ignoreIndex, labelSmoothing);
        var result = Record(loss, "CrossEntropy", [x], g =>
        {
            using (indices) using (rowLoss) using (lse)
                backend.CrossEntropyBackward(x.DeviceGrad(), g.Item(), rowLoss, x, lse, indices, rows, vocab, ignoreIndex,
                    labelSmoothing);
        });
        if (result.GradFn is null) { indices.Dispose(); rowLoss.Dispose(); lse.Dispose(); }
        return result;
    }

    /// <summary>
    /// <see cref="PackedSelfAttention"/> on a device: causal or full, with key padding and dropout (the CPU's mask);
    /// the other masks run on the CPU only, and are refused here in a sentence.
    /// </summary>
    static Tensor DevicePackedSelfAttention(Tensor qkv, int b, int t, int heads, int hs, AttentionOptions options)
    {
        string? unsupported = options switch
        {
            { AdditiveMask: not null } => "an additive mask",
            { Window: > 0 } => "a sliding window",
            { GlobalTokens.IsEmpty: false } => "global tokens",
            { QueryLengths.IsEmpty: false } => "query lengths",
            { Implementation: AttentionImplementation.Plain } => "the plain implementation (attention weights)",
            _ => AttentionSubscription.Current is not null ? "an attention observer (attention maps)" : null,
        };
        if (unsupported is not null)
            throw new NotSupportedException($"Attention on {qkv.Device.Name} is causal or full, with key padding and " +
                $"dropout; {unsupported} runs on the CPU only.");
        Kernels.Dropout.CheckProbability(options.Dropout);
        if (options.Dropout > 0 && options.DropoutRng is null)
            throw new ArgumentException("Attention dropout needs a DropoutRng.");
        var dense = qkv.Contiguous();
        var device = dense.Device;
        var backend = device.Backend;
        var padding = options.KeyPadding.IsEmpty ? null : backend.Upload(PaddingFlags(options.KeyPadding.Span, b * t));
        // The seed is drawn as the CPU's attention draws it, so both drop the same weights.
        var call = new DeviceAttention(b, t, heads, hs, options.Causal, options.Scale, padding, options.Dropout,
            options.Dropout > 0 ? options.DropoutRng!.NextUInt64() : 0,
            options.DropoutFirstBatch ?? options.DropoutRng?.FirstRow ?? 0);
        var output = DeviceUninitialized(device, b, t, heads * hs);
        var lse = DeviceUninitialized(device, b, heads, t);
        backend.PackedSelfAttention(output, lse, dense, call);
        var result = Record(output, "FlashAttention", [dense], g =>
        {
            try
            {
                backend.PackedSelfAttentionBackward(dense.DeviceGrad(), DenseOnDevice(g), output, lse, dense, call);
            }
            finally { lse.Dispose(); padding?.Dispose(); }
        });
        if (result.GradFn is null) { lse.Dispose(); padding?.Dispose(); }
        return result;
    }

    /// <summary>Rotary positions on a device: the angle tables sent there for the forward pass and kept for backward.</summary>
    static Tensor DeviceRotary(Tensor x, int rows, int width, int heads, int headSize, int t, ReadOnlySpan<float> cos,
        ReadOnlySpan<float> sin)
    {
        var device = x.Device;
        var backend = device.Backend;
        var (c, s) = (DeviceUninitialized(device, t, headSize / 2), DeviceUninitialized(device, t, headSize / 2));
        backend.CopyFromHost(c, cos);
        backend.CopyFromHost(s, sin);
        var y = DeviceUninitialized(device, x._shape);
        backend.Rotary(y, x, rows, width, heads, headSize, t, c, s);
        var result = Record(y, "Rotary", [x], g =>
        {
            using (c) using (s)
                if (x.RequiresGrad)
                    backend.RotaryBackward(x.DeviceGrad(), DenseOnDevice(g), rows, width, heads, headSize, t, c, s);
        });
        if (result.GradFn is null) { c.Dispose(); s.Dispose(); }
        return result;
    }

    /// <summary>Inverted dropout on a device with the CPU's mask: element i of the stream at (seed, offset).</summary>
    static Tensor DeviceDropout(Tensor x, float p, ulong seed, ulong offset)
    {
        x = x.Contiguous();
        var backend = DeviceBackendOf(x);
        var y = DeviceUninitialized(x.Device, x._shape);
        backend.Dropout(y, x, p, seed, offset);
        return Record(y, "Dropout", [x], g =>
        {
            if (x.RequiresGrad) backend.DropoutBackward(x.DeviceGrad(), DenseOnDevice(g), p, seed, offset);
        });
    }

    static int[] PaddingFlags(ReadOnlySpan<bool> padding, int count)
    {
        if (padding.Length != count)
            throw new ArgumentException($"KeyPadding holds {padding.Length} flags; B·Tk = {count}.");
        var flags = new int[count];
        for (int i = 0; i < count; i++) flags[i] = padding[i] ? 1 : 0;
        return flags;
    }

    /// <summary>
    /// <see cref="Cat"/> on a device: each input is added into its place in a zeroed result (a strided view of it, one
    /// scatter per input), and each input's gradient is its place in the output's gradient, gathered.
    /// </summary>
    static Tensor DeviceCat(IReadOnlyList<Tensor> tensors, int d, int[] shape)
    {
        var device = tensors[0].Device;
        foreach (var t in tensors)
            if (!ReferenceEquals(t.Device, device))
                throw new InvalidOperationException($"Cat: its operands are on {device.Name} and {t.Device.Name}; move " +
                    "them to one device first (To or Module.To).");
        var inputs = tensors.Select(t => t.Contiguous()).ToArray();
        var backend = device.Backend;
        var result = DeviceZeros(device, shape);
        int at = 0;
        foreach (var t in inputs)
        {
            backend.ScatterAdd(result, result._offset + at * result._strides[d], result._strides, t);
            at += t._shape[d];
        }
        return Record(result, "Cat", inputs, g =>
        {
            int start = 0;
            foreach (var t in inputs)
            {
                if (t.RequiresGrad)
                {
                    using var place = g.Narrow(d, start, t._shape[d]);   // no history: backward runs without recording
                    using var dense = place.Contiguous();
                    t.AccumulateDeviceGrad(dense);
                }
                start += t._shape[d];
            }
        });
    }
}
