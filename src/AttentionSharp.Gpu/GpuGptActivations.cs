using AttentionSharp.Models;

namespace AttentionSharp.Gpu;

/// <summary>
/// The activation arena of a <see cref="GpuGpt"/> (llm.c's ActivationTensors): what the forward pass saves for the
/// backward pass, per layer, and the backward pass's scratch, allocated once for a capacity of N rows and handed out as
/// slices for the current B×T (N = B·T ≤ capacity). Letters as in <see cref="GpuGpt"/>.
/// </summary>
internal sealed class GpuGptActivations : IDisposable
{
    readonly GptConfig _config;
    readonly List<IDisposable> _owned = [];
    // Per layer, stacked: capacity·width floats a layer.
    readonly GpuTensor _residual, _mid, _ln1, _ln2, _qkv, _atty, _fch, _fchGelu, _mean1, _rstd1, _mean2, _rstd2, _lse;
    readonly GpuTensor _branch, _lnF, _meanF, _rstdF, _logits, _dlogits, _rowLoss, _rowLse, _dRowLoss;
    readonly GpuTensor _dResidual, _dx, _dQkv, _dFch, _dFchGelu;
    readonly GpuIntBuffer _ids, _targets, _positions;
    int[] _positionValues = [];

    public GpuGptActivations(GpuDevice device, GptConfig config, int capacity)
    {
        _config = config;
        Capacity = capacity;
        int c = config.Width, layers = config.Layers, v = config.VocabSize;
        GpuTensor Z(long count)
        {
            if (count > int.MaxValue)
                throw new NotSupportedException(
                    $"The GPU GPT's activations for {capacity} rows need a buffer of {count} floats; " +
                    $"a GPU tensor holds at most {int.MaxValue}: use fewer rows (B·T).");
            var t = device.Zeros((int)count);
            _owned.Add(t);
            return t;
        }
        long n = capacity;
        _residual = Z((layers + 1) * n * c);
        _mid = Z(layers * n * c);
        _ln1 = Z(layers * n * c);
        _ln2 = Z(layers * n * c);
        _qkv = Z(layers * n * 3 * c);
        _atty = Z(layers * n * c);
        _fch = Z(layers * n * 4 * c);
        _fchGelu = Z(layers * n * 4 * c);
        _mean1 = Z(layers * n);
        _rstd1 = Z(layers * n);
        _mean2 = Z(layers * n);
        _rstd2 = Z(layers * n);
        _lse = Z(layers * n * config.Heads);
        _branch = Z(n * c);
        _lnF = Z(n * c);
        _meanF = Z(n);
        _rstdF = Z(n);
        _logits = Z(n * v);
        _dlogits = Z(n * v);
        _rowLoss = Z(n);
        _rowLse = Z(n);
        _dRowLoss = Z(n);
        Loss = Z(1);
        _dResidual = Z(n * c);
        _dx = Z(n * c);
        _dQkv = Z(n * 3 * c);
        _dFch = Z(n * 4 * c);
        _dFchGelu = Z(n * 4 * c);
        _ids = device.Upload(new int[capacity]);
        _targets = device.Upload(new int[capacity]);
        _positions = device.Upload(new int[capacity]);
        _owned.AddRange([_ids, _targets, _positions]);
        Ids = _ids; Targets = _targets; Positions = _positions;
        Branch = _branch; LnF = _lnF; MeanF = _meanF; RstdF = _rstdF; Logits = _logits; DLogits = _dlogits;
        RowLoss = _rowLoss; RowLse = _rowLse; DRowLoss = _dRowLoss; DResidual = _dResidual; DX = _dx; DQkv = _dQkv;
        DFch = _dFch; DFchGelu = _dFchGelu;
    }

    /// <summary>The most rows (B·T) the arena holds.</summary>
    public int Capacity { get; }

    public int Batch { get; private set; }
    public int Time { get; private set; }

    /// <summary>N = B·T, the rows of the current pass.</summary>
    public int Rows => Batch * Time;

    /// <summary>The attention call of every layer: causal self-attention over (B, NH, T, HS).</summary>
    public GpuAttentionProblem Problem { get; private set; }

    public GpuIntBuffer Ids { get; private set; }
    public GpuIntBuffer Targets { get; private set; }

    /// <summary>t for every row (b, t): the ids of the position table.</summary>
    public GpuIntBuffer Positions { get; private set; }

    public GpuTensor Branch { get; private set; }
    public GpuTensor LnF { get; private set; }
    public GpuTensor MeanF { get; private set; }
    public GpuTensor RstdF { get; private set; }
    public GpuTensor Logits { get; private set; }
    public GpuTensor DLogits { get; private set; }
    public GpuTensor RowLoss { get; private set; }
    public GpuTensor RowLse { get; private set; }
    public GpuTensor DRowLoss { get; private set; }
    public GpuTensor Loss { get; }
    public GpuTensor DResidual { get; private set; }

