using System.Runtime.CompilerServices;

namespace AttentionSharp.Kernels.Simd;

/// <summary>
/// One float: the scalar fallback when no vector hardware is enabled, and the tail of every vector loop.
/// Masks are floats whose bits are all set (true) or zero (false), mirroring the vector compares.
/// </summary>
internal readonly struct Vec1 : ISimd<Vec1>
{
    readonly float _v;

    Vec1(float v) => _v = v;

    public static int Count => 1;

    static readonly float True = BitConverter.Int32BitsToSingle(-1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Create(float value) => new(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Load(ref readonly float source) => new(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vec1 value, ref float destination) => destination = value._v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 LoadBytes(ref readonly byte source) => new(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator +(Vec1 a, Vec1 b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator -(Vec1 a, Vec1 b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator *(Vec1 a, Vec1 b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator /(Vec1 a, Vec1 b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator -(Vec1 a) => new(-a._v);

    // Two roundings on purpose: MathF.FusedMultiplyAdd is a slow library call where the hardware lacks FMA.
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 MultiplyAdd(Vec1 a, Vec1 b, Vec1 c) => new(a._v * b._v + c._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Min(Vec1 a, Vec1 b) => new(MathF.Min(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Max(Vec1 a, Vec1 b) => new(MathF.Max(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Clamp(Vec1 x, float low, float high) => new(MathF.Min(MathF.Max(x._v, low), high));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Abs(Vec1 a) => new(MathF.Abs(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Sqrt(Vec1 a) => new(MathF.Sqrt(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Round(Vec1 a) => new(MathF.Round(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 CopySign(Vec1 value, Vec1 sign) => new(MathF.CopySign(value._v, sign._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 LessThan(Vec1 a, Vec1 b) => new(a._v < b._v ? True : 0f);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 GreaterThan(Vec1 a, Vec1 b) => new(a._v > b._v ? True : 0f);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec1 Select(Vec1 mask, Vec1 ifTrue, Vec1 ifFalse) => BitConverter.SingleToInt32Bits(mask._v) != 0 ? ifTrue : ifFalse;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec1 Pow2(Vec1 n) => new(BitConverter.Int32BitsToSingle(((int)n._v + 127) << 23));

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vec1 a) => a._v;

    /// <summary>The single lane as a float.</summary>
    public float Value => _v;
}
