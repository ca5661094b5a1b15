// Source: Karpathy, llm.c train_gpt2.cu: a GPT-2 training step as explicit forward/backward pairs per layer over one
// activation arena, parameters and gradients in flat buffers. The model it mirrors is the CPU engine's Models/Gpt.cs.
using AttentionSharp.Kernels;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Gpu;

/// <summary>
/// A GPT-2-layout model on a <see cref="GpuDevice"/>: the CPU <see cref="Gpt"/>'s weights in one flat device buffer,
/// its gradients and AdamW moments in three more of the same layout, and a training step written as llm.c writes it —
/// every layer a forward and a backward call side by side, activations in one arena sized for B×T rows.
/// <para>
/// It supports what GPT-2 is: learned positions, pre-LN blocks, full causal attention (FlashAttention-2), GELU in its
/// tanh form, the head tied to wte, with or without biases, dropout 0. <see cref="From"/> refuses any other
/// configuration with one sentence naming the setting (<see cref="Unsupported"/>).
/// </para>
/// <para>
/// Checkpoints stay the CPU model's: <see cref="CopyTo"/> writes the weights back into a <see cref="Gpt"/>, which saves
/// them as the same safetensors files on both devices.
/// </para>
/// Letters: B batch, T time, C width, NH heads, HS head size, V vocabulary, L layers, N = B·T rows.
/// </summary>
public sealed class GpuGpt : IDisposable, IGpuTrainable
{
    readonly GpuDevice _device;
    readonly GpuParameters _p;
    readonly Weights _w, _g;
    GpuGptActivations? _a;
    int _batch, _time;
    bool _hasTargets;

    GpuGpt(GpuDevice device, Gpt model)
    {
        _device = device;
        Config = model.Config;
        var groups = model.NamedParameters().Zip(model.ParameterGroups(), (n, g) => (n.Name, n.Parameter, g.Decay)).ToList();
        _p = new GpuParameters(device, groups, "GPU GPT");
        _w = new Weights(this, _p.Values);
        _g = new Weights(this, _p.Gradients);
    }

    /// <summary>The shape this model was built with.</summary>
    public GptConfig Config { get; }

    public GpuDevice Device => _device;

    /// <summary>Parameters, in all.</summary>
    public long ParameterCount => _p.Count;

    /// <summary>Parameter names in the CPU model's order (<see cref="Module.NamedParameters"/>).</summary>
    public IReadOnlyList<string> ParameterNames => _p.Names;

    /// <summary>
    /// Null when <paramref name="config"/> is one the GPU GPT supports; else one sentence naming the setting and what is
    /// supported.
    /// </summary>
    public static string? Unsupported(GptConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        const string what = "The GPU GPT supports GPT-2's layout only";
        if (config.PositionalEncoding != PositionalEncodingKind.Learned)
            return $"{what} (learned positions); this model's positions are " +
                   $"{config.PositionalEncoding.ToString().ToLowerInvariant()}.";
        if (config.Attention.Kind != AttentionKind.Full)
            return $"{what} (full causal attention); this model's attention is {config.Attention}.";
        if (config.AttentionConfig.KeyValueHeads != config.Heads)
            return $"{what} (as many key/value heads as query heads); this model has {config.AttentionConfig.KeyValueHeads} " +
                   $"key/value heads for {config.Heads} query heads.";
        if (config.Dropout != 0)
            return $"{what} (dropout 0); this model's dropout is {config.Dropout}.";
        if (config.Width / config.Heads > GpuFlashAttention.MaxHeadSize)
            return $"{what} with heads of at most {GpuFlashAttention.MaxHeadSize}; this model's head size is " +
                   $"{config.Width / config.Heads}.";
        return null;
    }

