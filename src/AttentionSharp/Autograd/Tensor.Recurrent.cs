using AttentionSharp.Kernels;

namespace AttentionSharp;

public sealed unsafe partial class Tensor
{
    /// <summary>
    /// One direction of one recurrent layer over a whole time-major sequence (PyTorch's gate order and formulas, see
    /// <see cref="RecurrentCell"/>): x (T, B, I), h0 and c0 (B, H) or null for zeros, weightIh (G·H, I), weightHh (G·H, H),
    /// biases (G·H) or null. Returns the hidden states Output (T, B, H) in time order, the final hidden state HN (B, H) —
    /// h at t = T − 1, or at t = 0 with <paramref name="reverse"/> — and for the LSTM the final cell state CN (B, H).
    /// </summary>
    /// <remarks>
    /// One op on the tape whatever T is: the fused kernel of <see cref="Kernels.Recurrent"/> runs the sequence and
    /// backpropagates through time in one call. Its three results are views of one recorded tensor (T + 1 rows for the
    /// LSTM, whose last row holds c), so gradients reaching any of them meet in the same backward rule.
    /// </remarks>
    public static (Tensor Output, Tensor HN, Tensor? CN) Recurrent(RecurrentCell cell, Tensor x, Tensor? h0, Tensor? c0,
        Tensor weightIh, Tensor weightHh, Tensor? biasIh, Tensor? biasHh, bool reverse = false)
    {
        int g = Kernels.Recurrent.GateCount(cell);
        if (x.Rank != 3) throw new ArgumentException($"Recurrent: x must be (T, B, I); got {ShapeMath.Format(x.Shape)}.", nameof(x));
        int steps = x._shape[0], batch = x._shape[1], inputSize = x._shape[2];
        if (weightHh.Rank != 2 || weightHh._shape[0] % g != 0 || weightHh._shape[1] * g != weightHh._shape[0])
            throw new ArgumentException($"Recurrent: weightHh must be ({g}·H, H) for {cell}; got {ShapeMath.Format(weightHh.Shape)}.", nameof(weightHh));
        int hidden = weightHh._shape[1], gh = g * hidden;
        if (weightIh.Rank != 2 || weightIh._shape[0] != gh || weightIh._shape[1] != inputSize)
            throw new ArgumentException($"Recurrent: weightIh must be ({gh}, {inputSize}) for x {ShapeMath.Format(x.Shape)} and H = {hidden}; got {ShapeMath.Format(weightIh.Shape)}.", nameof(weightIh));
        CheckVector(biasIh, gh, "Recurrent biasIh");
        CheckVector(biasHh, gh, "Recurrent biasHh");
        CheckState(h0, batch, hidden, "h0");
        if (c0 is not null && cell != RecurrentCell.Lstm) throw new ArgumentException($"Recurrent: only the LSTM has a cell state; c0 was given for {cell}.", nameof(c0));
        CheckState(c0, batch, hidden, "c0");

        bool lstm = cell == RecurrentCell.Lstm;
        var xc = x.Contiguous(); var h = h0?.Contiguous(); var c = c0?.Contiguous();
        var wi = weightIh.Contiguous(); var wh = weightHh.Contiguous(); var bi = biasIh?.Contiguous(); var bh = biasHh?.Contiguous();
        long outCount = (long)steps * batch * hidden;
        var packed = Uninitialized([lstm ? steps + 1 : steps, batch, hidden]); // h_0 … h_{T−1} [, c_n]
        var saved = Uninitialized([Kernels.Recurrent.SavedLength(cell, steps, batch, hidden)]); // gates and states for backward
        var all = packed.Data;
        var y = all[..(int)outCount];
        var cN = all[(int)outCount..];
        Kernels.Recurrent.Forward(y, cN, saved.Data, xc.Data, Span(h), Span(c), wi.Data, wh.Data, Span(bi), Span(bh),
            cell, steps, batch, inputSize, hidden, reverse);
        Tensor[] inputs = [xc, wi, wh, .. Present(h, c, bi, bh)];
        packed = Record(packed, cell switch { RecurrentCell.Lstm => "Lstm", RecurrentCell.Gru => "Gru", _ => "Rnn" }, inputs, grad =>
        {
            var gd = grad.Data;
            Kernels.Recurrent.Backward(GradOrEmpty(xc), GradOrEmpty(h), GradOrEmpty(c), GradOrEmpty(wi), GradOrEmpty(wh),
                GradOrEmpty(bi), GradOrEmpty(bh), gd[..(int)outCount], gd[(int)outCount..], saved.Data, packed.Data[..(int)outCount],
                xc.Data, Span(h), Span(c), wi.Data, wh.Data, cell, steps, batch, inputSize, hidden, reverse);
        });
        if (packed.GradFn is null) saved.Dispose(); // nothing will run backward: the saved state goes back to the pool now
        var output = packed.Narrow(0, 0, steps);
        var hn = packed.Select(0, reverse ? 0 : steps - 1);
        var cn = lstm ? packed.Select(0, steps) : null;
        return (output, hn, cn);
    }

    static Span<float> Span(Tensor? t) => t is null ? default : t.Data;

    static Span<float> GradOrEmpty(Tensor? t) => t is { RequiresGrad: true } ? t.GradBuffer() : default;

    static IEnumerable<Tensor> Present(params Tensor?[] tensors) => tensors.OfType<Tensor>();

    static void CheckState(Tensor? state, int batch, int hidden, string name)
    {
        if (state is not null && (state.Rank != 2 || state._shape[0] != batch || state._shape[1] != hidden))
            throw new ArgumentException($"Recurrent: {name} must be (B, H) = ({batch}, {hidden}); got {ShapeMath.Format(state.Shape)}.", name);
    }
}
