using AttentionSharp.Kernels;
using AttentionSharp.Nn;
using Embedding = AttentionSharp.Nn.Embedding;

namespace AttentionSharp.Gpu;

/// <summary>
/// A recurrent sequence classifier on a <see cref="GpuDevice"/>: token ids (B, T) → embeddings → L stacked recurrent
/// layers (tanh RNN, LSTM or GRU, <see cref="GpuRecurrent"/>) from zero states → a linear head on the last step's
/// hidden state → class logits (B, K) → mean cross-entropy. It is built from the CPU modules that compute the same
/// (<see cref="Embedding"/>, <see cref="Rnn"/>/<see cref="Lstm"/>/<see cref="Gru"/>, <see cref="Linear"/>), with their
/// weights in <see cref="GpuParameters"/> under the names embedding.*, rnn.*/lstm.*/gru.* and head.*; AdamW decays the
/// parameters of rank ≥ 2.
/// <para>
/// Inside, the sequence is time-major (T, B, ·), as the recurrent kernels read it: the ids are reordered on the host
/// before upload, so the embedding lookup writes the layers' input directly.
/// </para>
/// </summary>
public sealed class GpuRecurrentClassifier : IDisposable, IGpuTrainable
{
    readonly GpuDevice _device;
    readonly GpuParameters _p;
    readonly string _prefix;
    readonly int _vocab, _embedding, _hidden, _classes, _layers;
    readonly bool _bias, _headBias;
    Buffers? _a;

    GpuRecurrentClassifier(GpuDevice device, Embedding embedding, RecurrentBase recurrent, Linear head, RecurrentCell cell)
    {
        _device = device;
        Cell = cell;
        _prefix = ModuleName(cell);
        (_vocab, _embedding, _hidden, _classes) = (embedding.Count, embedding.Dim, recurrent.Config.HiddenSize, head.OutFeatures);
        _layers = recurrent.Config.Layers;
        _bias = recurrent.Config.Bias;
        _headBias = head.Bias is not null;
        var named = NamedParameters(embedding, recurrent, head)
            .Select(p => (p.Name, p.Parameter, p.Parameter.Rank >= 2)).ToList();
        _p = new GpuParameters(device, named, "GPU recurrent classifier");
    }

    /// <summary>The recurrent module's name among the parameter names: rnn, lstm or gru.</summary>
    public static string ModuleName(RecurrentCell cell) => cell switch
    {
        RecurrentCell.Lstm => "lstm",
        RecurrentCell.Gru => "gru",
        _ => "rnn",
    };

    /// <summary>The modules' parameters under the GPU classifier's names, in its order.</summary>
    public static IEnumerable<(string Name, Tensor Parameter)> NamedParameters(Embedding embedding, RecurrentBase recurrent,
        Linear head)
    {
        ArgumentNullException.ThrowIfNull(embedding);
        ArgumentNullException.ThrowIfNull(recurrent);
        ArgumentNullException.ThrowIfNull(head);
        string module = ModuleName(CellOf(recurrent));
        return embedding.NamedParameters().Select(p => ("embedding." + p.Name, p.Parameter))
            .Concat(recurrent.NamedParameters().Select(p => ($"{module}.{p.Name}", p.Parameter)))
            .Concat(head.NamedParameters().Select(p => ("head." + p.Name, p.Parameter)));
    }

    static RecurrentCell CellOf(RecurrentBase recurrent) => recurrent switch
    {
        Lstm => RecurrentCell.Lstm,
        Gru => RecurrentCell.Gru,
        _ => RecurrentCell.Tanh,
    };

    /// <summary>The cell of every layer.</summary>
    public RecurrentCell Cell { get; }

    public GpuDevice Device => _device;

    /// <summary>Parameters, in all.</summary>
    public long ParameterCount => _p.Count;

    /// <summary>Parameter names: embedding.weight, then the recurrent module's (e.g. lstm.weight_ih_l0), then head.*.</summary>
    public IReadOnlyList<string> ParameterNames => _p.Names;

    /// <summary>
    /// Null when the modules fit together and the GPU classifier supports them, else one sentence naming the setting:
    /// it runs one direction and no dropout between layers, and needs the embedding width as the first layer's input and
    /// the hidden size as the head's.
    /// </summary>
    public static string? Unsupported(Embedding embedding, RecurrentBase recurrent, Linear head)
    {
        ArgumentNullException.ThrowIfNull(embedding);
        ArgumentNullException.ThrowIfNull(recurrent);
        ArgumentNullException.ThrowIfNull(head);
        var c = recurrent.Config;
        if (c.Bidirectional) return "The GPU recurrent classifier runs one direction; this recurrent module is bidirectional.";
        if (c.Layers > 1 && c.Dropout != 0)
            return $"The GPU recurrent classifier has no dropout between layers; this module's dropout is {c.Dropout}.";
        if (c.InputSize != embedding.Dim)
            return $"The recurrent module reads {c.InputSize} features but the embedding has {embedding.Dim}.";
        if (head.InFeatures != c.HiddenSize)
            return $"The head reads {head.InFeatures} features but the recurrent module's hidden size is {c.HiddenSize}.";
        return null;
    }

