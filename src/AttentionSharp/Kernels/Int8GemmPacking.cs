namespace AttentionSharp.Kernels;

public static unsafe partial class Int8Gemm
{
    /// <summary>Weight rows per panel of the packed layout: the four columns of y one kernel call produces.</summary>
    public const int PanelRows = NR;

    /// <summary>Weights per row and piece of a panel: 32 bytes, one vector load of a row's next stretch of k.</summary>
    public const int PanelPiece = 32;

    /// <summary>
    /// Bytes of the packed form of n weight rows of <paramref name="kPadded"/> values: n rounded up to whole panels of
    /// <see cref="PanelRows"/> rows.
    /// </summary>
    public static long PackedLength(int n, int kPadded)
    {
        Guard.Shape(n, kPadded, nameof(n), nameof(kPadded));
        return (long)((n + PanelRows - 1) / PanelRows) * PanelRows * kPadded;
    }

    /// <summary>
    /// Lays quantized weights w (n × kPadded, row-major, as <see cref="QuantizeWeights"/> writes them) out in panels for
    /// <see cref="Multiply"/>: panel q holds rows 4q … 4q + 3, and within it each stretch of <see cref="PanelPiece"/>
    /// values of k holds the four rows' pieces one after another,
    /// <c>packed[(q·kPadded + s)·4 + 32·r + t] = w[(4q + r)·kPadded + s + t]</c> for s a multiple of 32 and t &lt; 32. Rows
    /// past n are zero. A product then reads the weights as one forward stream instead of four interleaved ones, which
    /// the hardware prefetchers follow: decoding GPT-2's 124 MB of int8 weights read them at 33–37 GB/s in this layout
    /// against 26–30 GB/s row by row with software prefetching (2 threads, AMD EPYC).
    /// </summary>
    public static void PackWeights(ReadOnlySpan<sbyte> w, int n, int kPadded, Span<sbyte> packed)
    {
        ValidatePack(w.Length, n, kPadded, packed.Length);
        packed.Clear();
        for (int j = 0; j < n; j++)
        {
            var row = w.Slice(j * kPadded, kPadded);
            var panel = packed.Slice((int)((long)(j / PanelRows) * PanelRows * kPadded));
            for (int s = 0; s < kPadded; s += PanelPiece)
                row.Slice(s, PanelPiece).CopyTo(panel.Slice(s * PanelRows + j % PanelRows * PanelPiece, PanelPiece));
        }
    }

    /// <summary>
    /// Copies row <paramref name="row"/>'s values [start, start + destination.Length) back out of the packed layout of
    /// <see cref="PackWeights"/>.
    /// </summary>
    public static void UnpackRow(ReadOnlySpan<sbyte> packed, int kPadded, int row, Span<sbyte> destination, int start = 0)
    {
        CheckPaddedLength(kPadded);
        if (start < 0 || (long)start + destination.Length > kPadded)
            throw new ArgumentException($"values [{start}, {(long)start + destination.Length}) are not all in a row of " +
                                        $"{kPadded}.", nameof(destination));
        long panel = (long)(row / PanelRows) * PanelRows * kPadded;
        if (row < 0 || panel + (long)PanelRows * kPadded > packed.Length)
            throw new ArgumentOutOfRangeException(nameof(row), row,
                $"row {row} is not in the {packed.Length / Math.Max(1L, (long)PanelRows * kPadded) * PanelRows} rows packed.");
        int offset = row % PanelRows * PanelPiece;
        for (int done = 0; done < destination.Length;)
        {
            int p = start + done, t = p % PanelPiece, count = Math.Min(PanelPiece - t, destination.Length - done);
            long at = panel + (long)(p - t) * PanelRows + offset + t;
            packed.Slice((int)at, count).CopyTo(destination.Slice(done, count));
            done += count;
        }
    }

    /// <summary>Throws unless <paramref name="kPadded"/> is a row length <see cref="PaddedLength"/> can give.</summary>
    static void CheckPaddedLength(int kPadded)
    {
        if (kPadded < 0 || kPadded % Block != 0 || kPadded > MaxPaddedLength)
            throw new ArgumentOutOfRangeException(nameof(kPadded), kPadded,
                $"kPadded must be a multiple of {Block} in [0, {MaxPaddedLength}] (PaddedLength(k)); got {kPadded}.");
    }

    /// <summary>Shape checks of <see cref="PackWeights"/>, shared with the reference twin.</summary>
    internal static void ValidatePack(int w, int n, int kPadded, int packed)
    {
        CheckPaddedLength(kPadded);
        Guard.Matrix(nameof(w), w, n, kPadded, nameof(n), nameof(kPadded));
        long expected = PackedLength(n, kPadded);
        if (packed != expected)
            throw new ArgumentException($"packed has length {packed}; expected {expected} (PackedLength(n, kPadded) for " +
                                        $"n = {n}, kPadded = {kPadded}).", nameof(packed));
    }
}
