// Sources: Elman, "Finding Structure in Time" (1990); Hochreiter & Schmidhuber, "Long Short-Term Memory" (1997), with the
// forget gate of Gers, Schmidhuber & Cummins (2000); Cho et al., "Learning Phrase Representations using RNN Encoder–Decoder"
// (2014) for the GRU; PyTorch torch.nn.RNN/LSTM/GRU for the gate order, the two bias vectors and the placement of r in the
// GRU's candidate; Appleyard, Kocisky & Blunsom, "Optimizing Performance of Recurrent Neural Networks on GPUs" (2016) for
// the whole-sequence input projection and the batched weight gradients.
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>The recurrent cell a <see cref="Recurrent"/> kernel runs; the gate order is PyTorch's.</summary>
public enum RecurrentCell
{
    /// <summary>Elman RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh). One gate block.</summary>
    Tanh,

    /// <summary>LSTM with gate blocks i, f, g, o (input, forget, cell candidate, output).</summary>
    Lstm,

    /// <summary>GRU with gate blocks r, z, n (reset, update, candidate).</summary>
    Gru,
}

/// <summary>
/// One direction of one recurrent layer over a whole sequence, time-major: x (T, B, I) → y (T, B, H). Weights are stored
/// as PyTorch stores them: W_ih (G·H, I), W_hh (G·H, H), b_ih and b_hh (G·H), with G gate blocks of H rows each
/// (<see cref="GateCount"/>). Empty biases mean zero, empty h0/c0 mean zero initial states. With <c>reverse</c> the
/// sequence is read from t = T − 1 down to 0 (the backward direction of a bidirectional layer); y stays in time order.
/// </summary>
/// <remarks>
/// <para>The input projection X·W_ihᵀ + b_ih of all T·B rows is one GEMM; each step then does one (B, H)·W_hhᵀ GEMM and one
/// fused, vectorised pass of gate math. Backward through time runs the steps in reverse, keeping only ∂L/∂h and ∂L/∂c of
/// the current step, and stores the gate gradients of every step so that dX, dW_ih and dW_hh are each one or two GEMMs
/// over the whole sequence.</para>
/// <para>Saved state (<see cref="SavedLength"/>): nothing for <see cref="RecurrentCell.Tanh"/> (y holds every h_t); for the
/// LSTM the activated gates (T, B, 4H) followed by the cell states c_t (T, B, H); for the GRU the activated gates r, z, n
/// (T, B, 3H) followed by W_hn h_{t−1} + b_hn (T, B, H), which r multiplies.</para>
/// </remarks>
public static unsafe partial class Recurrent
{
    /// <summary>G, the number of gate blocks: 1 (tanh RNN), 4 (LSTM), 3 (GRU).</summary>
    public static int GateCount(RecurrentCell cell) => cell switch
    {
        RecurrentCell.Tanh => 1,
        RecurrentCell.Lstm => 4,
        RecurrentCell.Gru => 3,
        _ => throw UnknownCell(cell),
    };

    /// <summary>Floats of saved state <see cref="Forward"/> writes for <see cref="Backward"/>.</summary>
    public static int SavedLength(RecurrentCell cell, int steps, int batch, int hiddenSize) =>
        cell == RecurrentCell.Tanh ? 0 : checked(steps * batch * (GateCount(cell) + 1) * hiddenSize);

