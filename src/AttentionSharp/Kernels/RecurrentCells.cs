// The gate math of one time step of each recurrent cell, forward and backward, for the driver in Recurrent.cs. Each kernel
// runs over batch rows; within a row, unit j of gate block k sits at column k·H + j, so one register covers the same units
// of every gate. The body of each is written once for a register of units and reused for the scalar tail.
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

public static unsafe partial class Recurrent
{
    /// <summary>The gate math of units j … j + T.Count − 1 of batch row b.</summary>
    interface IUnitKernel
    {
        void Units<T>(int b, int j) where T : unmanaged, ISimd<T>;
    }

    /// <summary>Runs a step's gate math over batch rows [start, end): whole registers of units, then a scalar tail.</summary>
    readonly struct StepRows<TUnit>(TUnit unit, int hiddenSize) : IRangeKernel where TUnit : struct, IUnitKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            for (int b = start; b < end; b++)
            {
                int j = 0;
                for (; j <= hiddenSize - T.Count; j += T.Count) unit.Units<T>(b, j);
                for (; j < hiddenSize; j++) unit.Units<Vec1>(b, j);
            }
        }
    }

    /// <summary>Runs <paramref name="unit"/> over the B rows of one step.</summary>
    static void Step<TUnit>(int batch, int hiddenSize, TUnit unit) where TUnit : struct, IUnitKernel =>
        Work.Rows(batch, hiddenSize, new StepRows<TUnit>(unit, hiddenSize));

    readonly struct TanhForward(float* h, float* xg, float* hg, int hiddenSize) : IUnitKernel
    {
        public void Units<T>(int b, int j) where T : unmanaged, ISimd<T>
        {
            long o = (long)b * hiddenSize + j;
            // h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)
            T.Store(SimdMath.Tanh(T.Load(in xg[o]) + T.Load(in hg[o])), ref h[o]);
        }
    }

    readonly struct TanhBackward(float* dxg, float* dh, float* h, int hiddenSize) : IUnitKernel
    {
        public void Units<T>(int b, int j) where T : unmanaged, ISimd<T>
        {
            long o = (long)b * hiddenSize + j;
            T hv = T.Load(in h[o]);
            // ∂L/∂a = ∂L/∂h_t ⊙ (1 − h_t²), a the pre-activation; h_{t−1} is reached only through W_hh
            // (the GEMM after this)
            T.Store(T.Load(in dh[o]) * (T.Create(1f) - hv * hv), ref dxg[o]);
            T.Store(T.Create(0f), ref dh[o]);
        }
    }

    readonly struct LstmForward(float* h, float* c, float* gates, float* xg, float* hg, float* cPrev,
        int hiddenSize) : IUnitKernel
    {
        public void Units<T>(int b, int j) where T : unmanaged, ISimd<T>
        {
            int hs = hiddenSize;
            long g0 = (long)b * 4 * hs + j, o = (long)b * hs + j;
            // i = σ(W_ii x + b_ii + W_hi h + b_hi), f = σ(W_if x + b_if + W_hf h + b_hf),
            // g = tanh(W_ig x + b_ig + W_hg h + b_hg), o = σ(W_io x + b_io + W_ho h + b_ho)
            T i = SimdMath.Sigmoid(T.Load(in xg[g0]) + T.Load(in hg[g0]));
            T f = SimdMath.Sigmoid(T.Load(in xg[g0 + hs]) + T.Load(in hg[g0 + hs]));
            T g = SimdMath.Tanh(T.Load(in xg[g0 + 2 * hs]) + T.Load(in hg[g0 + 2 * hs]));
            T og = SimdMath.Sigmoid(T.Load(in xg[g0 + 3 * hs]) + T.Load(in hg[g0 + 3 * hs]));
            // c_t = f ⊙ c_{t−1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)
            T ct = T.MultiplyAdd(f, T.Load(in cPrev[o]), i * g);
            T.Store(og * SimdMath.Tanh(ct), ref h[o]);
            T.Store(ct, ref c[o]);
            T.Store(i, ref gates[g0]);
            T.Store(f, ref gates[g0 + hs]);
            T.Store(g, ref gates[g0 + 2 * hs]);
            T.Store(og, ref gates[g0 + 3 * hs]);
        }
    }

    readonly struct LstmBackward(float* dxg, float* dh, float* dc, float* gates, float* c, float* cPrev,
        int hiddenSize) : IUnitKernel
    {
        public void Units<T>(int b, int j) where T : unmanaged, ISimd<T>
        {
            int hs = hiddenSize;
            long g0 = (long)b * 4 * hs + j, o = (long)b * hs + j;
            T one = T.Create(1f);
            T i = T.Load(in gates[g0]), f = T.Load(in gates[g0 + hs]), g = T.Load(in gates[g0 + 2 * hs]),
                og = T.Load(in gates[g0 + 3 * hs]);
            T dhv = T.Load(in dh[o]);
            T tc = SimdMath.Tanh(T.Load(in c[o]), out T sech2);
            // h_t = o ⊙ tanh(c_t): ∂L/∂c_t = (what step t + 1 sent) + ∂L/∂h_t ⊙ o ⊙ (1 − tanh² c_t);
            // ∂L/∂o = ∂L/∂h_t ⊙ tanh c_t
            T dct = T.MultiplyAdd(dhv * og, sech2, T.Load(in dc[o]));
            T dog = dhv * tc;
            // c_t = f ⊙ c_{t−1} + i ⊙ g: ∂L/∂i = ∂L/∂c_t ⊙ g, ∂L/∂f = ∂L/∂c_t ⊙ c_{t−1},
            // ∂L/∂g = ∂L/∂c_t ⊙ i, ∂L/∂c_{t−1} = ∂L/∂c_t ⊙ f
            T di = dct * g, df = dct * T.Load(in cPrev[o]), dg = dct * i;
            T.Store(dct * f, ref dc[o]);
            // through the activations: σ′ = σ(1 − σ), tanh′ = 1 − tanh²
            T.Store(di * i * (one - i), ref dxg[g0]);
            T.Store(df * f * (one - f), ref dxg[g0 + hs]);
            T.Store(dg * (one - g * g), ref dxg[g0 + 2 * hs]);
            T.Store(dog * og * (one - og), ref dxg[g0 + 3 * hs]);
            T.Store(T.Create(0f), ref dh[o]);
        }
    }

    readonly struct GruForward(float* h, float* gates, float* hn, float* xg, float* hg, float* hPrev,
        int hiddenSize) : IUnitKernel
    {
        public void Units<T>(int b, int j) where T : unmanaged, ISimd<T>
        {
            int hs = hiddenSize;
            long g0 = (long)b * 3 * hs + j, o = (long)b * hs + j;
            // r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz)
            T r = SimdMath.Sigmoid(T.Load(in xg[g0]) + T.Load(in hg[g0]));
            T z = SimdMath.Sigmoid(T.Load(in xg[g0 + hs]) + T.Load(in hg[g0 + hs]));
            // n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
            T hnv = T.Load(in hg[g0 + 2 * hs]);
            T n = SimdMath.Tanh(T.MultiplyAdd(r, hnv, T.Load(in xg[g0 + 2 * hs])));
            // h_t = (1 − z) ⊙ n + z ⊙ h_{t−1} = n + z ⊙ (h_{t−1} − n)
            T.Store(T.MultiplyAdd(z, T.Load(in hPrev[o]) - n, n), ref h[o]);
            T.Store(r, ref gates[g0]);
            T.Store(z, ref gates[g0 + hs]);
            T.Store(n, ref gates[g0 + 2 * hs]);
            T.Store(hnv, ref hn[o]);
        }
    }

    readonly struct GruBackward(float* dxg, float* dhg, float* dh, float* gates, float* hn, float* hPrev,
        int hiddenSize) : IUnitKernel
    {
        public void Units<T>(int b, int j) where T : unmanaged, ISimd<T>
        {
            int hs = hiddenSize;
            long g0 = (long)b * 3 * hs + j, o = (long)b * hs + j;
            T one = T.Create(1f);
            T r = T.Load(in gates[g0]), z = T.Load(in gates[g0 + hs]), n = T.Load(in gates[g0 + 2 * hs]);
            T dhv = T.Load(in dh[o]);
            // h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}: ∂L/∂n = ∂L/∂h_t ⊙ (1 − z),
            // ∂L/∂z = ∂L/∂h_t ⊙ (h_{t−1} − n), and h_{t−1} directly gets ∂L/∂h_t ⊙ z
            T dn = dhv * (one - z);
            T dz = dhv * (T.Load(in hPrev[o]) - n);
            // n = tanh(a_n), a_n = W_in x + b_in + r ⊙ (W_hn h + b_hn): ∂L/∂a_n = ∂L/∂n ⊙ (1 − n²); the recurrent
            // part gets it through r, and ∂L/∂r = ∂L/∂a_n ⊙ (W_hn h + b_hn)
            T dan = dn * (one - n * n);
            T dr = dan * T.Load(in hn[o]);
            T dar = dr * r * (one - r), daz = dz * z * (one - z);
            T.Store(dar, ref dxg[g0]);
            T.Store(daz, ref dxg[g0 + hs]);
            T.Store(dan, ref dxg[g0 + 2 * hs]);
            T.Store(dar, ref dhg[g0]);
            T.Store(daz, ref dhg[g0 + hs]);
            T.Store(dan * r, ref dhg[g0 + 2 * hs]);
            T.Store(dhv * z, ref dh[o]);
        }
    }
}
