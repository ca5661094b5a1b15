using System.Runtime.CompilerServices;

namespace AttentionSharp.Kernels.Simd;

/// <summary>Per-row loops shared by softmax, log-softmax and cross-entropy.</summary>
internal static unsafe class RowMath
{
    /// <summary>
    /// y_j = e^(x_j − m) for j in [0, n); returns Σ_j y_j. <paramref name="y"/> may equal <paramref name="x"/>. In a row
    /// of <paramref name="width"/> floats with room for n rounded up to whole vectors, the last partial vector is
    /// computed whole (a row narrower than a vector takes one vector exponential, not n scalar ones) and y_j past n
    /// receives e^(x_j − m) of whatever x holds there; only the first n enter the sum, in the same order either way
    /// (the vector lanes, then the rest one by one).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ExpShiftSum<T>(float* y, float* x, int n, float m, int width = 0) where T : unmanaged, ISimd<T>
    {
        T shift = T.Create(m), acc = T.Create(0f);
        int j = 0;
        for (; j <= n - T.Count; j += T.Count)
        {
            T e = SimdMath.Exp(T.Load(in x[j]) - shift);
            T.Store(e, ref y[j]);
            acc += e;
        }
        float sum = T.Sum(acc);
        if (j < n && j + T.Count <= width)
        {
            T.Store(SimdMath.Exp(T.Load(in x[j]) - shift), ref y[j]);
            for (; j < n; j++) sum += y[j];
        }
        for (; j < n; j++)
        {
            Vec1 e = SimdMath.Exp(Vec1.Load(in x[j]) - Vec1.Create(m));
            Vec1.Store(e, ref y[j]);
            sum += e.Value;
        }
        return sum;
    }

    /// <summary>Σ_j e^(x_j − m) over j in [0, n), storing nothing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SumExpShift<T>(float* x, int n, float m) where T : unmanaged, ISimd<T>
    {
        T shift = T.Create(m), acc = T.Create(0f);
        int j = 0;
        for (; j <= n - T.Count; j += T.Count) acc += SimdMath.Exp(T.Load(in x[j]) - shift);
        float sum = T.Sum(acc);
        for (; j < n; j++) sum += SimdMath.Exp(Vec1.Load(in x[j]) - Vec1.Create(m)).Value;
        return sum;
    }

    /// <summary>
    /// log Σ_j e^(x_j) = m + log Σ_j e^(x_j − m) with m = max_j x_j, so no term overflows. A row that is all −∞ gives −∞.
    /// </summary>
    public static float LogSumExp<T>(float* x, int n) where T : unmanaged, ISimd<T>
    {
        float m = System.Numerics.Tensors.TensorPrimitives.Max(new ReadOnlySpan<float>(x, n));
        if (float.IsNegativeInfinity(m)) return m;
        return m + MathF.Log(SumExpShift<T>(x, n, m));
    }
}
