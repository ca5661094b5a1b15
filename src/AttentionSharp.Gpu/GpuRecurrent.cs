// Sources: the CPU engine's Kernels/Recurrent.cs and RecurrentCells.cs (PyTorch's gate order and formulas), whose
// formulas these kernels follow line by line; Appleyard, Kocisky & Blunsom, "Optimizing Performance of Recurrent
// Neural Networks on GPUs" (2016) for the whole-sequence input projection and the batched weight gradients.
using AttentionSharp.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// One recurrent layer (tanh RNN, LSTM or GRU, <see cref="RecurrentCell"/>) over a whole time-major sequence from zero
/// initial states, forward and backward through time, as the CPU engine's <see cref="Recurrent"/> computes it. Weights
/// are PyTorch's: W_ih (G·H, I), W_hh (G·H, H), b_ih and b_hh (G·H) or null, G gate blocks of H rows each.
/// </summary>
/// <remarks>
/// Forward: the input projection X·W_ihᵀ + b_ih of all T·B rows is one GEMM; then each step is one (B, H)·W_hhᵀ GEMM
/// (b_hh added as it is stored) and one fused element-wise kernel of gate math. Backward runs the steps in reverse, each
/// one gate kernel (which adds ∂L/∂y_t to the carried ∂L/∂h_t) and one GEMM sending ∂L/∂h_{t−1} back through
/// W_hh; the gate gradients of every step are kept, so dX, dW_ih and dW_hh are one GEMM each over the whole sequence
/// and the bias gradients two column sums. Steps are launches in order on the device's stream: T of them cannot run in
/// parallel.
/// </remarks>
public sealed class GpuRecurrent
{
    readonly GpuDevice _device;
    readonly Action<KernelConfig, RecurrentArgs> _forward, _backward;

    internal GpuRecurrent(GpuDevice device)
    {
        _device = device;
        _forward = device.Load<RecurrentArgs>(ForwardKernel, ForwardKernel);
        _backward = device.Load<RecurrentArgs>(BackwardKernel, BackwardKernel);
    }

    /// <summary>
    /// y = the hidden states h_t of <paramref name="a"/>'s (T, B) sequence in time order, into <c>a.Y</c>, and what
    /// <see cref="Backward"/> needs into <c>a</c>; <paramref name="x"/> is (T, B, I).
    /// </summary>
    public void Forward(GpuRecurrentActivations a, GpuTensor x, GpuTensor weightIh, GpuTensor weightHh, GpuTensor? biasIh,
        GpuTensor? biasHh)
    {
        ArgumentNullException.ThrowIfNull(a);
        CheckWeights(a, x, weightIh, weightHh, biasIh, biasHh);
        int steps = a.Steps, batch = a.Batch, h = a.HiddenSize, gh = a.GateWidth, rowsB = batch * h;
        // XG = X·W_ihᵀ + b_ih for all T·B rows, into the gate buffer (the gate kernels overwrite it with the gates)
        _device.Gemm.Linear(a.Gates, x, weightIh, biasIh, steps * batch, a.InputSize, gh);
        for (int t = 0; t < steps; t++)
        {
            var hPrev = t == 0 ? a.Zeros : a.Y.Slice((long)(t - 1) * rowsB, rowsB);
            var cPrev = t == 0 || a.Cell != RecurrentCell.Lstm ? a.Zeros : a.States.Slice((long)(t - 1) * rowsB, rowsB);
            // HG = h_{t−1}·W_hhᵀ + b_hh
            _device.Gemm.Linear(a.RecurrentGates, hPrev, weightHh, biasHh, batch, h, gh);
            _forward(_device.ElementLaunch(rowsB), new RecurrentArgs
            {
                Gates = a.Gates.Slice((long)t * batch * gh, batch * gh).View, Hg = a.RecurrentGates.View,
                HPrev = hPrev.View, CPrev = cPrev.View,
                H = a.Y.Slice((long)t * rowsB, rowsB).View, State = StateAt(a, t).View,
                Dh = a.Zeros.View, Dc = a.Zeros.View, Dy = a.Zeros.View, DGx = a.Zeros.View, DGh = a.Zeros.View,
                Cell = (int)a.Cell, Hidden = h, Count = rowsB,
            });
        }
    }

