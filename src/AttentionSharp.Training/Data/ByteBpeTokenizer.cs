using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;

namespace AttentionSharp.Data;

/// <summary>
/// Byte-level byte-pair encoding, as GPT-2 does it (Radford et al., 2019; BPE after Sennrich et al., 2016). The base
/// vocabulary is the 256 byte values, so any UTF-8 text, seen or not, round-trips exactly; merge k joins two existing ids
/// into id 256 + k. Text is first split into pieces by GPT-2's pattern (contractions, runs of letters, of digits, of other
/// symbols, each with at most one leading space; whitespace) and merges never cross a piece boundary.
/// Encoding applies, within each piece, the lowest-ranked merge present until none applies — the same segmentation
/// training produced.
/// </summary>
public sealed partial class ByteBpeTokenizer : ITokenizer
{
    internal const string TypeName = "byte-bpe";

    /// <summary>The pre-tokenization pattern; saved files name it so a later change of pattern cannot load old merges silently.</summary>
    internal const string PatternName = "gpt2";

    /// <summary>The number of base tokens: one per byte value.</summary>
    public const int ByteVocabSize = 256;

    /// <summary>Pieces longer than this are encoded but not cached (a cache of huge whitespace runs would only hold memory).</summary>
    const int MaxCachedPieceLength = 64;
    const int MaxCacheEntries = 1 << 20;