    /// <summary>
    /// y (T, B, H) = the hidden states h_t in time order; <paramref name="cN"/> (B, H, LSTM only, may be empty) = the last
    /// cell state; <paramref name="saved"/> = what <see cref="Backward"/> needs.
    /// </summary>
    public static void Forward(Span<float> y, Span<float> cN, Span<float> saved, ReadOnlySpan<float> x, ReadOnlySpan<float> h0,
        ReadOnlySpan<float> c0, ReadOnlySpan<float> wIh, ReadOnlySpan<float> wHh, ReadOnlySpan<float> bIh, ReadOnlySpan<float> bHh,
        RecurrentCell cell, int steps, int batch, int inputSize, int hiddenSize, bool reverse)
    {
        Validate(cell, steps, batch, inputSize, hiddenSize, y.Length, cN.Length, saved.Length, x.Length, h0.Length, c0.Length,
            wIh.Length, wHh.Length, bIh.Length, bHh.Length);
        fixed (float* py = y, pcN = cN, psaved = saved, px = x, ph0 = h0, pc0 = c0, pwIh = wIh, pwHh = wHh, pbIh = bIh, pbHh = bHh)
        {
            var d = new Dims(cell, steps, hiddenSize, reverse);
            int gh = d.GH;
            long rowsB = (long)batch * hiddenSize;
            // Workspace: the input projection of every step (T, B, GH), one step's recurrent projection (B, GH), and zero
            // initial states when none are given.
            float* xg = Alloc((long)steps * batch * gh);
            float* hg = Alloc((long)batch * gh);
            float* zeros = Alloc(rowsB);
            try
            {
                new Span<float>(zeros, (int)rowsB).Clear();
                float* hInit = h0.IsEmpty ? zeros : ph0, cInit = c0.IsEmpty ? zeros : pc0;
                // XG = X·W_ihᵀ + b_ih, all T·B rows at once
                Gemm.Multiply(Transpose.No, Transpose.Yes, steps * batch, gh, inputSize, px, inputSize, pwIh, inputSize, xg, gh,
                    false, bIh.IsEmpty ? null : pbIh);
                float* gates = psaved, states = psaved + (long)steps * batch * gh;
                for (int s = 0; s < steps; s++)
                {
                    int t = d.Time(s), tp = s == 0 ? -1 : d.Time(s - 1);
                    float* hPrev = tp < 0 ? hInit : py + tp * rowsB;
                    // HG = h_{t−1}·W_hhᵀ + b_hh
                    Gemm.Multiply(Transpose.No, Transpose.Yes, batch, gh, hiddenSize, hPrev, hiddenSize, pwHh, hiddenSize, hg, gh,
                        false, bHh.IsEmpty ? null : pbHh);
                    float* xgT = xg + t * batch * (long)gh, hT = py + t * rowsB;
                    switch (cell)
                    {
                        case RecurrentCell.Tanh:
                            Step(batch, hiddenSize, new TanhForward(hT, xgT, hg, hiddenSize));
                            break;
                        case RecurrentCell.Lstm:
                            float* cPrev = tp < 0 ? cInit : states + tp * rowsB;
                            Step(batch, hiddenSize, new LstmForward(hT, states + t * rowsB, gates + t * batch * (long)gh, xgT, hg, cPrev, hiddenSize));
                            break;
                        default:
                            Step(batch, hiddenSize, new GruForward(hT, gates + t * batch * (long)gh, states + t * rowsB, xgT, hg, hPrev, hiddenSize));
                            break;
                    }
                }
                if (!cN.IsEmpty)
                    new ReadOnlySpan<float>(states + d.Time(steps - 1) * rowsB, (int)rowsB).CopyTo(cN);
            }
            finally
            {
                NativeMemory.AlignedFree(xg);
                NativeMemory.AlignedFree(hg);
                NativeMemory.AlignedFree(zeros);
            }
        }
    }

