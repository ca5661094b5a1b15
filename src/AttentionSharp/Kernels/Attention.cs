// Sources: Vaswani et al., "Attention Is All You Need" (2017), eq. 1; Dao, "FlashAttention-2: Faster Attention with Better
// Parallelism and Work Partitioning" (2023) for the tiled kernels in AttentionFlash.cs; Beltagy et al., "Longformer: The
// Long-Document Transformer" (2020) for the sliding window with global tokens.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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

    /// <summary>
    /// Sliding window w (Longformer), 0 for none: query i, at position p_i = i + (Tk − Tq), sees key j only when
    /// |p_i − j| &lt; w — the last w keys, itself included, under the causal mask, and w − 1 on either side without it.
    /// </summary>
    public int Window { get; init; }

    /// <summary>
    /// (Tk) flags by position, true for a global token (Longformer): it attends to every key and every query attends to it,
    /// whatever the window (the causal mask, padding and the additive mask still apply); null for none. Needs a window.
    /// </summary>
    public bool* Global { get; init; }

    /// <summary>Dropout probability on the weights; 0 for none.</summary>
    public float Dropout { get; init; }

    /// <summary>Seed of the counter-based dropout stream (see <see cref="AttentionMasks.DropoutRow"/>).</summary>
    public ulong DropoutSeed { get; init; }

    /// <summary>
    /// The index of batch 0 in a larger batch whose dropout mask this problem draws a part of (0 for a whole batch): a
    /// data-parallel rank holding rows [r·B, (r+1)·B) of a global batch drops what one process would drop there.
    /// </summary>
    public int DropoutFirstBatch { get; init; }

    /// <summary>
    /// (B) counts of the query rows to compute, or null for all: rows at or past QueryLengths[b] of batch b get O = 0
    /// (L = +∞, zero weights), pass no gradient, and their dO is not read. For right-padded sequences whose padded
    /// rows nobody reads (packed sequences, unpacked for attention): the rows computed come out as without it.
    /// </summary>
    public int* QueryLengths { get; init; }

    /// <summary>NH / NKV: query heads per key/value head.</summary>
    public int Group => Heads / KvHeads;

    /// <summary>The query rows of batch b that are computed (<see cref="QueryLengths"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int LiveRows(int b) => QueryLengths == null ? QueryLength : QueryLengths[b];

    /// <summary>Checks sizes and the dropout probability; the kernels rely on them.</summary>
    public void Validate()
    {
        if (Batch < 0 || Heads < 1 || KvHeads < 1 || QueryLength < 0 || KeyLength < 0 || HeadSize < 1)
            throw new ArgumentException($"Attention sizes must be positive: B = {Batch}, NH = {Heads}, NKV = {KvHeads}, " +
                                        $"Tq = {QueryLength}, Tk = {KeyLength}, HS = {HeadSize}.");
        if (Heads % KvHeads != 0)
            throw new ArgumentException(
                $"The number of key/value heads ({KvHeads}) must divide the number of query heads ({Heads}).");
        if (Window < 0) throw new ArgumentException($"The attention window must be positive, or 0 for none; got {Window}.");
        if (Global != null && Window == 0)
            throw new ArgumentException("Global tokens belong to a sliding window; set a window too.");
        if (Window > 0 && QueryLength > KeyLength)
            throw new ArgumentException("A sliding window places the queries at the last Tq of the Tk key positions; " +
                                        $"Tq = {QueryLength} > Tk = {KeyLength}.");
        Kernels.Dropout.CheckProbability(Dropout);
        for (int b = 0; QueryLengths != null && b < Batch; b++)
            if (QueryLengths[b] < 0 || QueryLengths[b] > QueryLength)
                throw new ArgumentException(
                    $"Attention: batch row {b} has {QueryLengths[b]} query rows to compute, outside [0, Tq = {QueryLength}].");
    }
}