    /// <summary>
    /// The <paramref name="model"/>'s weights uploaded to <paramref name="device"/>, gradients and moments zero. Throws
    /// <see cref="NotSupportedException"/> with <see cref="Unsupported"/>'s sentence, or for int8 weights.
    /// </summary>
    public static GpuGpt From(GpuDevice device, Gpt model)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(model);
        if (Unsupported(model.Config) is { } reason) throw new NotSupportedException(reason);
        if (model.IsQuantized)
            throw new NotSupportedException("The GPU GPT trains and runs fp32 weights; this model's weights are int8.");
        return new GpuGpt(device, model);
    }

    /// <summary>Overwrites the device weights with <paramref name="model"/>'s (same configuration).</summary>
    public void CopyFrom(Gpt model) => _p.CopyFrom(Matching(model));

    /// <summary>
    /// Writes the device weights into <paramref name="model"/> (same configuration), e.g. to save a checkpoint.
    /// </summary>
    public void CopyTo(Gpt model) => _p.CopyTo(Matching(model));

    IEnumerable<(string Name, Tensor Parameter)> Matching(Gpt model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Config != Config)
            throw new ArgumentException(
                $"The model's configuration ({model.Config}) differs from the GPU GPT's ({Config}).", nameof(model));
        return model.NamedParameters();
    }

    /// <summary>A copy of parameter <paramref name="name"/>'s values.</summary>
    public float[] Parameter(string name) => _p.Slice(_p.Values, name).ToArray();

    /// <summary>A copy of the gradient of parameter <paramref name="name"/>.</summary>
    public float[] Gradient(string name) => _p.Slice(_p.Gradients, name).ToArray();

    /// <summary>
    /// Copies the AdamW moments of parameter <paramref name="name"/> into <paramref name="m"/> and <paramref name="v"/>.
    /// </summary>
    public void CopyMomentsTo(string name, Span<float> m, Span<float> v)
    {
        _p.Slice(_p.M, name).CopyTo(m);
        _p.Slice(_p.V, name).CopyTo(v);
    }

    /// <summary>Sets the AdamW moments of parameter <paramref name="name"/> (a resumed run's).</summary>
    public void CopyMomentsFrom(string name, ReadOnlySpan<float> m, ReadOnlySpan<float> v)
    {
        _p.Slice(_p.M, name).CopyFrom(m);
        _p.Slice(_p.V, name).CopyFrom(v);
    }

    /// <summary>
    /// Token ids (B, T) → logits (B, T, V), kept on the device (<see cref="Logits"/>, <see cref="CopyLogits"/>).
    /// </summary>
    public void Forward(ReadOnlySpan<int> ids, int batch, int time) => Run(ids, [], batch, time);

    /// <summary>
    /// Token ids (B, T) and next-token targets (B, T) → the mean cross-entropy, as <c>Gpt.Loss(Gpt.Forward(…))</c>;
    /// the activations stay for <see cref="Backward"/>.
    /// </summary>
    public float Forward(ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int batch, int time)
    {
        if (targets.Length != ids.Length)
            throw new ArgumentException($"Expected one target per id, {ids.Length}; got {targets.Length}.", nameof(targets));
        Run(ids, targets, batch, time);
        return _a!.Loss.ToArray()[0];
    }

    void Run(ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int batch, int time)
    {
        if (batch < 1 || time < 1) throw new ArgumentException($"B and T must be positive; got B = {batch}, T = {time}.");
        if (time > Config.ContextLength)
            throw new ArgumentException($"The sequence has {time} tokens but the model's context is {Config.ContextLength}.");
        if (ids.Length != batch * time)
            throw new ArgumentException($"Expected {batch}×{time} = {batch * time} ids, got {ids.Length}.");
        int n = batch * time;
        if (_a is null || _a.Capacity < n)
        {
            _a?.Dispose();
            // Room for B full-context rows at once: decoding grows T by one per token and must not reallocate each time.
            _a = new GpuGptActivations(_device, Config, Math.Max(n, batch * Config.ContextLength));
        }
        _batch = batch;
        _time = time;
        _hasTargets = !targets.IsEmpty;
        _a.Begin(batch, time, ids, targets);
        GptForward(_a);
    }

    /// <summary>The forward pass over the arena's current B×T rows.</summary>
    void GptForward(GpuGptActivations a)
    {
        var d = _device;
        int n = a.Rows, c = Config.Width, v = Config.VocabSize;
        // x = wte[ids] + wpe[t]                                                   (N, C)
        d.Embedding.Forward(a.Residual(0), a.Ids, _w.Wte, v, c);
        d.Add.Rows(a.Residual(0), a.Residual(0), _w.Wpe.Slice(0, a.Time, c), n, c, a.Time);
        for (int l = 0; l < Config.Layers; l++) BlockForward(a, l);
        // logits = ln_f(x)·wteᵀ                                                   (N, V), the head tied to wte
        d.LayerNorm.Forward(a.LnF, a.MeanF, a.RstdF, a.Residual(Config.Layers), _w.LnFW, _w.LnFB, n, c);
        d.Gemm.Linear(a.Logits, a.LnF, _w.Wte, null, n, c, v);
        if (!_hasTargets) return;
        d.CrossEntropy.Forward(a.RowLoss, a.RowLse, a.Logits, a.Targets, n, v);
        d.CrossEntropy.Mean(a.Loss, a.RowLoss, a.Targets);
    }

    /// <summary>x_mid = x + c_proj(attn(ln_1(x))); x_out = x_mid + c_proj(GELU(c_fc(ln_2(x_mid)))).</summary>
    void BlockForward(GpuGptActivations a, int l)
    {
        var d = _device;
        var w = _w.Layers[l];
        int n = a.Rows, c = Config.Width;
        var x = a.Residual(l);
        d.LayerNorm.Forward(a.Ln1(l), a.Mean1(l), a.Rstd1(l), x, w.Ln1W, w.Ln1B, n, c);
        d.Gemm.Linear(a.Qkv(l), a.Ln1(l), w.AttnW, w.AttnB, n, c, 3 * c);            // (N, 3C): [Q K V]
        var (q, k, vv) = a.QkvHeads(a.Qkv(l));
        d.FlashAttention.Forward(a.Problem, q, k, vv, a.Heads(a.Atty(l)), a.Lse(l));   // (N, C), heads merged
        d.Gemm.Linear(a.Branch, a.Atty(l), w.ProjW, w.ProjB, n, c, c);
        d.Add.Residual(a.Mid(l), x, a.Branch);                                        // x + attn(ln_1(x))
        d.LayerNorm.Forward(a.Ln2(l), a.Mean2(l), a.Rstd2(l), a.Mid(l), w.Ln2W, w.Ln2B, n, c);
        d.Gemm.Linear(a.Fch(l), a.Ln2(l), w.FcW, w.FcB, n, c, 4 * c);                 // (N, 4C)
        d.Gelu.Forward(a.FchGelu(l), a.Fch(l), GeluApproximation.Tanh);
        d.Gemm.Linear(a.Branch, a.FchGelu(l), w.FcProjW, w.FcProjB, n, 4 * c, c);
        d.Add.Residual(a.Residual(l + 1), a.Mid(l), a.Branch);                        // x_mid + mlp(ln_2(x_mid))
    }

    /// <summary>
    /// Accumulates ∂(<paramref name="lossScale"/>·loss)/∂θ into the gradients (+=, as the CPU engine's backward), for the
    /// last <see cref="Forward(ReadOnlySpan{int}, ReadOnlySpan{int}, int, int)"/> with targets.
    /// </summary>
    public void Backward(float lossScale = 1f)
    {
        if (_a is null || !_hasTargets)
            throw new InvalidOperationException("Backward needs a forward pass with targets first.");
        var d = _device;
        var a = _a;
        int n = a.Rows, c = Config.Width, v = Config.VocabSize, layers = Config.Layers;
        // dlogits = ∂(scale·mean CE)/∂logits
        a.DLogits.Clear();
        d.CrossEntropy.MeanGradient(a.DRowLoss, a.Targets, lossScale);
        d.CrossEntropy.Backward(a.DLogits, a.DRowLoss, a.Logits, a.RowLse, a.Targets, n, v);
        // logits = ln_f·wteᵀ: dwte += dlogitsᵀ·ln_f, dln_f = dlogits·wte
        d.Gemm.Multiply(Transpose.Yes, Transpose.No, v, c, n, a.DLogits, a.LnF, _g.Wte, 1f, 1f);
        d.Gemm.Multiply(Transpose.No, Transpose.No, n, c, v, a.DLogits, _w.Wte, a.DX, 1f, 0f);
        a.DResidual.Clear();
        d.LayerNorm.Backward(a.DResidual, _g.LnFW, _g.LnFB, a.DX, a.Residual(layers), _w.LnFW, a.MeanF, a.RstdF, n, c);
        for (int l = layers - 1; l >= 0; l--) BlockBackward(a, l);
        // x = wte[ids] + wpe[t]: both tables receive the residual's gradient by row
        d.Embedding.Backward(_g.Wte, a.DResidual, a.Ids, v, c);
        d.Embedding.Backward(_g.Wpe.Slice(0, a.Time * c), a.DResidual, a.Positions, a.Time, c);
    }

    /// <summary>The block's backward pass; on entry DResidual holds ∂L/∂x_out, on exit ∂L/∂x.</summary>
    void BlockBackward(GpuGptActivations a, int l)
    {
        var d = _device;
        var w = _w.Layers[l];
        var g = _g.Layers[l];
        int n = a.Rows, c = Config.Width;
        var dres = a.DResidual;
        // x_out = x_mid + fch_gelu·W_fcprojᵀ + b: dW += dresᵀ·fch_gelu, db += Σ_rows dres, dfch_gelu = dres·W
        d.Gemm.Multiply(Transpose.Yes, Transpose.No, c, 4 * c, n, dres, a.FchGelu(l), g.FcProjW, 1f, 1f);
        if (g.FcProjB is not null) d.Reduce.ColumnSum(g.FcProjB, dres, n, c);
        d.Gemm.Multiply(Transpose.No, Transpose.No, n, 4 * c, c, dres, w.FcProjW, a.DFchGelu, 1f, 0f);
        // fch_gelu = GELU(fch)
        a.DFch.Clear();
        d.Gelu.Backward(a.DFch, a.DFchGelu, a.Fch(l), GeluApproximation.Tanh);
        // fch = ln_2·W_fcᵀ + b
        d.Gemm.Multiply(Transpose.Yes, Transpose.No, 4 * c, c, n, a.DFch, a.Ln2(l), g.FcW, 1f, 1f);
        if (g.FcB is not null) d.Reduce.ColumnSum(g.FcB, a.DFch, n, 4 * c);
        d.Gemm.Multiply(Transpose.No, Transpose.No, n, c, 4 * c, a.DFch, w.FcW, a.DX, 1f, 0f);
        // ln_2 = LayerNorm(x_mid): its gradient joins the residual's, so dres becomes ∂L/∂x_mid
        d.LayerNorm.Backward(dres, g.Ln2W, g.Ln2B, a.DX, a.Mid(l), w.Ln2W, a.Mean2(l), a.Rstd2(l), n, c);
        // x_mid = x + atty·W_projᵀ + b
        d.Gemm.Multiply(Transpose.Yes, Transpose.No, c, c, n, dres, a.Atty(l), g.ProjW, 1f, 1f);
        if (g.ProjB is not null) d.Reduce.ColumnSum(g.ProjB, dres, n, c);
        d.Gemm.Multiply(Transpose.No, Transpose.No, n, c, c, dres, w.ProjW, a.DX, 1f, 0f);
        // atty = attention(q, k, v): the gradients of q, k and v land in place in dqkv
        a.DQkv.Clear();
        var (q, k, vv) = a.QkvHeads(a.Qkv(l));
        var (dq, dk, dv) = a.QkvHeads(a.DQkv);
        d.FlashAttention.Backward(a.Problem, q, k, vv, a.Heads(a.Atty(l)), a.Lse(l), a.Heads(a.DX), dq, dk, dv);
        // qkv = ln_1·W_attnᵀ + b
        d.Gemm.Multiply(Transpose.Yes, Transpose.No, 3 * c, c, n, a.DQkv, a.Ln1(l), g.AttnW, 1f, 1f);
        if (g.AttnB is not null) d.Reduce.ColumnSum(g.AttnB, a.DQkv, n, 3 * c);
        d.Gemm.Multiply(Transpose.No, Transpose.No, n, c, 3 * c, a.DQkv, w.AttnW, a.DX, 1f, 0f);
        // ln_1 = LayerNorm(x): dres becomes ∂L/∂x
        d.LayerNorm.Backward(dres, g.Ln1W, g.Ln1B, a.DX, a.Residual(l), w.Ln1W, a.Mean1(l), a.Rstd1(l), n, c);
    }

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGrad() => _p.ZeroGrad();

    /// <inheritdoc cref="GpuParameters.GradNorm"/>
    public float GradNorm() => _p.GradNorm();

    /// <summary>
    /// One AdamW step (step is 1-based) over every parameter, as the CPU's <c>Training.AdamW</c> with decay on the
    /// parameters of rank ≥ 2 (<see cref="Gpt.ParameterGroups"/>); gradients are read as gradScale·grad (the clip
    /// coefficient). Two launches: the decayed range of the flat buffers, then the rest.
    /// </summary>
    public void AdamWStep(float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale = 1f) =>
        _p.AdamWStep(lr, beta1, beta2, eps, weightDecay, step, gradScale);

    /// <summary>The last forward pass's logits as a host tensor (B, T, V).</summary>
    public Tensor Logits()
    {
        if (_a is null) throw new InvalidOperationException("Logits needs a forward pass first.");
        return _a.Logits.ToTensor().Reshape(_batch, _time, Config.VocabSize);
    }

    /// <summary>
    /// Copies the logits (V floats) of row b, position t of the last forward pass into <paramref name="destination"/>.
    /// </summary>
    public void CopyLogits(int b, int t, Span<float> destination)
    {
        if (_a is null) throw new InvalidOperationException("CopyLogits needs a forward pass first.");
        if ((uint)b >= (uint)_batch || (uint)t >= (uint)_time)
            throw new ArgumentOutOfRangeException(nameof(b),
                $"Row {b}, position {t} is outside the last forward pass's ({_batch}, {_time}).");
        int v = Config.VocabSize;
        _a.Logits.Slice(((long)b * _time + t) * v, v).CopyTo(destination);
    }

    public void Dispose()
    {
        _a?.Dispose();
        _p.Dispose();
    }

    /// <summary>The named tensors of one flat buffer (weights or their gradients), as slices.</summary>
    sealed class Weights
    {
        public Weights(GpuGpt model, GpuTensor flat)
        {
            GpuTensor T(string name) => model._p.Slice(flat, name);
            GpuTensor? Maybe(string name) => model._p.Contains(name) ? T(name) : null;
            Wte = T("wte.weight");
            Wpe = T("wpe.weight");
            LnFW = T("ln_f.weight");
            LnFB = Maybe("ln_f.bias");
            Layers = [.. Enumerable.Range(0, model.Config.Layers).Select(l => new Layer(
                T($"h.{l}.ln_1.weight"), Maybe($"h.{l}.ln_1.bias"),
                T($"h.{l}.attn.c_attn.weight"), Maybe($"h.{l}.attn.c_attn.bias"),
                T($"h.{l}.attn.c_proj.weight"), Maybe($"h.{l}.attn.c_proj.bias"),
                T($"h.{l}.ln_2.weight"), Maybe($"h.{l}.ln_2.bias"),
                T($"h.{l}.mlp.c_fc.weight"), Maybe($"h.{l}.mlp.c_fc.bias"),
                T($"h.{l}.mlp.c_proj.weight"), Maybe($"h.{l}.mlp.c_proj.bias")))];
        }

        public GpuTensor Wte { get; }
        public GpuTensor Wpe { get; }
        public GpuTensor LnFW { get; }
        public GpuTensor? LnFB { get; }
        public Layer[] Layers { get; }
    }

    /// <summary>One block's tensors (weights stored (out, in) as torch.nn.Linear).</summary>
    sealed record Layer(GpuTensor Ln1W, GpuTensor? Ln1B, GpuTensor AttnW, GpuTensor? AttnB, GpuTensor ProjW,
        GpuTensor? ProjB, GpuTensor Ln2W, GpuTensor? Ln2B, GpuTensor FcW, GpuTensor? FcB, GpuTensor FcProjW,
        GpuTensor? FcProjB);
}
