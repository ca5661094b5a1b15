// Sources: PyTorch torch.nn.RNNBase (parameter names, layout, initialisation, stacking, dropout between layers, h_n order).
using AttentionSharp.Kernels;

namespace AttentionSharp.Nn;

/// <summary>
/// What <see cref="Rnn"/>, <see cref="Lstm"/> and <see cref="Gru"/> share: L layers of D directions, each one fused
/// <see cref="Tensor.Recurrent"/> op. Parameters are named and laid out as PyTorch's: weight_ih_l{k} (G·H, I or D·H),
/// weight_hh_l{k} (G·H, H), bias_ih_l{k}, bias_hh_l{k} (G·H), with the suffix _reverse for the backward direction, all
/// initialised U(−1/√H, 1/√H) in that order.
/// </summary>
public abstract class RecurrentBase : Module
{
    readonly RecurrentCell _cell;
    readonly Generator _dropoutRng;
    readonly Tensor[] _weightIh, _weightHh;
    readonly Tensor?[] _biasIh, _biasHh;

    private protected RecurrentBase(RecurrentCell cell, RecurrentConfig config, Generator rng, Generator? dropoutRng)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(rng);
        Config = config.Validate();
        _cell = cell;
        int g = Recurrent.GateCount(cell), h = config.HiddenSize, d = config.Directions, count = config.Layers * d;
        (_weightIh, _weightHh, _biasIh, _biasHh) = (new Tensor[count], new Tensor[count], new Tensor?[count], new Tensor?[count]);
        float bound = 1f / MathF.Sqrt(h);
        for (int layer = 0; layer < config.Layers; layer++)
            for (int dir = 0; dir < d; dir++)
            {
                int k = layer * d + dir, input = layer == 0 ? config.InputSize : d * h;
                string suffix = $"_l{layer}{(dir == 1 ? "_reverse" : "")}";
                _weightIh[k] = RegisterParameter("weight_ih" + suffix, Tensor.Uniform(rng, -bound, bound, g * h, input));
                _weightHh[k] = RegisterParameter("weight_hh" + suffix, Tensor.Uniform(rng, -bound, bound, g * h, h));
                if (!config.Bias) continue;
                _biasIh[k] = RegisterParameter("bias_ih" + suffix, Tensor.Uniform(rng, -bound, bound, g * h));
                _biasHh[k] = RegisterParameter("bias_hh" + suffix, Tensor.Uniform(rng, -bound, bound, g * h));
            }
        _dropoutRng = RegisterGenerator("dropout", dropoutRng ?? new Generator(rng.NextUInt64()));
    }

    public RecurrentConfig Config { get; }

    /// <summary>The cell names <see cref="Create"/> knows: rnn (Elman, tanh), lstm, gru.</summary>
    public static readonly IReadOnlyList<string> CellNames = ["rnn", "lstm", "gru"];

    /// <summary>An <see cref="Rnn"/>, <see cref="Lstm"/> or <see cref="Gru"/> by name (see <see cref="CellNames"/>).</summary>
    public static RecurrentBase Create(string cell, RecurrentConfig config, Generator rng, Generator? dropoutRng = null) => cell switch
    {
        "rnn" => new Rnn(config, rng, dropoutRng),
        "lstm" => new Lstm(config, rng, dropoutRng),
        "gru" => new Gru(config, rng, dropoutRng),
        _ => throw new ArgumentException($"The recurrent cell '{cell}' is unknown; expected one of {string.Join(", ", CellNames)}.", nameof(cell)),
    };

    /// <summary>x (B, T, I) (or (T, B, I)) → the last layer's outputs (B, T, D·H) (or (T, B, D·H)), from zero states.</summary>
    public Tensor ForwardSequence(Tensor x) => Run(x, null, null).Output;

    /// <summary>
    /// x (B, T, I) with <see cref="RecurrentConfig.BatchFirst"/>, else (T, B, I); h0 and c0 (L·D, B, H) or null for zeros.
    /// Returns the last layer's outputs (B, T, D·H) (or (T, B, D·H)) and the final states (L·D, B, H), indexed
    /// layer·D + direction as PyTorch's h_n.
    /// </summary>
    private protected (Tensor Output, Tensor HN, Tensor? CN) Run(Tensor x, Tensor? h0, Tensor? c0)
    {
        var cfg = Config;
        if (x.Rank != 3 || x.Size(2) != cfg.InputSize)
            throw new ArgumentException($"{GetType().Name}: x must be ({(cfg.BatchFirst ? "B, T" : "T, B")}, {cfg.InputSize}); got {ShapeMath.Format(x.Shape)}.", nameof(x));
        var seq = cfg.BatchFirst ? x.Transpose(0, 1).Contiguous() : x; // (T, B, I)
        int batch = seq.Size(1), d = cfg.Directions;
        CheckInitialState(h0, batch, nameof(h0));
        CheckInitialState(c0, batch, nameof(c0));
        var hn = new List<Tensor>(); var cn = new List<Tensor>();
        for (int layer = 0; layer < cfg.Layers; layer++)
        {
            var outputs = new Tensor[d];
            for (int dir = 0; dir < d; dir++)
            {
                int k = layer * d + dir;
                var (o, h, c) = Tensor.Recurrent(_cell, seq, h0?.Select(0, k), c0?.Select(0, k), _weightIh[k], _weightHh[k],
                    _biasIh[k], _biasHh[k], reverse: dir == 1);
                outputs[dir] = o;                                   // (T, B, H)
                hn.Add(h.Unsqueeze(0));                             // (1, B, H)
                if (c is not null) cn.Add(c.Unsqueeze(0));
            }
            seq = d == 1 ? outputs[0] : Tensor.Cat(outputs, 2);     // (T, B, D·H)
            if (layer < cfg.Layers - 1) seq = seq.Dropout(cfg.Dropout, Training, _dropoutRng);
        }
        var output = cfg.BatchFirst ? seq.Transpose(0, 1).Contiguous() : seq;
        return (output, Tensor.Cat(hn, 0), cn.Count == 0 ? null : Tensor.Cat(cn, 0));
    }

    void CheckInitialState(Tensor? state, int batch, string name)
    {
        int rows = Config.Layers * Config.Directions;
        if (state is not null && (state.Rank != 3 || state.Size(0) != rows || state.Size(1) != batch || state.Size(2) != Config.HiddenSize))
            throw new ArgumentException($"{GetType().Name}: {name} must be (L·D, B, H) = ({rows}, {batch}, {Config.HiddenSize}); got {ShapeMath.Format(state.Shape)}.", name);
    }
}