    /// <summary>
    /// Backpropagation through time from <c>a.DY</c> (∂L/∂y, (T, B, H)), after <see cref="Forward"/> on the same
    /// <paramref name="a"/> and weights: accumulates (+=) dX into <paramref name="dx"/> (T·B·I, or null when not wanted)
    /// and the weight and bias gradients (the bias gradients null when the layer has no biases).
    /// </summary>
    public void Backward(GpuRecurrentActivations a, GpuTensor x, GpuTensor weightIh, GpuTensor weightHh, GpuTensor? dx,
        GpuTensor dWeightIh, GpuTensor dWeightHh, GpuTensor? dBiasIh, GpuTensor? dBiasHh)
    {
        ArgumentNullException.ThrowIfNull(a);
        CheckWeights(a, x, weightIh, weightHh, null, null);
        int steps = a.Steps, batch = a.Batch, h = a.HiddenSize, gh = a.GateWidth, rowsB = batch * h, rows = steps * batch;
        if (dx is not null) Check.Count(_device, dx, (long)rows * a.InputSize, nameof(dx), "T·B·I");
        Check.Count(_device, dWeightIh, (long)gh * a.InputSize, nameof(dWeightIh), "G·H·I");
        Check.Count(_device, dWeightHh, (long)gh * h, nameof(dWeightHh), "G·H·H");
        if (dBiasIh is not null) Check.Count(_device, dBiasIh, gh, nameof(dBiasIh), "G·H");
        if (dBiasHh is not null) Check.Count(_device, dBiasHh, gh, nameof(dBiasHh), "G·H");
        // dh, dc: ∂L/∂h_t and ∂L/∂c_t carried back from step t + 1 (zero past the last step)
        a.Dh.Clear();
        a.Dc.Clear();
        for (int t = steps - 1; t >= 0; t--)
        {
            var dhgT = a.DRecurrentGates.Slice((long)t * batch * gh, batch * gh);
            _backward(_device.ElementLaunch(rowsB), new RecurrentArgs
            {
                Gates = a.Gates.Slice((long)t * batch * gh, batch * gh).View, Hg = a.Zeros.View,
                HPrev = (t == 0 ? a.Zeros : a.Y.Slice((long)(t - 1) * rowsB, rowsB)).View,
                CPrev = (t == 0 || a.Cell != RecurrentCell.Lstm ? a.Zeros : a.States.Slice((long)(t - 1) * rowsB, rowsB)).View,
                H = a.Y.Slice((long)t * rowsB, rowsB).View, State = StateAt(a, t).View,
                Dh = a.Dh.View, Dc = a.Dc.View, Dy = a.DY.Slice((long)t * rowsB, rowsB).View,
                DGx = a.DInputGates.Slice((long)t * batch * gh, batch * gh).View, DGh = dhgT.View,
                Cell = (int)a.Cell, Hidden = h, Count = rowsB,
            });
            // ∂L/∂h_{t−1} += ∂L/∂HG_t · W_hh (h_{−1} is the zero initial state: nothing to send)
            if (t > 0) _device.Gemm.Multiply(Transpose.No, Transpose.No, batch, h, gh, dhgT, weightHh, a.Dh, 1f, 1f);
        }
        // dX += dXG·W_ih; dW_ih += dXGᵀ·X over all T·B rows
        if (dx is not null)
            _device.Gemm.Multiply(Transpose.No, Transpose.No, rows, a.InputSize, gh, a.DInputGates, weightIh, dx, 1f, 1f);
        _device.Gemm.Multiply(Transpose.Yes, Transpose.No, gh, a.InputSize, rows, a.DInputGates, x, dWeightIh, 1f, 1f);
        // dW_hh += Σ_{t ≥ 1} dHG_tᵀ·h_{t−1}: y shifted by one step, one GEMM (step 0 read the zero state)
        if (steps > 1)
            _device.Gemm.Multiply(Transpose.Yes, Transpose.No, gh, h, rows - batch,
                a.DRecurrentGates.Slice((long)batch * gh, (rows - batch) * gh), a.Y.Slice(0, (rows - batch) * h),
                dWeightHh, 1f, 1f);
        // db_ih += Σ_rows dXG, db_hh += Σ_rows dHG
        if (dBiasIh is not null) _device.Reduce.ColumnSum(dBiasIh, a.DInputGates, rows, gh);
        if (dBiasHh is not null) _device.Reduce.ColumnSum(dBiasHh, a.DRecurrentGates, rows, gh);
    }

