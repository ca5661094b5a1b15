namespace AttentionSharp.Kernels.Simd;

/// <summary>
/// One SIMD register of floats, abstracted so a kernel body is written once and instantiated for
/// <see cref="Vec512"/> (AVX-512), <see cref="Vec256"/> (AVX2) and <see cref="Vec1"/> (one float, the scalar fallback
/// and the tail of every loop). Implementations are structs, so the JIT specialises and inlines each instantiation.
/// Masks are values whose lanes are all bits set (true) or zero (false), as the hardware compare instructions return.
/// </summary>
internal interface ISimd<TSelf> where TSelf : unmanaged, ISimd<TSelf>
{
    /// <summary>Number of float lanes.</summary>
    static abstract int Count { get; }

    static abstract TSelf Create(float value);
    static abstract TSelf Load(ref readonly float source);
    static abstract void Store(TSelf value, ref float destination);

    /// <summary>Loads <see cref="Count"/> bytes and converts each to a float (0 → 0f, 1 → 1f): dropout masks.</summary>
    static abstract TSelf LoadBytes(ref readonly byte source);

    static abstract TSelf operator +(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a, TSelf b);
    static abstract TSelf operator *(TSelf a, TSelf b);
    static abstract TSelf operator /(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a);

    /// <summary>a·b + c; fused where the hardware has FMA (the scalar fallback rounds twice).</summary>
    static abstract TSelf MultiplyAdd(TSelf a, TSelf b, TSelf c);

    /// <summary>Lane-wise minimum; NaN in either operand gives NaN (IEEE 754-2019 minimum).</summary>
    static abstract TSelf Min(TSelf a, TSelf b);

    /// <summary>Lane-wise maximum; NaN in either operand gives NaN (IEEE 754-2019 maximum).</summary>
    static abstract TSelf Max(TSelf a, TSelf b);

    /// <summary>
    /// Clamps x into [low, high] (constants, not NaN); NaN in x stays NaN. Where the hardware's min and max are not
    /// IEEE's (AVX2), this is two instructions where <see cref="Min"/> and <see cref="Max"/> take several each.
    /// </summary>
    static abstract TSelf Clamp(TSelf x, float low, float high);

    static abstract TSelf Abs(TSelf a);
    static abstract TSelf Sqrt(TSelf a);

    /// <summary>Round to the nearest integer, ties to even.</summary>
    static abstract TSelf Round(TSelf a);

    /// <summary>|value| with the sign of <paramref name="sign"/>.</summary>
    static abstract TSelf CopySign(TSelf value, TSelf sign);

    static abstract TSelf LessThan(TSelf a, TSelf b);
    static abstract TSelf GreaterThan(TSelf a, TSelf b);

    /// <summary>mask ? ifTrue : ifFalse, lane by lane.</summary>
    static abstract TSelf Select(TSelf mask, TSelf ifTrue, TSelf ifFalse);

    /// <summary>2ⁿ for integral n in [−126, 127], built directly in the exponent field.</summary>
    static abstract TSelf Pow2(TSelf n);

    /// <summary>Sum of all lanes.</summary>
    static abstract float Sum(TSelf a);
}