/// <summary>
/// Elman RNN with tanh, as torch.nn.RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh).
/// </summary>
public sealed class Rnn(RecurrentConfig config, Generator rng, Generator? dropoutRng = null)
    : RecurrentBase(RecurrentCell.Tanh, config, rng, dropoutRng)
{
    /// <summary>x (B, T, I) → output (B, T, D·H) and h_n (L·D, B, H); h0 (L·D, B, H) or null for zeros.</summary>
    public (Tensor Output, Tensor HN) Forward(Tensor x, Tensor? h0 = null)
    {
        var (output, hn, _) = Run(x, h0, null);
        return (output, hn);
    }
}

/// <summary>
/// LSTM, as torch.nn.LSTM: gates i, f, g, o = σ, σ, tanh, σ of (W_i· x_t + b_i· + W_h· h_{t−1} + b_h·),
/// c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh(c_t).
/// </summary>
public sealed class Lstm(RecurrentConfig config, Generator rng, Generator? dropoutRng = null)
    : RecurrentBase(RecurrentCell.Lstm, config, rng, dropoutRng)
{
    /// <summary>x (B, T, I) → output (B, T, D·H), h_n and c_n (L·D, B, H); h0, c0 (L·D, B, H) or null for zeros.</summary>
    public (Tensor Output, Tensor HN, Tensor CN) Forward(Tensor x, Tensor? h0 = null, Tensor? c0 = null)
    {
        var (output, hn, cn) = Run(x, h0, c0);
        return (output, hn, cn!);
    }
}

/// <summary>
/// GRU, as torch.nn.GRU: r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
/// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.
/// </summary>
public sealed class Gru(RecurrentConfig config, Generator rng, Generator? dropoutRng = null)
    : RecurrentBase(RecurrentCell.Gru, config, rng, dropoutRng)
{
    /// <summary>x (B, T, I) → output (B, T, D·H) and h_n (L·D, B, H); h0 (L·D, B, H) or null for zeros.</summary>
    public (Tensor Output, Tensor HN) Forward(Tensor x, Tensor? h0 = null)
    {
        var (output, hn, _) = Run(x, h0, null);
        return (output, hn);
    }
}