    /// <summary>Step t's saved state: c_t (LSTM) or W_hn h_{t−1} + b_hn (GRU); a stand-in view for the tanh RNN.</summary>
    static GpuTensor StateAt(GpuRecurrentActivations a, int t) =>
        a.Cell == RecurrentCell.Tanh ? a.Zeros : a.States.Slice((long)t * a.Batch * a.HiddenSize, a.Batch * a.HiddenSize);

    void CheckWeights(GpuRecurrentActivations a, GpuTensor x, GpuTensor weightIh, GpuTensor weightHh, GpuTensor? biasIh,
        GpuTensor? biasHh)
    {
        if (!ReferenceEquals(a.Device, _device))
            throw new ArgumentException($"The activations live on another device ({a.Device.Name}) than the kernel's " +
                $"({_device.Name}).", nameof(a));
        int gh = a.GateWidth;
        Check.Count(_device, x, (long)a.Steps * a.Batch * a.InputSize, nameof(x), "T·B·I");
        Check.Count(_device, weightIh, (long)gh * a.InputSize, nameof(weightIh), "G·H·I");
        Check.Count(_device, weightHh, (long)gh * a.HiddenSize, nameof(weightHh), "G·H·H");
        if (biasIh is not null) Check.Count(_device, biasIh, gh, nameof(biasIh), "G·H");
        if (biasHh is not null) Check.Count(_device, biasHh, gh, nameof(biasHh), "G·H");
    }

    /// <summary>
    /// One step's gate math for unit j of batch row b (i = b·H + j), the CPU's RecurrentCells forward kernels: gate block
    /// k of row b sits at column k·H + j of Gates, which holds the input projection on entry and the activated gates on
    /// exit.
    /// </summary>
    [Kernel]
    static void ForwardKernel(RecurrentArgs p)
    {
        int hs = p.Hidden;
        for (int i = GpuMath.GridFirst; i < p.Count; i += GpuMath.GridStride)
        {
            int b = i / hs, j = i - b * hs;
            if (p.Cell == (int)RecurrentCell.Tanh)
            {
                // h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)
                long g = (long)b * hs + j;
                p.H[i] = GpuMath.Tanh(p.Gates[g] + p.Hg[g], out _);
            }
            else if (p.Cell == (int)RecurrentCell.Lstm)
            {
                long g0 = (long)b * 4 * hs + j;
                // i = σ(…), f = σ(…), g = tanh(…), o = σ(…), each W_i· x + b_i· + W_h· h + b_h·
                float ig = GpuMath.Sigmoid(p.Gates[g0] + p.Hg[g0]);
                float fg = GpuMath.Sigmoid(p.Gates[g0 + hs] + p.Hg[g0 + hs]);
                float gg = GpuMath.Tanh(p.Gates[g0 + 2 * hs] + p.Hg[g0 + 2 * hs], out _);
                float og = GpuMath.Sigmoid(p.Gates[g0 + 3 * hs] + p.Hg[g0 + 3 * hs]);
                // c_t = f ⊙ c_{t−1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)
                float ct = GpuMath.Fma(fg, p.CPrev[i], ig * gg);
                p.H[i] = og * GpuMath.Tanh(ct, out _);
                p.State[i] = ct;
                p.Gates[g0] = ig;
                p.Gates[g0 + hs] = fg;
                p.Gates[g0 + 2 * hs] = gg;
                p.Gates[g0 + 3 * hs] = og;
            }
            else
            {
                long g0 = (long)b * 3 * hs + j;
                // r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz)
                float r = GpuMath.Sigmoid(p.Gates[g0] + p.Hg[g0]);
                float z = GpuMath.Sigmoid(p.Gates[g0 + hs] + p.Hg[g0 + hs]);
                // n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
                float hn = p.Hg[g0 + 2 * hs];
                float n = GpuMath.Tanh(GpuMath.Fma(r, hn, p.Gates[g0 + 2 * hs]), out _);
                // h_t = (1 − z) ⊙ n + z ⊙ h_{t−1} = n + z ⊙ (h_{t−1} − n)
                p.H[i] = GpuMath.Fma(z, p.HPrev[i] - n, n);
                p.Gates[g0] = r;
                p.Gates[g0 + hs] = z;
                p.Gates[g0 + 2 * hs] = n;
                p.State[i] = hn;
            }
        }
    }