    [GeneratedRegex(@"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant)]
    private static partial Regex Gpt2Pattern();

    readonly (int Left, int Right)[] _merges;
    readonly Dictionary<long, int> _rankOfPair = []; // PairKey(left, right) → merge index k (the merged id is 256 + k)
    readonly byte[][] _bytesOfId;
    readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    /// <summary>A tokenizer with the given merges, in rank order; merge k makes id 256 + k from two ids below it.</summary>
    public ByteBpeTokenizer(IReadOnlyList<(int Left, int Right)> merges)
    {
        ArgumentNullException.ThrowIfNull(merges);
        _merges = merges.ToArray();
        _bytesOfId = new byte[ByteVocabSize + _merges.Length][];
        for (int b = 0; b < ByteVocabSize; b++) _bytesOfId[b] = [(byte)b];
        for (int k = 0; k < _merges.Length; k++)
        {
            var (left, right) = _merges[k];
            int id = ByteVocabSize + k;
            if ((uint)left >= (uint)id || (uint)right >= (uint)id)
                throw new ArgumentException($"Merge {k} joins ({left}, {right}); both ids must lie in [0, {id}).", nameof(merges));
            if (!_rankOfPair.TryAdd(PairKey(left, right), k))
                throw new ArgumentException($"Merge {k} repeats the pair ({left}, {right}).", nameof(merges));
            _bytesOfId[id] = [.. _bytesOfId[left], .. _bytesOfId[right]];
        }
    }

    /// <summary>The merges in rank order.</summary>
    public IReadOnlyList<(int Left, int Right)> Merges => _merges;

    public int VocabSize => _bytesOfId.Length;

    /// <summary>The bytes token <paramref name="id"/> stands for.</summary>
    public ReadOnlySpan<byte> BytesOf(int id) => (uint)id < (uint)_bytesOfId.Length ? _bytesOfId[id]
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token ids must lie in [0, {VocabSize}).");

    internal static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    internal delegate void PieceAction(ReadOnlySpan<char> piece);

    /// <summary>Calls <paramref name="action"/> on each piece merges stay within; together the pieces cover the text exactly.</summary>
    internal static void ForEachPiece(string text, PieceAction action)
    {
        int end = 0;
        foreach (var match in Gpt2Pattern().EnumerateMatches(text))
        {
            // The pattern matches every character, but a gap would only lose text, so it becomes a piece of its own.
            if (match.Index > end) action(text.AsSpan(end, match.Index - end));
            action(text.AsSpan(match.Index, match.Length));
            end = match.Index + match.Length;
        }
        if (end < text.Length) action(text.AsSpan(end));
    }

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        var cache = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        ForEachPiece(text, piece =>
        {
            if (cache.TryGetValue(piece, out int[]? cached)) { ids.AddRange(cached); return; }
            int[] encoded = EncodePiece(piece);
            if (piece.Length <= MaxCachedPieceLength && _cache.Count < MaxCacheEntries) cache.TryAdd(piece, encoded);
            ids.AddRange(encoded);
        });
        return ids.ToArray();
    }

    /// <summary>Bytes of one piece, then repeatedly the lowest-ranked adjacent pair merged, all its occurrences left to right.</summary>
    int[] EncodePiece(ReadOnlySpan<char> piece)
    {
        byte[] bytes = new byte[Encoding.UTF8.GetByteCount(piece)];
        Encoding.UTF8.GetBytes(piece, bytes);
        var symbols = new List<int>(bytes.Length);
        foreach (byte b in bytes) symbols.Add(b);
        while (symbols.Count >= 2)
        {
            int bestRank = int.MaxValue;
            for (int i = 0; i + 1 < symbols.Count; i++)
                if (_rankOfPair.TryGetValue(PairKey(symbols[i], symbols[i + 1]), out int rank) && rank < bestRank)
                    bestRank = rank;
            if (bestRank == int.MaxValue) break;
            MergeInPlace(symbols, _merges[bestRank].Left, _merges[bestRank].Right, ByteVocabSize + bestRank);
        }
        return symbols.ToArray();
    }

    /// <summary>Replaces every non-overlapping (left, right), scanning left to right, by <paramref name="merged"/>.</summary>
    internal static void MergeInPlace(List<int> symbols, int left, int right, int merged)
    {
        int write = 0;
        for (int read = 0; read < symbols.Count; read++)
        {
            if (read + 1 < symbols.Count && symbols[read] == left && symbols[read + 1] == right)
            {
                symbols[write++] = merged;
                read++;
            }
            else
            {
                symbols[write++] = symbols[read];
            }
        }
        symbols.RemoveRange(write, symbols.Count - write);
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        int length = 0;
        foreach (int id in ids) length += BytesOf(id).Length;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, length));
        try
        {
            int offset = 0;
            foreach (int id in ids)
            {
                _bytesOfId[id].CopyTo(buffer, offset);
                offset += _bytesOfId[id].Length;
            }
            // Ids cut from the middle of a character decode as U+FFFD; whole encodings always form valid UTF-8.
            return Encoding.UTF8.GetString(buffer, 0, length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public string ToJson() => TokenizerJson.Write(TypeName, json =>
    {
        json.WriteString("pattern", PatternName);
        json.WriteNumber("vocab_size", VocabSize);
        json.WriteStartArray("merges");
        foreach (var (left, right) in _merges)
        {
            json.WriteStartArray();
            json.WriteNumberValue(left);
            json.WriteNumberValue(right);
            json.WriteEndArray();
        }
        json.WriteEndArray();
    });

    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    internal static ByteBpeTokenizer FromJson(TokenizerJson json)
    {
        string pattern = json.String("pattern");
        if (pattern != PatternName) throw json.Error("pattern", $"'{PatternName}'", $"'{pattern}'");
        int[] flat = json.Ints("merges", width: 2);
        var merges = new (int, int)[flat.Length / 2];
        for (int k = 0; k < merges.Length; k++) merges[k] = (flat[2 * k], flat[2 * k + 1]);
        ByteBpeTokenizer tokenizer;
        try
        {
            tokenizer = new ByteBpeTokenizer(merges);
        }
        catch (ArgumentException e)
        {
            throw json.Error("merges", "merges of existing ids, each pair once", e.Message);
        }
        int vocabSize = json.Int("vocab_size");
        if (vocabSize != tokenizer.VocabSize)
            throw json.Error("vocab_size", $"{tokenizer.VocabSize} (256 bytes + {merges.Length} merges)", vocabSize.ToString());
        return tokenizer;
    }
}