/// <summary>The masks and the dropout stream, shared by the plain and the flash kernels so both see identical scores.</summary>
internal static unsafe class AttentionMasks
{
    /// <summary>
    /// Scales a run of scores and applies the masks to it: s_j ← s_j·scale + A(b, h, i, j0 + j), then −∞ where key
    /// j0 + j is padding or lies after query i's causal limit. Already-scaled scores pass <paramref name="scale"/> = 1.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
            float* a = p.Additive + b * p.AdditiveStrideB + h * p.AdditiveStrideH + i * p.AdditiveStrideQ
                       + j0 * p.AdditiveStrideK;
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
        if (p.Window > 0 && !IsGlobalQuery(in p, i))
        {
            // Keys outside [p_i − w + 1, p_i + w − 1] are forbidden unless global; the causal mask has cut the right side
            // already.
            int pos = i + (p.KeyLength - p.QueryLength);
            int lo = Math.Clamp(pos - p.Window + 1 - j0, 0, n), hi = Math.Clamp(pos + p.Window - j0, 0, n);
            OutsideWindow(in p, s, 0, lo, j0);
            OutsideWindow(in p, s, hi, n, j0);
        }
    }

    /// <summary>−∞ for s_j, j in [from, to), except where key j0 + j is global.</summary>
    static void OutsideWindow(in AttentionProblem p, float* s, int from, int to, int j0)
    {
        if (p.Global == null) { new Span<float>(s + from, Math.Max(0, to - from)).Fill(float.NegativeInfinity); return; }
        for (int j = from; j < to; j++) if (!p.Global[j0 + j]) s[j] = float.NegativeInfinity;
    }

    /// <summary>Whether query i sits on a global position (and so ignores the window).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsGlobalQuery(in AttentionProblem p, int i) =>
        p.Global != null && p.Global[i + (p.KeyLength - p.QueryLength)];

    /// <summary>
    /// Counts of global positions before each position, (Tk + 1) entries, so that a tile asks "any global token in [a, b)?" in
    /// O(1); null without global tokens.
    /// </summary>
    public static int[]? GlobalPrefix(in AttentionProblem p)
    {
        if (p.Global == null) return null;
        var prefix = new int[p.KeyLength + 1];
        for (int j = 0; j < p.KeyLength; j++) prefix[j + 1] = prefix[j] + (p.Global[j] ? 1 : 0);
        return prefix;
    }

    /// <summary>
    /// Whether any weight of the tile (queries [i0, i0 + br) × keys [j0, j0 + bc)) can be non-zero under the window and the
    /// causal mask, so that the tiled kernels skip the rest: O(T·w) work instead of O(T²). <paramref name="globalPrefix"/> is
    /// <see cref="GlobalPrefix"/>'s.
    /// </summary>
    public static bool TileVisible(in AttentionProblem p, int[]? globalPrefix, int i0, int br, int j0, int bc)
    {
        int shift = p.KeyLength - p.QueryLength, first = i0 + shift, last = i0 + br - 1 + shift;
        if (p.Causal && j0 > last) return false;
        if (p.Window == 0) return true;
        if (globalPrefix != null
            && (globalPrefix[last + 1] - globalPrefix[first] > 0 || globalPrefix[j0 + bc] - globalPrefix[j0] > 0))
            return true;
        int hi = p.Causal ? last : last + p.Window - 1;
        return j0 + bc - 1 >= first - p.Window + 1 && j0 <= hi;
    }

    /// <summary>m_j = 1/(1 − p) where weight (b, h, i, j0 + j) is kept, else 0, for j in [0, n).</summary>
    public static void DropoutRow(in AttentionProblem p, float* m, int n, int b, int h, int i, int j0) =>
        ApplyDropout(in p, m, null, n, b, h, i, j0);

    /// <summary>x_j ← x_j/(1 − p) where weight (b, h, i, j0 + j) is kept, else 0, for j in [0, n).</summary>
    public static void DropoutInPlace(in AttentionProblem p, float* x, int n, int b, int h, int i, int j0) =>
        ApplyDropout(in p, x, x, n, b, h, i, j0);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ApplyDropout(in AttentionProblem p, float* dst, float* x, int n, int b, int h, int i, int j0)
    {
        float kept = 1f / (1f - p.Dropout);
        byte* flags = stackalloc byte[RowChunk];
        for (int c = 0; c < n; c += RowChunk)
        {
            int count = Math.Min(RowChunk, n - c);
            KeepFlags(in p, b, h, i, j0 + c, count, flags);
            ApplyFlags(dst + c, x == null ? null : x + c, flags, count, kept);
        }
    }

    /// <summary>
    /// dst_j = flag_j ? x_j · kept : 0, or flag_j ? kept : 0 without x; eight at a time where AVX2 allows, selecting
    /// (not multiplying by the flag), so a dropped weight is +0 whatever x holds, as one at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ApplyFlags(float* dst, float* x, byte* flags, int count, float kept)
    {
        int j = 0;
        if (Avx2.IsSupported)
        {
            var scale = Vector256.Create(kept);
            for (; j + 8 <= count; j += 8)
            {
                var keep = Vector256.GreaterThan(Avx2.ConvertToVector256Int32(flags + j), Vector256<int>.Zero).AsSingle();
                var value = x == null ? scale : Vector256.Load(x + j) * scale;
                Vector256.ConditionalSelect(keep, value, Vector256<float>.Zero).Store(dst + j);
            }
        }
        for (; j < count; j++) dst[j] = flags[j] != 0 ? (x == null ? kept : x[j] * kept) : 0f;
    }

    /// <summary>Keys per call of <see cref="Dropout.KeepFlags"/> in a row: one stack buffer of flags.</summary>
    const int RowChunk = 256;

    /// <summary>
    /// Whether weights (b, h, i, j0 … j0 + count − 1) survive dropout: weight (b, h, i, j) is element
    /// ((b′·NH + h)·Tq + i)·Tk + j, with b′ = b + the first batch index, of the stream of <see cref="Kernels.Dropout"/>
    /// seeded with the problem's seed, i.e. the mask Dropout.Forward draws over the whole (B, NH, Tq, Tk) weight tensor
    /// at offset 0. It depends on nothing else, so the backward pass regenerates it; a row's keys are consecutive there.
    /// </summary>
    static void KeepFlags(in AttentionProblem p, int b, int h, int i, int j0, int count, byte* flags) =>
        Dropout.KeepFlags(p.DropoutSeed, ((((ulong)b + (ulong)p.DropoutFirstBatch) * (ulong)p.Heads + (ulong)h)
            * (ulong)p.QueryLength + (ulong)i) * (ulong)p.KeyLength + (ulong)j0, count, p.Dropout, flags);
}