    /// <summary>
    /// One step's gate gradients for unit j of batch row b, the CPU's RecurrentCells backward kernels, with ∂L/∂h_t =
    /// Dh (carried from step t + 1) + Dy (this step's output gradient). Writes ∂L/∂(input projection) into DGx and
    /// ∂L/∂(recurrent projection) into DGh (the same values but for the GRU's candidate, which W_hn h reaches through r),
    /// updates Dc, and leaves in Dh the part of ∂L/∂h_{t−1} that bypasses W_hh (the GRU's z ⊙ ∂L/∂h_t, else zero).
    /// </summary>
    [Kernel]
    static void BackwardKernel(RecurrentArgs p)
    {
        int hs = p.Hidden;
        for (int i = GpuMath.GridFirst; i < p.Count; i += GpuMath.GridStride)
        {
            int b = i / hs, j = i - b * hs;
            float dh = p.Dh[i] + p.Dy[i];
            if (p.Cell == (int)RecurrentCell.Tanh)
            {
                // ∂L/∂a = ∂L/∂h_t ⊙ (1 − h_t²), a the pre-activation
                long g = (long)b * hs + j;
                float hv = p.H[i];
                float da = dh * (1f - hv * hv);
                p.DGx[g] = da;
                p.DGh[g] = da;
                p.Dh[i] = 0f;
            }
            else if (p.Cell == (int)RecurrentCell.Lstm)
            {
                long g0 = (long)b * 4 * hs + j;
                float ig = p.Gates[g0], fg = p.Gates[g0 + hs], gg = p.Gates[g0 + 2 * hs], og = p.Gates[g0 + 3 * hs];
                float tc = GpuMath.Tanh(p.State[i], out float sech2);
                // ∂L/∂c_t = (what step t + 1 sent) + ∂L/∂h_t ⊙ o ⊙ (1 − tanh² c_t);
                // ∂L/∂o = ∂L/∂h_t ⊙ tanh c_t
                float dct = GpuMath.Fma(dh * og, sech2, p.Dc[i]);
                float dog = dh * tc;
                // c_t = f ⊙ c_{t−1} + i ⊙ g
                float di = dct * gg, df = dct * p.CPrev[i], dg = dct * ig;
                p.Dc[i] = dct * fg;
                // through the activations: σ′ = σ(1 − σ), tanh′ = 1 − tanh²
                float dai = di * ig * (1f - ig), daf = df * fg * (1f - fg), dag = dg * (1f - gg * gg);
                float dao = dog * og * (1f - og);
                p.DGx[g0] = dai;
                p.DGx[g0 + hs] = daf;
                p.DGx[g0 + 2 * hs] = dag;
                p.DGx[g0 + 3 * hs] = dao;
                p.DGh[g0] = dai;
                p.DGh[g0 + hs] = daf;
                p.DGh[g0 + 2 * hs] = dag;
                p.DGh[g0 + 3 * hs] = dao;
                p.Dh[i] = 0f;
            }
            else
            {
                long g0 = (long)b * 3 * hs + j;
                float r = p.Gates[g0], z = p.Gates[g0 + hs], n = p.Gates[g0 + 2 * hs];
                // h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
                float dn = dh * (1f - z);
                float dz = dh * (p.HPrev[i] - n);
                // n = tanh(a_n), a_n = W_in x + b_in + r ⊙ (W_hn h + b_hn)
                float dan = dn * (1f - n * n);
                float dr = dan * p.State[i];
                float dar = dr * r * (1f - r), daz = dz * z * (1f - z);
                p.DGx[g0] = dar;
                p.DGx[g0 + hs] = daz;
                p.DGx[g0 + 2 * hs] = dan;
                p.DGh[g0] = dar;
                p.DGh[g0 + hs] = daz;
                p.DGh[g0 + 2 * hs] = dan * r;
                p.Dh[i] = dh * z;
            }
        }
    }
}