    /// <summary>
    /// Uploads the modules' weights (gradients and moments zero). Throws <see cref="NotSupportedException"/> with
    /// <see cref="Unsupported"/>'s sentence.
    /// </summary>
    public static GpuRecurrentClassifier From(GpuDevice device, Embedding embedding, RecurrentBase recurrent, Linear head)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (Unsupported(embedding, recurrent, head) is { } reason) throw new NotSupportedException(reason);
        return new GpuRecurrentClassifier(device, embedding, recurrent, head, CellOf(recurrent));
    }

    /// <summary>A copy of parameter <paramref name="name"/>'s values.</summary>
    public float[] Parameter(string name) => _p.Slice(_p.Values, name).ToArray();

    /// <summary>A copy of the gradient of parameter <paramref name="name"/>.</summary>
    public float[] Gradient(string name) => _p.Slice(_p.Gradients, name).ToArray();

    /// <summary>
    /// Token ids (B, T), batch-major, and one class label per row → the mean cross-entropy of the logits read at the last
    /// step (one float read back); the activations stay for <see cref="Backward"/>.
    /// </summary>
    public float Forward(ReadOnlySpan<int> ids, ReadOnlySpan<int> labels, int batch, int time)
    {
        if (batch < 1 || time < 1) throw new ArgumentException($"B and T must be positive; got B = {batch}, T = {time}.");
        if (ids.Length != batch * time)
            throw new ArgumentException($"Expected {batch}×{time} = {batch * time} ids, got {ids.Length}.", nameof(ids));
        if (labels.Length != batch)
            throw new ArgumentException($"Expected one label per row, {batch}; got {labels.Length}.", nameof(labels));
        if (_a is null || _a.Batch != batch || _a.Time != time)
        {
            _a?.Dispose();
            _a = new Buffers(this, batch, time);
        }
        var a = _a;
        // time-major ids: row t·B + b of the layers' input is token (b, t)
        var reordered = new int[ids.Length];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < time; t++) reordered[t * batch + b] = ids[b * time + t];
        a.Ids.CopyFrom(reordered);
        a.Labels.CopyFrom(labels);
        var d = _device;
        d.Embedding.Forward(a.X, a.Ids, W("embedding.weight"), _vocab, _embedding);
        for (int l = 0; l < _layers; l++)
            d.Recurrent.Forward(a.Layers[l], LayerInput(a, l), W($"{_prefix}.weight_ih_l{l}"), W($"{_prefix}.weight_hh_l{l}"),
                _bias ? W($"{_prefix}.bias_ih_l{l}") : null, _bias ? W($"{_prefix}.bias_hh_l{l}") : null);
        // logits = h_{T−1}·W_headᵀ + b_head                                          (B, K)
        d.Gemm.Linear(a.Logits, Last(a), W("head.weight"), _headBias ? W("head.bias") : null, batch, _hidden, _classes);
        d.CrossEntropy.Forward(a.RowLoss, a.RowLse, a.Logits, a.Labels, batch, _classes);
        d.CrossEntropy.Mean(a.Loss, a.RowLoss, a.Labels);
        return a.Loss.ToArray()[0];
    }

    /// <summary>
    /// Accumulates ∂(<paramref name="lossScale"/>·loss)/∂θ into the gradients (+=, as the CPU's backward), for the last
    /// <see cref="Forward"/>.
    /// </summary>
    public void Backward(float lossScale = 1f)
    {
        var a = _a ?? throw new InvalidOperationException("Backward needs a forward pass first.");
        var d = _device;
        int batch = a.Batch;
        a.DLogits.Clear();
        d.CrossEntropy.MeanGradient(a.DRowLoss, a.Labels, lossScale);
        d.CrossEntropy.Backward(a.DLogits, a.DRowLoss, a.Logits, a.RowLse, a.Labels, batch, _classes);
        // logits = last·W_headᵀ + b: dW += dlogitsᵀ·last, db += Σ_rows dlogits,
        // ∂L/∂y_{T−1} = dlogits·W (other steps 0)
        d.Gemm.Multiply(Transpose.Yes, Transpose.No, _classes, _hidden, batch, a.DLogits, Last(a), G("head.weight"), 1f, 1f);
        if (_headBias) d.Reduce.ColumnSum(G("head.bias"), a.DLogits, batch, _classes);
        var top = a.Layers[_layers - 1];
        top.DY.Clear();
        d.Gemm.Multiply(Transpose.No, Transpose.No, batch, _hidden, _classes, a.DLogits, W("head.weight"),
            top.DY.Slice((long)(a.Time - 1) * batch * _hidden, batch * _hidden), 1f, 0f);
        for (int l = _layers - 1; l >= 0; l--)
        {
            // layer l's input gradient is the output gradient of layer l − 1, or the embeddings'
            var dx = l > 0 ? a.Layers[l - 1].DY : a.DX;
            dx.Clear();
            d.Recurrent.Backward(a.Layers[l], LayerInput(a, l), W($"{_prefix}.weight_ih_l{l}"),
                W($"{_prefix}.weight_hh_l{l}"), dx, G($"{_prefix}.weight_ih_l{l}"), G($"{_prefix}.weight_hh_l{l}"),
                _bias ? G($"{_prefix}.bias_ih_l{l}") : null, _bias ? G($"{_prefix}.bias_hh_l{l}") : null);
        }
        d.Embedding.Backward(G("embedding.weight"), a.DX, a.Ids, _vocab, _embedding);
    }

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGrad() => _p.ZeroGrad();

    /// <inheritdoc cref="GpuParameters.GradNorm"/>
    public float GradNorm() => _p.GradNorm();

    /// <summary>
    /// One AdamW step (step is 1-based) over every parameter, as the CPU's <c>Training.AdamW</c> with decay on the
    /// parameters of rank ≥ 2; gradients are read as gradScale·grad (the clip coefficient).
    /// </summary>
    public void AdamWStep(float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale = 1f) =>
        _p.AdamWStep(lr, beta1, beta2, eps, weightDecay, step, gradScale);

    /// <summary>The last forward pass's logits as a host tensor (B, K).</summary>
    public Tensor Logits() => (_a ?? throw new InvalidOperationException("Logits needs a forward pass first.")).Logits.ToTensor();

    GpuTensor W(string name) => _p.Slice(_p.Values, name);

    GpuTensor G(string name) => _p.Slice(_p.Gradients, name);

    static GpuTensor LayerInput(Buffers a, int layer) => layer == 0 ? a.X : a.Layers[layer - 1].Y;

    /// <summary>The top layer's hidden states at t = T − 1, (B, H).</summary>
    GpuTensor Last(Buffers a) => a.Layers[_layers - 1].Y.Slice((long)(a.Time - 1) * a.Batch * _hidden, a.Batch, _hidden);

    public void Dispose()
    {
        _a?.Dispose();
        _p.Dispose();
    }

    /// <summary>The activations of one (B, T): inputs, every layer's buffers, the head's and the loss's.</summary>
    sealed class Buffers : IDisposable
    {
        public Buffers(GpuRecurrentClassifier m, int batch, int time)
        {
            var d = m._device;
            (Batch, Time) = (batch, time);
            Ids = new GpuIntBuffer(d, new int[batch * time]);
            Labels = new GpuIntBuffer(d, new int[batch]);
            X = d.Zeros(time, batch, m._embedding);
            DX = d.Zeros(time, batch, m._embedding);
            Layers = [.. Enumerable.Range(0, m._layers).Select(l =>
                new GpuRecurrentActivations(d, m.Cell, time, batch, l == 0 ? m._embedding : m._hidden, m._hidden))];
            Logits = d.Zeros(batch, m._classes);
            DLogits = d.Zeros(batch, m._classes);
            RowLoss = d.Zeros(batch);
            RowLse = d.Zeros(batch);
            DRowLoss = d.Zeros(batch);
            Loss = d.Zeros(1);
        }

        public int Batch { get; }
        public int Time { get; }
        public GpuIntBuffer Ids { get; }
        public GpuIntBuffer Labels { get; }
        public GpuTensor X { get; }
        public GpuTensor DX { get; }
        public GpuRecurrentActivations[] Layers { get; }
        public GpuTensor Logits { get; }
        public GpuTensor DLogits { get; }
        public GpuTensor RowLoss { get; }
        public GpuTensor RowLse { get; }
        public GpuTensor DRowLoss { get; }
        public GpuTensor Loss { get; }

        public void Dispose()
        {
            Ids.Dispose();
            Labels.Dispose();
            foreach (var t in new[] { X, DX, Logits, DLogits, RowLoss, RowLse, DRowLoss, Loss }) t.Dispose();
            foreach (var layer in Layers) layer.Dispose();
        }
    }
}
