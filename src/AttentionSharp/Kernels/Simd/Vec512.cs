using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionSharp.Kernels.Simd;

/// <summary>Sixteen floats in one AVX-512 register; used when <see cref="Vector512.IsHardwareAccelerated"/>.</summary>
internal readonly struct Vec512 : ISimd<Vec512>
{
    readonly Vector512<float> _v;

    Vec512(Vector512<float> v) => _v = v;

    public static int Count => Vector512<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Create(float value) => new(Vector512.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Load(ref readonly float source) => new(Vector512.LoadUnsafe(in source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vec512 value, ref float destination) => value._v.StoreUnsafe(ref destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 LoadBytes(ref readonly byte source) =>
        new(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(in source))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator +(Vec512 a, Vec512 b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator -(Vec512 a, Vec512 b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator *(Vec512 a, Vec512 b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator /(Vec512 a, Vec512 b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator -(Vec512 a) => new(-a._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 MultiplyAdd(Vec512 a, Vec512 b, Vec512 c) => new(Vector512.FusedMultiplyAdd(a._v, b._v, c._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Min(Vec512 a, Vec512 b) => new(Vector512.Min(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Max(Vec512 a, Vec512 b) => new(Vector512.Max(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 Clamp(Vec512 x, float low, float high) =>
        new(Vector512.Min(Vector512.Max(x._v, Vector512.Create(low)), Vector512.Create(high)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Abs(Vec512 a) => new(Vector512.Abs(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Sqrt(Vec512 a) => new(Vector512.Sqrt(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Round(Vec512 a) => new(Vector512.Round(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 CopySign(Vec512 value, Vec512 sign) => new(Vector512.CopySign(value._v, sign._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 LessThan(Vec512 a, Vec512 b) => new(Vector512.LessThan(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 GreaterThan(Vec512 a, Vec512 b) => new(Vector512.GreaterThan(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Select(Vec512 mask, Vec512 ifTrue, Vec512 ifFalse) => new(Vector512.ConditionalSelect(mask._v, ifTrue._v, ifFalse._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 Pow2(Vec512 n) =>
        new(Vector512.ShiftLeft(Vector512.ConvertToInt32Native(n._v) + Vector512.Create(127), 23).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vec512 a) => Vector512.Sum(a._v);
}