/// <summary>
/// One recurrent layer's device buffers for a (T, B) sequence: the outputs, the saved gates and states, ∂L/∂y, and the
/// scratch of forward and backward. Sized once; a model keeps one per layer and makes new ones when T or B changes.
/// </summary>
public sealed class GpuRecurrentActivations : IDisposable
{
    readonly GpuTensor[] _owned;

    /// <summary>Buffers for <paramref name="cell"/> over T = <paramref name="steps"/>, B = <paramref name="batch"/>.</summary>
    public GpuRecurrentActivations(GpuDevice device, RecurrentCell cell, int steps, int batch, int inputSize, int hiddenSize)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (steps < 1 || batch < 1 || inputSize < 1 || hiddenSize < 1)
            throw new ArgumentOutOfRangeException(nameof(steps), $"T, B, I and H must be positive; got T = {steps}, " +
                $"B = {batch}, I = {inputSize}, H = {hiddenSize}.");
        Device = device;
        Cell = cell;
        (Steps, Batch, InputSize, HiddenSize) = (steps, batch, inputSize, hiddenSize);
        GateWidth = checked(Recurrent.GateCount(cell) * hiddenSize);
        int rows = checked(steps * batch), sequence = checked(rows * hiddenSize), gates = checked(rows * GateWidth);
        Y = device.Zeros(steps, batch, hiddenSize);
        DY = device.Zeros(steps, batch, hiddenSize);
        Gates = device.Zeros(gates);
        States = device.Zeros(cell == RecurrentCell.Tanh ? 0 : sequence);
        RecurrentGates = device.Zeros(batch * GateWidth);
        Zeros = device.Zeros(batch * hiddenSize);
        Dh = device.Zeros(batch * hiddenSize);
        Dc = device.Zeros(batch * hiddenSize);
        DInputGates = device.Zeros(gates);
        // The tanh RNN and the LSTM send the same gradient into both projections; the GRU's candidate does not.
        DRecurrentGates = cell == RecurrentCell.Gru ? device.Zeros(gates) : DInputGates;
        _owned = [Y, DY, Gates, States, RecurrentGates, Zeros, Dh, Dc, DInputGates, DRecurrentGates];
    }

    public GpuDevice Device { get; }
    public RecurrentCell Cell { get; }
    public int Steps { get; }
    public int Batch { get; }
    public int InputSize { get; }
    public int HiddenSize { get; }

    /// <summary>G·H, the width of a row of gates.</summary>
    public int GateWidth { get; }

    /// <summary>The hidden states h_t, (T, B, H), written by Forward.</summary>
    public GpuTensor Y { get; }

    /// <summary>∂L/∂y, (T, B, H): the caller fills it before Backward.</summary>
    public GpuTensor DY { get; }

    /// <summary>(T, B, G·H): the input projection, then the activated gates of every step.</summary>
    internal GpuTensor Gates { get; }

    /// <summary>(T, B, H): c_t (LSTM) or W_hn h_{t−1} + b_hn (GRU); empty for the tanh RNN.</summary>
    internal GpuTensor States { get; }

    /// <summary>(B, G·H): one step's h_{t−1}·W_hhᵀ + b_hh.</summary>
    internal GpuTensor RecurrentGates { get; }

    /// <summary>
    /// (B, H) of zeros: the initial states h_{−1} and c_{−1}, and a stand-in for views a kernel does not read.
    /// </summary>
    internal GpuTensor Zeros { get; }

    /// <summary>(B, H): ∂L/∂h and ∂L/∂c carried from one step back to the one before.</summary>
    internal GpuTensor Dh { get; }

    /// <inheritdoc cref="Dh"/>
    internal GpuTensor Dc { get; }

    /// <summary>(T, B, G·H): ∂L/∂(input projection) of every step.</summary>
    internal GpuTensor DInputGates { get; }

    /// <summary>(T, B, G·H): ∂L/∂(recurrent projection) of every step (the same buffer but for the GRU).</summary>
    internal GpuTensor DRecurrentGates { get; }

    public void Dispose()
    {
        foreach (var t in _owned.Distinct()) t.Dispose();
    }
}

internal struct RecurrentArgs
{
    public ArrayView<float> Gates, Hg, HPrev, CPrev, H, State, Dh, Dc, Dy, DGx, DGh;
    public int Cell, Hidden, Count;
}
