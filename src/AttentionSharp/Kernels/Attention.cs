// Sources: Vaswani et al., "Attention Is All You Need" (2017), eq. 1; Dao, "FlashAttention-2: Faster Attention with Better
// Parallelism and Work Partitioning" (2023) for the tiled kernels in AttentionFlash.cs.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>
/// A (B, H, T, HS) operand of attention with unit stride along HS: element (b, h, t, c) lies at
/// <c>Data[b·BatchStride + h·HeadStride + t·RowStride + c]</c>. The heads of a (B, T, NH, HS) tensor viewed as
/// (B, NH, T, HS) fit without a copy (RowStride = NH·HS, or 3·NH·HS inside a fused QKV projection).
/// </summary>
public readonly unsafe struct HeadTensor(float* data, long batchStride, long headStride, long rowStride)
{
    public float* Data { get; } = data;
    public long BatchStride { get; } = batchStride;
    public long HeadStride { get; } = headStride;
    public long RowStride { get; } = rowStride;

    /// <summary>A dense (B, H, T, HS) buffer.</summary>
    public static HeadTensor Dense(float* data, int heads, int time, int headSize) =>
        new(data, (long)heads * time * headSize, (long)time * headSize, headSize);

    /// <summary>Row 0 of head h of batch b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* Head(int b, int h) => Data + b * BatchStride + h * HeadStride;

    public bool IsNull => Data == null;
}

/// <summary>
/// Everything about one attention call except its operands: the sizes, the scale, and the masks, which the kernels apply
/// by index arithmetic (causal), flags (key padding) and broadcast strides (additive), never as a materialised mask.
/// </summary>
public readonly unsafe struct AttentionProblem
{
    /// <summary>B.</summary>
    public int Batch { get; init; }

    /// <summary>NH: query heads.</summary>
    public int Heads { get; init; }

    /// <summary>NKV: key/value heads; it divides NH, and query head h reads key/value head h / (NH / NKV).</summary>
    public int KvHeads { get; init; }

    /// <summary>Tq.</summary>
    public int QueryLength { get; init; }

    /// <summary>Tk.</summary>
    public int KeyLength { get; init; }

    /// <summary>HS.</summary>
    public int HeadSize { get; init; }

    /// <summary>The factor on QKᵀ.</summary>
    public float Scale { get; init; }

    /// <summary>Query i sees key j only when j ≤ i + (Tk − Tq) (aligned bottom-right, as with a K/V cache).</summary>
    public bool Causal { get; init; }

    /// <summary>(B × Tk) flags, true where key j of batch b is padding; null for none.</summary>
    public bool* KeyPadding { get; init; }

    /// <summary>The additive mask, or null; element (b, h, i, j) at b·StrideB + h·StrideH + i·StrideQ + j·StrideK.</summary>
    public float* Additive { get; init; }

    public long AdditiveStrideB { get; init; }
    public long AdditiveStrideH { get; init; }
    public long AdditiveStrideQ { get; init; }
    public long AdditiveStrideK { get; init; }

    /// <summary>Dropout probability on the weights; 0 for none.</summary>
    public float Dropout { get; init; }

    /// <summary>Seed of the counter-based dropout stream (see <see cref="AttentionMasks.Keep"/>).</summary>
    public ulong DropoutSeed { get; init; }

    /// <summary>NH / NKV: query heads per key/value head.</summary>
    public int Group => Heads / KvHeads;

    /// <summary>Checks sizes and the dropout probability; the kernels rely on them.</summary>
    public void Validate()
    {
        if (Batch < 0 || Heads < 1 || KvHeads < 1 || QueryLength < 0 || KeyLength < 0 || HeadSize < 1)
            throw new ArgumentException($"Attention sizes must be positive: B = {Batch}, NH = {Heads}, NKV = {KvHeads}, Tq = {QueryLength}, Tk = {KeyLength}, HS = {HeadSize}.");
        if (Heads % KvHeads != 0)
            throw new ArgumentException($"The number of key/value heads ({KvHeads}) must divide the number of query heads ({Heads}).");
        Kernels.Dropout.CheckProbability(Dropout);
    }
}