/// <summary>How the attention kernels hand out work: independent items claimed one at a time by each thread.</summary>
internal static unsafe class AttentionWork
{
    /// <summary>
    /// Runs <paramref name="body"/>(item, scratch) for every item in [0, count): each thread claims the next unclaimed item,
    /// so uneven items (causal tiles) balance, and gets its own <paramref name="scratchFloats"/> floats of 64-byte-aligned
    /// scratch. Every item is computed by one thread from start to end, so results do not depend on the thread count.
    /// </summary>
    public static void Run(int count, long scratchFloats, Action<int, IntPtr> body, long work = long.MaxValue)
    {
        if (count <= 0) return;
        int threads = Parallel.ThreadCount;
        if (work < InlineWork || threads == 1)
        {
            // Too little to share (a decoding step's query against its cache): a fork would cost more than it saves.
            float* own = Alloc(scratchFloats);
            try { for (int item = 0; item < count; item++) body(item, (IntPtr)own); }
            finally { Free(own, scratchFloats); }
            return;
        }
        int next = 0, claim = Math.Max(1, count / (threads * ClaimsPerThread));
        // A chunked job of one chunk per thread: a thread kept off the cores by other processes is not waited for.
        Parallel.For(Math.Min(count, threads), 1, (_, _) =>
        {
            float* scratch = Alloc(scratchFloats);
            try
            {
                int first;
                while ((first = Interlocked.Add(ref next, claim) - claim) < count)
                    for (int item = first, end = Math.Min(count, first + claim); item < end; item++) body(item, (IntPtr)scratch);
            }
            finally
            {
                Free(scratch, scratchFloats);
            }
        });
    }

    /// <summary>
    /// Claims per thread that <see cref="Run"/> aims at: many items are claimed a run of neighbours at a time, so that
    /// small items (a head of a few tokens) do not each pay a contended write to the shared counter, and neighbouring
    /// items, which write neighbouring memory, stay on one thread.
    /// </summary>
    const int ClaimsPerThread = 16;

    /// <summary>
    /// Multiply-adds below which <see cref="Run"/> keeps every item on the calling thread: about 20 µs of one core's
    /// work, several times what handing work to a second thread and waiting for it costs.
    /// </summary>
    public const long InlineWork = 256 * 1024;

    /// <summary>
    /// The multiply-adds of attention over the problem: QKᵀ and PV, T_q · T_k · HS each, per batch row and head.
    /// </summary>
    public static long Work(in AttentionProblem p) => 2L * p.Batch * p.Heads * p.QueryLength * p.KeyLength * p.HeadSize;

    /// <summary>
    /// 64-byte-aligned native memory for at least <paramref name="floats"/> floats, counted by <see cref="MemoryMeter"/>.
    /// </summary>
    public static float* Alloc(long floats)
    {
        long bytes = Math.Max(1, floats) * sizeof(float);
        var p = (float*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        MemoryMeter.Add(bytes);
        return p;
    }

    /// <summary>Frees what <see cref="Alloc"/> gave for <paramref name="floats"/> floats.</summary>
    public static void Free(float* p, long floats)
    {
        NativeMemory.AlignedFree(p);
        MemoryMeter.Remove(Math.Max(1, floats) * sizeof(float));
    }
}