    /// <summary>
    /// Accumulates the gradients of <see cref="Forward"/> from dy (T, B, H) and dcN (B, H, LSTM only; empty means zero):
    /// dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh. Any gradient span may be empty, meaning it is not wanted.
    /// </summary>
    public static void Backward(Span<float> dx, Span<float> dh0, Span<float> dc0, Span<float> dwIh, Span<float> dwHh,
        Span<float> dbIh, Span<float> dbHh, ReadOnlySpan<float> dy, ReadOnlySpan<float> dcN, ReadOnlySpan<float> saved,
        ReadOnlySpan<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> h0, ReadOnlySpan<float> c0, ReadOnlySpan<float> wIh,
        ReadOnlySpan<float> wHh, RecurrentCell cell, int steps, int batch, int inputSize, int hiddenSize, bool reverse)
    {
        ValidateBackward(cell, steps, batch, inputSize, hiddenSize, dx.Length, dh0.Length, dc0.Length, dwIh.Length, dwHh.Length,
            dbIh.Length, dbHh.Length, dy.Length, dcN.Length, saved.Length, y.Length, x.Length, h0.Length, c0.Length, wIh.Length, wHh.Length);
        fixed (float* pdx = dx, pdh0 = dh0, pdc0 = dc0, pdwIh = dwIh, pdwHh = dwHh, pdbIh = dbIh, pdbHh = dbHh)
        fixed (float* pdy = dy, pdcN = dcN, psaved = saved, py = y, px = x, ph0 = h0, pc0 = c0, pwIh = wIh, pwHh = wHh)
        {
            var d = new Dims(cell, steps, hiddenSize, reverse);
            int gh = d.GH, rowsB = batch * hiddenSize;
            long all = (long)steps * batch * gh;
            // Workspace: ∂L/∂(input projection) of every step, and for the GRU, whose candidate sees W_hn h only through r,
            // a separate ∂L/∂(recurrent projection); for the others the two are the same. dh, dc: ∂L/∂h_t, ∂L/∂c_t.
            float* dxg = Alloc(all);
            float* dhg = cell == RecurrentCell.Gru ? Alloc(all) : dxg;
            float* dh = Alloc(rowsB), dc = Alloc(rowsB), zeros = Alloc(rowsB);
            try
            {
                var dhSpan = new Span<float>(dh, rowsB);
                var dcSpan = new Span<float>(dc, rowsB);
                dhSpan.Clear();
                new Span<float>(zeros, rowsB).Clear();
                if (dcN.IsEmpty) dcSpan.Clear();
                else dcN.CopyTo(dcSpan);
                float* hInit = h0.IsEmpty ? zeros : ph0, cInit = c0.IsEmpty ? zeros : pc0;
                float* gates = psaved, states = psaved + (long)steps * batch * gh;
                for (int s = steps - 1; s >= 0; s--)
                {
                    int t = d.Time(s), tp = s == 0 ? -1 : d.Time(s - 1);
                    float* hPrev = tp < 0 ? hInit : py + (long)tp * rowsB;
                    // ∂L/∂h_t = dy_t + (what step t + 1 sent back, already in dh)
                    TensorPrimitives.Add(dhSpan, new ReadOnlySpan<float>(pdy + (long)t * rowsB, rowsB), dhSpan);
                    float* dxgT = dxg + (long)t * batch * gh, dhgT = dhg + (long)t * batch * gh;
                    switch (cell)
                    {
                        case RecurrentCell.Tanh:
                            Step(batch, hiddenSize, new TanhBackward(dxgT, dh, py + (long)t * rowsB, hiddenSize));
                            break;
                        case RecurrentCell.Lstm:
                            float* cPrev = tp < 0 ? cInit : states + (long)tp * rowsB;
                            Step(batch, hiddenSize, new LstmBackward(dxgT, dh, dc, gates + (long)t * batch * gh, states + (long)t * rowsB, cPrev, hiddenSize));
                            break;
                        default:
                            Step(batch, hiddenSize, new GruBackward(dxgT, dhgT, dh, gates + (long)t * batch * gh, states + (long)t * rowsB, hPrev, hiddenSize));
                            break;
                    }
                    // ∂L/∂h_{t−1} += ∂L/∂HG_t · W_hh
                    Gemm.Multiply(Transpose.No, Transpose.No, batch, hiddenSize, gh, dhgT, gh, pwHh, hiddenSize, dh, hiddenSize, accumulate: true);
                }
                if (!dh0.IsEmpty) TensorPrimitives.Add(dh0, dhSpan, dh0);
                if (!dc0.IsEmpty) TensorPrimitives.Add(dc0, dcSpan, dc0);
                int rows = steps * batch;
                // dX += dXG·W_ih
                if (!dx.IsEmpty)
                    Gemm.Multiply(Transpose.No, Transpose.No, rows, inputSize, gh, dxg, gh, pwIh, inputSize, pdx, inputSize, accumulate: true);
                // dW_ih += dXGᵀ·X over all T·B rows
                if (!dwIh.IsEmpty)
                    Gemm.Multiply(Transpose.Yes, Transpose.No, gh, inputSize, rows, dxg, gh, px, inputSize, pdwIh, inputSize, accumulate: true);
                // dW_hh += Σ_t dHG_tᵀ·h_{t−1}: the steps whose h_{t−1} is a row of y are one GEMM (y shifted by one step),
                // the first step read h0
                if (!dwHh.IsEmpty)
                {
                    long shifted = (long)(steps - 1) * batch;
                    float* dhgShifted = reverse ? dhg : dhg + (long)batch * gh;
                    float* yShifted = reverse ? py + rowsB : py;
                    Gemm.Multiply(Transpose.Yes, Transpose.No, gh, hiddenSize, (int)shifted, dhgShifted, gh, yShifted, hiddenSize, pdwHh, hiddenSize, accumulate: true);
                    if (!h0.IsEmpty)
                        Gemm.Multiply(Transpose.Yes, Transpose.No, gh, hiddenSize, batch, dhg + (long)d.Time(0) * batch * gh, gh, ph0, hiddenSize, pdwHh, hiddenSize, accumulate: true);
                }
                // db_ih += Σ_rows dXG, db_hh += Σ_rows dHG
                if (!dbIh.IsEmpty) AddRows(dbIh, dxg, rows, gh);
                if (!dbHh.IsEmpty) AddRows(dbHh, dhg, rows, gh);
            }
            finally
            {
                NativeMemory.AlignedFree(dxg);
                if (dhg != dxg) NativeMemory.AlignedFree(dhg);
                NativeMemory.AlignedFree(dh);
                NativeMemory.AlignedFree(dc);
                NativeMemory.AlignedFree(zeros);
            }
        }
    }

    static void AddRows(Span<float> sum, float* rows, int count, int width)
    {
        for (int r = 0; r < count; r++) TensorPrimitives.Add(sum, new ReadOnlySpan<float>(rows + (long)r * width, width), sum);
    }

