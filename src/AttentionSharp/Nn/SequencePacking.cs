namespace AttentionSharp.Nn;

/// <summary>
/// B sequences of different lengths held back to back in one row, (1, N, C) with N the sum of their lengths, instead of
/// padded to the longest, (B, T, C): the position-wise layers (projections, feed-forward, norms) then do no work on
/// padding. Attention, which needs each sequence's own keys, unpacks its projections to (B, T, ·) with the padding
/// masked (<see cref="AttentionMask.Packing"/>) and packs its output again. Sequences are left-aligned in the padded
/// form: sequence b holds positions 0 … length_b − 1.
/// </summary>
public sealed class SequencePacking
{
    readonly int[] _packedRows;   // N: the padded row (b·T + t) of each packed row
    readonly int[] _paddedRows;   // B·T: the packed row of each padded row, or −1 for padding
    readonly bool[] _padding;     // B·T
    readonly int[] _lengths;      // B

    /// <param name="lengths">Each sequence's length, at least 1.</param>
    /// <param name="maxLength">T, the padded length: at least the longest; the longest when omitted.</param>
    public SequencePacking(ReadOnlySpan<int> lengths, int? maxLength = null)
    {
        if (lengths.IsEmpty) throw new ArgumentException("A packing needs at least one sequence.", nameof(lengths));
        int longest = 0, tokens = 0;
        for (int b = 0; b < lengths.Length; b++)
        {
            if (lengths[b] < 1)
                throw new ArgumentException($"Sequence {b} has length {lengths[b]}; packed sequences need at least one " +
                                            "position.", nameof(lengths));
            longest = Math.Max(longest, lengths[b]);
            tokens += lengths[b];
        }
        int t = maxLength ?? longest;
        if (t < longest)
            throw new ArgumentException($"The padded length {t} is shorter than the longest sequence ({longest}).",
                nameof(maxLength));
        _lengths = lengths.ToArray();
        (Batch, Length, Tokens, Lengths) = (lengths.Length, t, tokens, _lengths);
        _packedRows = new int[tokens];
        _paddedRows = new int[Batch * t];
        _padding = new bool[Batch * t];
        int row = 0;
        for (int b = 0; b < Batch; b++)
            for (int i = 0; i < t; i++)
            {
                int padded = b * t + i;
                if (i < lengths[b])
                {
                    _packedRows[row] = padded;
                    _paddedRows[padded] = row++;
                }
                else
                {
                    _paddedRows[padded] = Kernels.Embedding.Absent;
                    _padding[padded] = true;
                }
            }
    }

    /// <summary>
    /// The packing of right-padded ids (B, T): each row's length is its position after the last id other than
    /// <paramref name="padId"/>; null when no row has padding (nothing to gain), a row is all padding, or padding comes
    /// before a token (that is masked where it stands, not packed away).
    /// </summary>
    public static SequencePacking? OfPadded(ReadOnlySpan<int> ids, int batch, int length, int padId)
    {
        if (batch < 1 || length < 1 || ids.Length != batch * length) return null;
        var lengths = new int[batch];
        bool padded = false;
        for (int b = 0; b < batch; b++)
        {
            var row = ids.Slice(b * length, length);
            int n = row.LastIndexOfAnyExcept(padId) + 1;
            if (n == 0 || row[..n].Contains(padId)) return null;
            lengths[b] = n;
            padded |= n < length;
        }
        return padded ? new SequencePacking(lengths, length) : null;
    }

    /// <summary>B.</summary>
    public int Batch { get; }

    /// <summary>T, the padded length.</summary>
    public int Length { get; }

    /// <summary>N, the positions of all sequences together.</summary>
    public int Tokens { get; }

    /// <summary>Each sequence's length.</summary>
    public IReadOnlyList<int> Lengths { get; }

    /// <summary>The lengths as attention's query lengths: the unpacked rows that packing keeps.</summary>
    internal ReadOnlyMemory<int> QueryLengths => _lengths;

    /// <summary>(B × T) flags, true at padding: the key padding of the unpacked form.</summary>
    public ReadOnlyMemory<bool> Padding => _padding;

    /// <summary>The padded row (b·T + t) of each packed row, in order.</summary>
    public ReadOnlySpan<int> PackedRows => _packedRows;

    /// <summary>(B, T, D) → (1, N, D): the sequences' positions back to back, the padding dropped.</summary>
    public Tensor Pack(Tensor padded)
    {
        if (padded.Rank != 3 || padded.Size(0) != Batch || padded.Size(1) != Length)
            throw new ArgumentException($"Packing {Batch} sequences of padded length {Length} needs ({Batch}, {Length}, " +
                                        $"D); got {ShapeMath.Format(padded.Shape)}.", nameof(padded));
        return Tensor.GatherRows(padded, _packedRows, 1, Tokens, padded.Size(2));
    }

    /// <summary>(1, N, D) → (B, T, D), zeros at the padding.</summary>
    public Tensor Unpack(Tensor packed)
    {
        CheckPacked(packed, nameof(packed));
        return Tensor.GatherRows(packed, _paddedRows, Batch, Length, packed.Size(2));
    }

    /// <summary>Throws unless <paramref name="packed"/> is (1, N, D).</summary>
    public void CheckPacked(Tensor packed, string name)
    {
        if (packed.Rank != 3 || packed.Size(0) != 1 || packed.Size(1) != Tokens)
            throw new ArgumentException($"{Batch} packed sequences of {Tokens} positions in all need (1, {Tokens}, D); " +
                                        $"got {ShapeMath.Format(packed.Shape)}.", name);
    }
}
