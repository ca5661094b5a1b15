// Reference twin of Kernels.Recurrent: plain loops in double, one unit at a time, no GEMM. Sources: Elman (1990);
// Hochreiter & Schmidhuber (1997); Cho et al. (2014); PyTorch torch.nn.RNN/LSTM/GRU (gate order and formulas).
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain recurrent layers over a time-major sequence, with the layout and saved state of <see cref="Kernels.Recurrent"/>.</summary>
public static class Recurrent
{
    public static void Forward(Span<float> y, Span<float> cN, Span<float> saved, ReadOnlySpan<float> x, ReadOnlySpan<float> h0,
        ReadOnlySpan<float> c0, ReadOnlySpan<float> wIh, ReadOnlySpan<float> wHh, ReadOnlySpan<float> bIh, ReadOnlySpan<float> bHh,
        RecurrentCell cell, int steps, int batch, int inputSize, int hiddenSize, bool reverse)
    {
        Kernels.Recurrent.Validate(cell, steps, batch, inputSize, hiddenSize, y.Length, cN.Length, saved.Length, x.Length, h0.Length,
            c0.Length, wIh.Length, wHh.Length, bIh.Length, bHh.Length);
        var run = new Run(cell, steps, batch, inputSize, hiddenSize, reverse, Widen.From(x), Widen.From(h0), Widen.From(c0),
            Widen.From(wIh), Widen.From(wHh), Widen.From(bIh), Widen.From(bHh));
        run.Forward();
        Widen.Store(y, run.H);
        if (!cN.IsEmpty) Widen.Store(cN, run.C.AsSpan((run.Time(steps - 1) * batch * hiddenSize), batch * hiddenSize));
        if (cell != RecurrentCell.Tanh)
        {
            Widen.Store(saved, run.Gates);
            Widen.Store(saved[run.Gates.Length..], cell == RecurrentCell.Lstm ? run.C : run.Hn);
        }
    }

    /// <summary>The gradients of <see cref="Forward"/>, accumulated, from the hidden states y and the saved gates and states.</summary>
    public static void Backward(Span<float> dx, Span<float> dh0, Span<float> dc0, Span<float> dwIh, Span<float> dwHh,
        Span<float> dbIh, Span<float> dbHh, ReadOnlySpan<float> dy, ReadOnlySpan<float> dcN, ReadOnlySpan<float> saved,
        ReadOnlySpan<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> h0, ReadOnlySpan<float> c0, ReadOnlySpan<float> wIh,
        ReadOnlySpan<float> wHh, RecurrentCell cell, int steps, int batch, int inputSize, int hiddenSize, bool reverse)
    {
        Kernels.Recurrent.ValidateBackward(cell, steps, batch, inputSize, hiddenSize, dx.Length, dh0.Length, dc0.Length, dwIh.Length,
            dwHh.Length, dbIh.Length, dbHh.Length, dy.Length, dcN.Length, saved.Length, y.Length, x.Length, h0.Length, c0.Length,
            wIh.Length, wHh.Length);
        var run = new Run(cell, steps, batch, inputSize, hiddenSize, reverse, Widen.From(x), Widen.From(h0), Widen.From(c0),
            Widen.From(wIh), Widen.From(wHh), [], []);
        run.Load(y, saved);
        var g = run.Backward(Widen.From(dy), Widen.From(dcN));
        Widen.Accumulate(dx, dx.IsEmpty ? [] : g.Dx);
        Widen.Accumulate(dh0, dh0.IsEmpty ? [] : g.Dh0);
        Widen.Accumulate(dc0, dc0.IsEmpty ? [] : g.Dc0);
        Widen.Accumulate(dwIh, dwIh.IsEmpty ? [] : g.DwIh);
        Widen.Accumulate(dwHh, dwHh.IsEmpty ? [] : g.DwHh);
        Widen.Accumulate(dbIh, dbIh.IsEmpty ? [] : g.Db);
        Widen.Accumulate(dbHh, dbHh.IsEmpty ? [] : g.DbHh);
    }

    sealed record Gradients(double[] Dx, double[] Dh0, double[] Dc0, double[] DwIh, double[] DwHh, double[] Db, double[] DbHh);

