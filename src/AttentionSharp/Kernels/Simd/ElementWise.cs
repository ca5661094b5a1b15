using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AttentionSharp.Kernels.Simd;

/// <summary>f(x), one lane at a time, for every register width.</summary>
internal interface IUnaryOperator
{
    static abstract T Invoke<T>(T x) where T : unmanaged, ISimd<T>;
}

/// <summary>f(a, b), one lane at a time, for every register width.</summary>
internal interface IBinaryOperator
{
    static abstract T Invoke<T>(T a, T b) where T : unmanaged, ISimd<T>;
}

/// <summary>(f(x), g(x)) at once, one lane at a time, for every register width: two functions that share work.</summary>
internal interface IPairOperator
{
    /// <summary>Returns f(x) and sets <paramref name="second"/> to g(x).</summary>
    static abstract T Invoke<T>(T x, out T second) where T : unmanaged, ISimd<T>;
}

/// <summary>
/// Loops for element-wise kernels: the widest enabled register over the body, one float at a time over the tail,
/// threads over large spans. Callers validate lengths; spans may alias element for element (in place).
/// </summary>
internal static unsafe class ElementWise
{
    /// <summary>y = x, threaded over large spans.</summary>
    public static void Copy(Span<float> y, ReadOnlySpan<float> x)
    {
        Guard.SameLength(nameof(y), y.Length, x.Length, nameof(x));
        Map<Identity>(y, x);
    }

    /// <summary>y = a + b: TensorPrimitives.Add's floats, threaded over large spans.</summary>
    public static void Add(Span<float> y, ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Guard.SameLength(nameof(y), y.Length, a.Length, nameof(a));
        Guard.SameLength(nameof(b), b.Length, a.Length, nameof(a));
        Map<Sum>(y, a, b);
    }

    /// <summary>y = a·b: TensorPrimitives.Multiply's floats, threaded over large spans.</summary>
    public static void Multiply(Span<float> y, ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Guard.SameLength(nameof(y), y.Length, a.Length, nameof(a));
        Guard.SameLength(nameof(b), b.Length, a.Length, nameof(a));
        Map<Product>(y, a, b);
    }

    /// <summary>y += a·b, rounded twice (not fused): TensorPrimitives.MultiplyAdd's floats, threaded over large spans.</summary>
    public static void MultiplyAccumulate(Span<float> y, ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Guard.SameLength(nameof(y), y.Length, a.Length, nameof(a));
        Guard.SameLength(nameof(b), b.Length, a.Length, nameof(a));
        Accumulate<Product>(y, a, b);
    }

    /// <summary>y = 0, threaded over large spans.</summary>
    public static void Clear(Span<float> y)
    {
        fixed (float* py = y)
            Work.Elements(y.Length, new ClearKernel(py));
    }

    readonly struct ClearKernel(float* y) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T> =>
            new Span<float>(y + start, end - start).Clear();
    }

    readonly struct Identity : IUnaryOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T x) where T : unmanaged, ISimd<T> => x;
    }

    readonly struct Sum : IBinaryOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T a, T b) where T : unmanaged, ISimd<T> => a + b;
    }

    readonly struct Product : IBinaryOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Invoke<T>(T a, T b) where T : unmanaged, ISimd<T> => a * b;
    }

    /// <summary>y = f(x).</summary>
    public static void Map<TOp>(Span<float> y, ReadOnlySpan<float> x) where TOp : struct, IUnaryOperator
    {
        fixed (float* py = y)
        fixed (float* px = x)
            Work.Elements(x.Length, new MapKernel<TOp>(py, px));
    }

    /// <summary>y = f(a, b).</summary>
    public static void Map<TOp>(Span<float> y, ReadOnlySpan<float> a, ReadOnlySpan<float> b) where TOp : struct, IBinaryOperator
    {
        fixed (float* py = y)
        fixed (float* pa = a)
        fixed (float* pb = b)
            Work.Elements(a.Length, new MapKernel2<TOp>(py, pa, pb));
    }

    /// <summary>y = f(x) and z = g(x).</summary>
    public static void MapPair<TOp>(Span<float> y, Span<float> z, ReadOnlySpan<float> x) where TOp : struct, IPairOperator
    {
        fixed (float* py = y)
        fixed (float* pz = z)
        fixed (float* px = x)
            Work.Elements(x.Length, new MapPairKernel<TOp>(py, pz, px));
    }

    /// <summary>dx += f(dy, x): the shape of every element-wise backward pass.</summary>
    public static void Accumulate<TOp>(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x)
        where TOp : struct, IBinaryOperator
    {
        fixed (float* pdx = dx)
        fixed (float* pdy = dy)
        fixed (float* px = x)
            Work.Elements(x.Length, new AccumulateKernel<TOp>(pdx, pdy, px));
    }

    readonly struct MapKernel<TOp>(float* y, float* x) : IRangeKernel where TOp : struct, IUnaryOperator
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int i = start;
            for (; i <= end - T.Count; i += T.Count) T.Store(TOp.Invoke(T.Load(in x[i])), ref y[i]);
            for (; i < end; i++) Vec1.Store(TOp.Invoke(Vec1.Load(in x[i])), ref y[i]);
        }
    }

    readonly struct MapKernel2<TOp>(float* y, float* a, float* b) : IRangeKernel where TOp : struct, IBinaryOperator
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int i = start;
            for (; i <= end - T.Count; i += T.Count) T.Store(TOp.Invoke(T.Load(in a[i]), T.Load(in b[i])), ref y[i]);
            for (; i < end; i++) Vec1.Store(TOp.Invoke(Vec1.Load(in a[i]), Vec1.Load(in b[i])), ref y[i]);
        }
    }

    readonly struct MapPairKernel<TOp>(float* y, float* z, float* x) : IRangeKernel where TOp : struct, IPairOperator
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int i = start;
            for (; i <= end - T.Count; i += T.Count)
            {
                T.Store(TOp.Invoke(T.Load(in x[i]), out T second), ref y[i]);
                T.Store(second, ref z[i]);
            }
            for (; i < end; i++)
            {
                Vec1.Store(TOp.Invoke(Vec1.Load(in x[i]), out Vec1 second), ref y[i]);
                Vec1.Store(second, ref z[i]);
            }
        }
    }

    readonly struct AccumulateKernel<TOp>(float* dx, float* dy, float* x) : IRangeKernel where TOp : struct, IBinaryOperator
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            int i = start;
            for (; i <= end - T.Count; i += T.Count)
                T.Store(T.Load(in dx[i]) + TOp.Invoke(T.Load(in dy[i]), T.Load(in x[i])), ref dx[i]);
            for (; i < end; i++)
                Vec1.Store(Vec1.Load(in dx[i]) + TOp.Invoke(Vec1.Load(in dy[i]), Vec1.Load(in x[i])), ref dx[i]);
        }
    }
}
