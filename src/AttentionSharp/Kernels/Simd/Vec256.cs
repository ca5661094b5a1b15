using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionSharp.Kernels.Simd;

/// <summary>Eight floats in one AVX2 register; used when <see cref="Vector256.IsHardwareAccelerated"/>.</summary>
internal readonly struct Vec256 : ISimd<Vec256>
{
    readonly Vector256<float> _v;

    Vec256(Vector256<float> v) => _v = v;

    public static int Count => Vector256<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Create(float value) => new(Vector256.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Load(ref readonly float source) => new(Vector256.LoadUnsafe(in source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vec256 value, ref float destination) => value._v.StoreUnsafe(ref destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 LoadBytes(ref readonly byte source) =>
        new(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(
            Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<ulong>(in source)).AsByte())));

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator +(Vec256 a, Vec256 b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator -(Vec256 a, Vec256 b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator *(Vec256 a, Vec256 b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator /(Vec256 a, Vec256 b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator -(Vec256 a) => new(-a._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 MultiplyAdd(Vec256 a, Vec256 b, Vec256 c) => new(Vector256.FusedMultiplyAdd(a._v, b._v, c._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Min(Vec256 a, Vec256 b) => new(Vector256.Min(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Max(Vec256 a, Vec256 b) => new(Vector256.Max(a._v, b._v));

    /// <summary>
    /// x86's maxps/minps return their second operand when either is NaN, so with the constant first a NaN x comes through
    /// (the tests check it on this path).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 Clamp(Vec256 x, float low, float high) =>
        new(Vector256.MinNative(Vector256.Create(high), Vector256.MaxNative(Vector256.Create(low), x._v)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Abs(Vec256 a) => new(Vector256.Abs(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Sqrt(Vec256 a) => new(Vector256.Sqrt(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Round(Vec256 a) => new(Vector256.Round(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 CopySign(Vec256 value, Vec256 sign) => new(Vector256.CopySign(value._v, sign._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 LessThan(Vec256 a, Vec256 b) => new(Vector256.LessThan(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 GreaterThan(Vec256 a, Vec256 b) => new(Vector256.GreaterThan(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Select(Vec256 mask, Vec256 ifTrue, Vec256 ifFalse) => new(Vector256.ConditionalSelect(mask._v, ifTrue._v, ifFalse._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 Pow2(Vec256 n) =>
        new(Vector256.ShiftLeft(Vector256.ConvertToInt32Native(n._v) + Vector256.Create(127), 23).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vec256 a) => Vector256.Sum(a._v);
}