/// <summary>The masks and the dropout stream, shared by the plain and the flash kernels so both see identical scores.</summary>
internal static unsafe class AttentionMasks
{
    /// <summary>
    /// Scales a run of scores and applies the masks to it: s_j ← s_j·scale + A(b, h, i, j0 + j), then −∞ where key
    /// j0 + j is padding or lies after query i's causal limit. Already-scaled scores pass <paramref name="scale"/> = 1.
    /// </summary>
    public static void Apply<T>(in AttentionProblem p, float* s, int n, int b, int h, int i, int j0, float scale)
        where T : unmanaged, ISimd<T>
    {
        if (scale != 1f)
        {
            T vs = T.Create(scale);
            int j = 0;
            for (; j <= n - T.Count; j += T.Count) T.Store(T.Load(in s[j]) * vs, ref s[j]);
            for (; j < n; j++) s[j] *= scale;
        }
        if (p.Additive != null)
        {
            float* a = p.Additive + b * p.AdditiveStrideB + h * p.AdditiveStrideH + i * p.AdditiveStrideQ + j0 * p.AdditiveStrideK;
            long sk = p.AdditiveStrideK;
            if (sk == 1)
            {
                int j = 0;
                for (; j <= n - T.Count; j += T.Count) T.Store(T.Load(in s[j]) + T.Load(in a[j]), ref s[j]);
                for (; j < n; j++) s[j] += a[j];
            }
            else for (int j = 0; j < n; j++) s[j] += a[j * sk];
        }
        if (p.KeyPadding != null)
        {
            bool* pad = p.KeyPadding + (long)b * p.KeyLength + j0;
            for (int j = 0; j < n; j++) if (pad[j]) s[j] = float.NegativeInfinity;
        }
        if (p.Causal)
        {
            // Keys after i + (Tk − Tq) are in the future of query i.
            int first = Math.Max(0, i + (p.KeyLength - p.QueryLength) + 1 - j0);
            for (int j = first; j < n; j++) s[j] = float.NegativeInfinity;
        }
    }

    /// <summary>
    /// Whether weight (b, h, i, j) survives dropout: element ((b·NH + h)·Tq + i)·Tk + j of the stream of
    /// <see cref="Kernels.Dropout"/> seeded with the problem's seed, i.e. the mask Dropout.Forward draws over the whole
    /// (B, NH, Tq, Tk) weight tensor at offset 0. It depends on nothing else, so the backward pass regenerates it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Keep(in AttentionProblem p, int b, int h, int i, int j) =>
        Dropout.Keep(p.DropoutSeed, (((ulong)b * (ulong)p.Heads + (ulong)h) * (ulong)p.QueryLength + (ulong)i) * (ulong)p.KeyLength + (ulong)j, p.Dropout);

    /// <summary>m_j = 1/(1 − p) where weight (b, h, i, j0 + j) is kept, else 0, for j in [0, n).</summary>
    public static void DropoutRow(in AttentionProblem p, float* m, int n, int b, int h, int i, int j0)
    {
        float kept = 1f / (1f - p.Dropout);
        for (int j = 0; j < n; j++) m[j] = Keep(in p, b, h, i, j0 + j) ? kept : 0f;
    }
}

/// <summary>How the attention kernels hand out work: independent items claimed one at a time by each thread.</summary>
internal static unsafe class AttentionWork
{
    /// <summary>
    /// Runs <paramref name="body"/>(item, scratch) for every item in [0, count): each thread claims the next unclaimed item,
    /// so uneven items (causal tiles) balance, and gets its own <paramref name="scratchFloats"/> floats of 64-byte-aligned
    /// scratch. Every item is computed by one thread from start to end, so results do not depend on the thread count.
    /// </summary>
    public static void Run(int count, long scratchFloats, Action<int, IntPtr> body)
    {
        if (count <= 0) return;
        int next = 0;
        // A chunked job of one chunk per thread: a thread kept off the cores by other processes is not waited for.
        Parallel.For(Math.Min(count, Parallel.ThreadCount), 1, (_, _) =>
        {
            void* scratch = NativeMemory.AlignedAlloc((nuint)(Math.Max(1, scratchFloats) * sizeof(float)), 64);
            try
            {
                int item;
                while ((item = Interlocked.Increment(ref next) - 1) < count) body(item, (IntPtr)scratch);
            }
            finally
            {
                NativeMemory.AlignedFree(scratch);
            }
        });
    }
}
