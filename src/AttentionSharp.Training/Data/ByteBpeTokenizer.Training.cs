using System.Runtime.InteropServices;

namespace AttentionSharp.Data;

public sealed partial class ByteBpeTokenizer
{
    /// <summary>A pair seen once is not worth a token: training stops when the most frequent pair is this rare.</summary>
    const long MinPairCount = 2;

    /// <summary>
    /// Learns merges from <paramref name="text"/> until the vocabulary holds <paramref name="vocabSize"/> ids, or earlier if no
    /// adjacent pair occurs at least twice. Each step merges the most frequent adjacent pair, ties broken by the smaller
    /// (left, right), so the result depends only on the text. Pair counts are kept up to date incrementally — only the
    /// distinct pieces that hold the merged pair are revisited — and a max-heap with lazy deletion finds the next pair.
    /// </summary>
    public static ByteBpeTokenizer Train(string text, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (vocabSize < ByteVocabSize)
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, $"A byte-level vocabulary needs at least {ByteVocabSize} ids (one per byte).");

        // Distinct pieces with their counts: the corpus is a multiset of pieces, since merges never cross them.
        var pieceCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        var lookup = pieceCounts.GetAlternateLookup<ReadOnlySpan<char>>();
        ForEachPiece(text, piece => CollectionsMarshal.GetValueRefOrAddDefault(lookup, piece, out _)++);

        var words = new List<int>[pieceCounts.Count];
        var frequency = new long[pieceCounts.Count];
        var pairCounts = new Dictionary<long, long>();
        var wordsWithPair = new Dictionary<long, List<int>>();
        int w = 0;
        foreach (var (piece, count) in pieceCounts)
        {
            words[w] = [.. System.Text.Encoding.UTF8.GetBytes(piece).Select(b => (int)b)];
            frequency[w] = count;
            for (int i = 0; i + 1 < words[w].Count; i++)
            {
                long pair = PairKey(words[w][i], words[w][i + 1]);
                CollectionsMarshal.GetValueRefOrAddDefault(pairCounts, pair, out _) += count;
                Register(wordsWithPair, pair, w);
            }
            w++;
        }

        var heap = new PriorityQueue<long, (long Count, long Pair)>(pairCounts.Count, MostFrequentFirst.Instance);
        foreach (var (pair, count) in pairCounts) heap.Enqueue(pair, (count, pair));

        var merges = new List<(int Left, int Right)>();
        var delta = new Dictionary<long, long>();
        while (ByteVocabSize + merges.Count < vocabSize && TryPopMostFrequent(heap, pairCounts, out long best, out long bestCount))
        {
            if (bestCount < MinPairCount) break;
            int left = (int)(best >> 32), right = (int)(uint)best, merged = ByteVocabSize + merges.Count;
            merges.Add((left, right));

            delta.Clear();
            foreach (int word in wordsWithPair[best])
            {
                var symbols = words[word];
                if (!HasPair(symbols, left, right)) continue; // listed twice, or merged away by an earlier merge
                long count = frequency[word];
                // Retract the word's pairs, merge, count them again: most cancel, and only the net change is applied.
                AddPairCounts(symbols, -count, delta);
                MergeInPlace(symbols, left, right, merged);
                AddPairCounts(symbols, count, delta);
                for (int i = 0; i + 1 < symbols.Count; i++)
                    if (symbols[i] == merged || symbols[i + 1] == merged)
                        Register(wordsWithPair, PairKey(symbols[i], symbols[i + 1]), word);
            }
            wordsWithPair.Remove(best);

            foreach (var (pair, change) in delta)
            {
                if (change == 0) continue;
                long updated = pairCounts.GetValueOrDefault(pair) + change;
                if (updated <= 0) { pairCounts.Remove(pair); continue; }
                pairCounts[pair] = updated;
                heap.Enqueue(pair, (updated, pair));
            }
        }
        return new ByteBpeTokenizer(merges);
    }

    /// <summary>Pops heap entries until one matches its pair's current count (older entries are stale).</summary>
    static bool TryPopMostFrequent(PriorityQueue<long, (long Count, long Pair)> heap, Dictionary<long, long> pairCounts, out long pair, out long count)
    {
        while (heap.TryDequeue(out pair, out var priority))
        {
            count = priority.Count;
            if (pairCounts.TryGetValue(pair, out long current) && current == count) return true;
        }
        count = 0;
        return false;
    }

    static void Register(Dictionary<long, List<int>> wordsWithPair, long pair, int word)
    {
        ref var list = ref CollectionsMarshal.GetValueRefOrAddDefault(wordsWithPair, pair, out _);
        list ??= [];
        if (list.Count == 0 || list[^1] != word) list.Add(word);
    }

    static bool HasPair(List<int> symbols, int left, int right)
    {
        for (int i = 0; i + 1 < symbols.Count; i++)
            if (symbols[i] == left && symbols[i + 1] == right) return true;
        return false;
    }

    static void AddPairCounts(List<int> symbols, long count, Dictionary<long, long> delta)
    {
        for (int i = 0; i + 1 < symbols.Count; i++)
            CollectionsMarshal.GetValueRefOrAddDefault(delta, PairKey(symbols[i], symbols[i + 1]), out _) += count;
    }

    /// <summary>Higher count first; among equal counts the smaller (left, right).</summary>
    sealed class MostFrequentFirst : IComparer<(long Count, long Pair)>
    {
        public static readonly MostFrequentFirst Instance = new();

        public int Compare((long Count, long Pair) a, (long Count, long Pair) b) =>
            a.Count != b.Count ? b.Count.CompareTo(a.Count) : a.Pair.CompareTo(b.Pair);
    }
}