    static float* Alloc(long floats) => (float*)NativeMemory.AlignedAlloc((nuint)(Math.Max(1, floats) * sizeof(float)), 64);

    /// <summary>Sizes of one call and the order its steps run in.</summary>
    readonly struct Dims(RecurrentCell cell, int steps, int hiddenSize, bool reverse)
    {
        /// <summary>G·H, the width of a row of gates.</summary>
        public readonly int GH = GateCount(cell) * hiddenSize;

        /// <summary>The time index of step s.</summary>
        public int Time(int s) => reverse ? steps - 1 - s : s;
    }

    static ArgumentOutOfRangeException UnknownCell(RecurrentCell cell) =>
        new(nameof(cell), cell, $"cell must be Tanh, Lstm or Gru; got {cell}.");

    /// <summary>Length checks of <see cref="Forward"/>, shared with the reference twin.</summary>
    internal static void Validate(RecurrentCell cell, int steps, int batch, int inputSize, int hiddenSize, int y, int cN, int saved,
        int x, int h0, int c0, int wIh, int wHh, int bIh, int bHh)
    {
        int gh = CheckDims(cell, steps, batch, inputSize, hiddenSize);
        Guard.Matrix(nameof(y), y, steps * batch, hiddenSize, "T·B", "H");
        CellState(cell, nameof(cN), cN, batch, hiddenSize);
        Guard.Vector(nameof(saved), saved, SavedLength(cell, steps, batch, hiddenSize), "SavedLength");
        Guard.Matrix(nameof(x), x, steps * batch, inputSize, "T·B", "I");
        Guard.OptionalVector(nameof(h0), h0, batch * hiddenSize, "B·H");
        CellState(cell, nameof(c0), c0, batch, hiddenSize);
        Guard.Matrix(nameof(wIh), wIh, gh, inputSize, "G·H", "I");
        Guard.Matrix(nameof(wHh), wHh, gh, hiddenSize, "G·H", "H");
        Guard.OptionalVector(nameof(bIh), bIh, gh, "G·H");
        Guard.OptionalVector(nameof(bHh), bHh, gh, "G·H");
    }

    /// <summary>Length checks of <see cref="Backward"/>, shared with the reference twin.</summary>
    internal static void ValidateBackward(RecurrentCell cell, int steps, int batch, int inputSize, int hiddenSize, int dx, int dh0,
        int dc0, int dwIh, int dwHh, int dbIh, int dbHh, int dy, int dcN, int saved, int y, int x, int h0, int c0, int wIh, int wHh)
    {
        Validate(cell, steps, batch, inputSize, hiddenSize, y, dcN, saved, x, h0, c0, wIh, wHh, 0, 0);
        int gh = GateCount(cell) * hiddenSize;
        Guard.OptionalVector(nameof(dx), dx, steps * batch * inputSize, "T·B·I");
        Guard.OptionalVector(nameof(dh0), dh0, batch * hiddenSize, "B·H");
        CellState(cell, nameof(dc0), dc0, batch, hiddenSize);
        Guard.OptionalVector(nameof(dwIh), dwIh, gh * inputSize, "G·H·I");
        Guard.OptionalVector(nameof(dwHh), dwHh, gh * hiddenSize, "G·H·H");
        Guard.OptionalVector(nameof(dbIh), dbIh, gh, "G·H");
        Guard.OptionalVector(nameof(dbHh), dbHh, gh, "G·H");
        Guard.Matrix(nameof(dy), dy, steps * batch, hiddenSize, "T·B", "H");
    }

    /// <summary>A cell-state span: (B, H) or empty for the LSTM, always empty for the cells that have none.</summary>
    static void CellState(RecurrentCell cell, string name, int actual, int batch, int hiddenSize)
    {
        if (cell == RecurrentCell.Lstm) Guard.OptionalVector(name, actual, batch * hiddenSize, "B·H");
        else if (actual != 0)
            throw new ArgumentException($"{name} has length {actual}; only the LSTM has a cell state, so for {cell} it must be empty.", name);
    }

    static int CheckDims(RecurrentCell cell, int steps, int batch, int inputSize, int hiddenSize)
    {
        int g = GateCount(cell);
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, $"steps (T) must be at least 1; got {steps}.");
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"batch (B) must be at least 1; got {batch}.");
        if (inputSize < 1) throw new ArgumentOutOfRangeException(nameof(inputSize), inputSize, $"inputSize (I) must be at least 1; got {inputSize}.");
        if (hiddenSize < 1) throw new ArgumentOutOfRangeException(nameof(hiddenSize), hiddenSize, $"hiddenSize (H) must be at least 1; got {hiddenSize}.");
        return checked(g * hiddenSize);
    }
}