    /// <summary>One layer's sizes, inputs and, after <see cref="Forward"/>, every intermediate value.</summary>
    sealed class Run(RecurrentCell cell, int steps, int batch, int inputSize, int hiddenSize, bool reverse,
        double[] x, double[] h0, double[] c0, double[] wIh, double[] wHh, double[] bIh, double[] bHh)
    {
        readonly int _g = Kernels.Recurrent.GateCount(cell);
        public double[] H = new double[steps * batch * hiddenSize];
        public double[] C = new double[steps * batch * hiddenSize];
        public double[] Hn = new double[steps * batch * hiddenSize];
        public double[] Gates = new double[steps * batch * Kernels.Recurrent.GateCount(cell) * hiddenSize];

        public int Time(int s) => reverse ? steps - 1 - s : s;

        double HPrev(int s, int b, int j) =>
            s == 0 ? (h0.Length == 0 ? 0 : h0[b * hiddenSize + j]) : H[(Time(s - 1) * batch + b) * hiddenSize + j];

        double CPrev(int s, int b, int j) =>
            s == 0 ? (c0.Length == 0 ? 0 : c0[b * hiddenSize + j]) : C[(Time(s - 1) * batch + b) * hiddenSize + j];

        /// <summary>W_ih x_t + b_ih for gate row r (r = k·H + j).</summary>
        double InputPart(int t, int b, int r)
        {
            double a = bIh.Length == 0 ? 0 : bIh[r];
            for (int i = 0; i < inputSize; i++) a += wIh[r * inputSize + i] * x[(t * batch + b) * inputSize + i];
            return a;
        }

        /// <summary>W_hh h_{t−1} + b_hh for gate row r.</summary>
        double HiddenPart(int s, int b, int r)
        {
            double a = bHh.Length == 0 ? 0 : bHh[r];
            for (int i = 0; i < hiddenSize; i++) a += wHh[r * hiddenSize + i] * HPrev(s, b, i);
            return a;
        }

        static double Sigmoid(double v) => 1 / (1 + Math.Exp(-v));

        /// <summary>Takes the hidden states and saved state of a forward pass instead of computing them.</summary>
        public void Load(ReadOnlySpan<float> y, ReadOnlySpan<float> saved)
        {
            for (int i = 0; i < H.Length; i++) H[i] = y[i];
            if (cell == RecurrentCell.Tanh) return;
            for (int i = 0; i < Gates.Length; i++) Gates[i] = saved[i];
            var states = cell == RecurrentCell.Lstm ? C : Hn;
            for (int i = 0; i < states.Length; i++) states[i] = saved[Gates.Length + i];
        }

        public void Forward()
        {
            int hs = hiddenSize;
            for (int s = 0; s < steps; s++)
            {
                int t = Time(s);
                for (int b = 0; b < batch; b++)
                    for (int j = 0; j < hs; j++)
                    {
                        int o = (t * batch + b) * hs + j, g0 = (t * batch + b) * _g * hs + j;
                        double Pre(int k) => InputPart(t, b, k * hs + j) + HiddenPart(s, b, k * hs + j);
                        switch (cell)
                        {
                            case RecurrentCell.Tanh:
                                // h = tanh(W_ih x + b_ih + W_hh h + b_hh)
                                H[o] = Math.Tanh(Pre(0));
                                break;
                            case RecurrentCell.Lstm:
                            {
                                // i, f, o = σ(·), g = tanh(·); c = f·c_{t−1} + i·g; h = o·tanh(c)
                                double i = Sigmoid(Pre(0)), f = Sigmoid(Pre(1)), g = Math.Tanh(Pre(2)), og = Sigmoid(Pre(3));
                                C[o] = f * CPrev(s, b, j) + i * g;
                                H[o] = og * Math.Tanh(C[o]);
                                (Gates[g0], Gates[g0 + hs], Gates[g0 + 2 * hs], Gates[g0 + 3 * hs]) = (i, f, g, og);
                                break;
                            }
                            default:
                            {
                                // r, z = σ(·); n = tanh(W_in x + b_in + r·(W_hn h + b_hn)); h = (1 − z)·n + z·h_{t−1}
                                double r = Sigmoid(Pre(0)), z = Sigmoid(Pre(1));
                                double hn = HiddenPart(s, b, 2 * hs + j);
                                double n = Math.Tanh(InputPart(t, b, 2 * hs + j) + r * hn);
                                H[o] = (1 - z) * n + z * HPrev(s, b, j);
                                Hn[o] = hn;
                                (Gates[g0], Gates[g0 + hs], Gates[g0 + 2 * hs]) = (r, z, n);
                                break;
                            }
                        }
                    }
            }
        }

        public Gradients Backward(double[] dy, double[] dcN)
        {
            int hs = hiddenSize, gh = _g * hs;
            var gr = new Gradients(new double[x.Length], new double[batch * hs], new double[batch * hs], new double[wIh.Length],
                new double[wHh.Length], new double[gh], new double[gh]);
            var dh = new double[batch * hs];
            var dc = dcN.Length == 0 ? new double[batch * hs] : (double[])dcN.Clone();
            var da = new double[batch * gh];  // ∂L/∂(W_ih x + b_ih) per gate row
            var dah = new double[batch * gh]; // ∂L/∂(W_hh h + b_hh) per gate row
            for (int s = steps - 1; s >= 0; s--)
            {
                int t = Time(s);
                for (int b = 0; b < batch; b++)
                    for (int j = 0; j < hs; j++)
                    {
                        int o = (t * batch + b) * hs + j, g0 = (t * batch + b) * gh + j, a0 = b * gh + j, u = b * hs + j;
                        double d = dh[u] + dy[o];
                        switch (cell)
                        {
                            case RecurrentCell.Tanh:
                                da[a0] = dah[a0] = d * (1 - H[o] * H[o]);
                                dh[u] = 0;
                                break;
                            case RecurrentCell.Lstm:
                            {
                                double i = Gates[g0], f = Gates[g0 + hs], g = Gates[g0 + 2 * hs], og = Gates[g0 + 3 * hs];
                                double tc = Math.Tanh(C[o]);
                                double dct = dc[u] + d * og * (1 - tc * tc);
                                da[a0] = dah[a0] = dct * g * i * (1 - i);
                                da[a0 + hs] = dah[a0 + hs] = dct * CPrev(s, b, j) * f * (1 - f);
                                da[a0 + 2 * hs] = dah[a0 + 2 * hs] = dct * i * (1 - g * g);
                                da[a0 + 3 * hs] = dah[a0 + 3 * hs] = d * tc * og * (1 - og);
                                dc[u] = dct * f;
                                dh[u] = 0;
                                break;
                            }
                            default:
                            {
                                double r = Gates[g0], z = Gates[g0 + hs], n = Gates[g0 + 2 * hs];
                                double dan = d * (1 - z) * (1 - n * n);
                                da[a0] = dah[a0] = dan * Hn[o] * r * (1 - r);
                                da[a0 + hs] = dah[a0 + hs] = d * (HPrev(s, b, j) - n) * z * (1 - z);
                                da[a0 + 2 * hs] = dan;
                                dah[a0 + 2 * hs] = dan * r;
                                dh[u] = d * z;
                                break;
                            }
                        }
                    }
                // Through the weights: every gate row r of every batch row b.
                for (int b = 0; b < batch; b++)
                    for (int r = 0; r < gh; r++)
                    {
                        double ai = da[b * gh + r], ah = dah[b * gh + r];
                        gr.Db[r] += ai;
                        gr.DbHh[r] += ah;
                        for (int i = 0; i < inputSize; i++)
                        {
                            gr.DwIh[r * inputSize + i] += ai * x[(t * batch + b) * inputSize + i];
                            gr.Dx[(t * batch + b) * inputSize + i] += ai * wIh[r * inputSize + i];
                        }
                        for (int i = 0; i < hs; i++)
                        {
                            gr.DwHh[r * hs + i] += ah * HPrev(s, b, i);
                            dh[b * hs + i] += ah * wHh[r * hs + i];
                        }
                    }
            }
            dh.CopyTo(gr.Dh0, 0);
            dc.CopyTo(gr.Dc0, 0);
            return gr;
        }
    }
}