    /// <summary>Scratch for the gradient of a branch's input (dln_f, dln_2, datty, dln_1 in turn), (N, C).</summary>
    public GpuTensor DX { get; private set; }
    public GpuTensor DQkv { get; private set; }
    public GpuTensor DFch { get; private set; }
    public GpuTensor DFchGelu { get; private set; }

    /// <summary>Sets the current B×T and uploads the ids, targets (may be empty) and positions.</summary>
    public void Begin(int batch, int time, ReadOnlySpan<int> ids, ReadOnlySpan<int> targets)
    {
        int n = batch * time, c = _config.Width, v = _config.VocabSize;
        if (n > Capacity) throw new ArgumentException($"{n} rows exceed the arena's {Capacity}.");
        if (batch != Batch || time != Time)
        {
            Batch = batch;
            Time = time;
            Problem = new GpuAttentionProblem(batch, _config.Heads, time, time, c / _config.Heads) { Causal = true };
            Ids = _ids.Slice(0, n);
            Targets = _targets.Slice(0, n);
            Positions = _positions.Slice(0, n);
            _positionValues = new int[n];
            for (int i = 0; i < n; i++) _positionValues[i] = i % time;
            Positions.CopyFrom(_positionValues);
            Branch = _branch.Slice(0, n * c);
            LnF = _lnF.Slice(0, n * c);
            MeanF = _meanF.Slice(0, n);
            RstdF = _rstdF.Slice(0, n);
            Logits = _logits.Slice(0, n * v);
            DLogits = _dlogits.Slice(0, n * v);
            RowLoss = _rowLoss.Slice(0, n);
            RowLse = _rowLse.Slice(0, n);
            DRowLoss = _dRowLoss.Slice(0, n);
            DResidual = _dResidual.Slice(0, n * c);
            DX = _dx.Slice(0, n * c);
            DQkv = _dQkv.Slice(0, n * 3 * c);
            DFch = _dFch.Slice(0, n * 4 * c);
            DFchGelu = _dFchGelu.Slice(0, n * 4 * c);
        }
        Ids.CopyFrom(ids);
        if (!targets.IsEmpty) Targets.CopyFrom(targets);
    }

    /// <summary>Layer l's slice of a per-layer stack whose layers hold <paramref name="width"/> floats per row.</summary>
    GpuTensor Layer(GpuTensor stack, int l, int width) => stack.Slice((long)l * Capacity * width, Rows * width);

    /// <summary>x_l, the residual stream entering block l; l = L is the last block's output.</summary>
    public GpuTensor Residual(int l) => Layer(_residual, l, _config.Width);

    /// <summary>x + attn(ln_1(x)) inside block l.</summary>
    public GpuTensor Mid(int l) => Layer(_mid, l, _config.Width);
    public GpuTensor Ln1(int l) => Layer(_ln1, l, _config.Width);
    public GpuTensor Ln2(int l) => Layer(_ln2, l, _config.Width);
    public GpuTensor Qkv(int l) => Layer(_qkv, l, 3 * _config.Width);
    public GpuTensor Atty(int l) => Layer(_atty, l, _config.Width);
    public GpuTensor Fch(int l) => Layer(_fch, l, 4 * _config.Width);
    public GpuTensor FchGelu(int l) => Layer(_fchGelu, l, 4 * _config.Width);
    public GpuTensor Mean1(int l) => Layer(_mean1, l, 1);
    public GpuTensor Rstd1(int l) => Layer(_rstd1, l, 1);
    public GpuTensor Mean2(int l) => Layer(_mean2, l, 1);
    public GpuTensor Rstd2(int l) => Layer(_rstd2, l, 1);
    public GpuTensor Lse(int l) => Layer(_lse, l, _config.Heads);

    /// <summary>The heads of a (B, T, C) tensor, (B, NH, T, HS) read in place.</summary>
    public GpuHeads Heads(GpuTensor btc) => GpuHeads.Merged(btc, _config.Heads, Time, _config.Width / _config.Heads);

    /// <summary>Q, K and V of a fused (B, T, 3C) projection, read in place: columns [0, C), [C, 2C), [2C, 3C).</summary>
    public (GpuHeads Q, GpuHeads K, GpuHeads V) QkvHeads(GpuTensor qkv) =>
        GpuHeads.Packed(qkv, _config.Heads, Time, _config.Width / _config.Heads);

    public void Dispose()
    {
        foreach (var o in _owned) o.Dispose();
    }
}
