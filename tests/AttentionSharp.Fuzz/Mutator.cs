using System.Text;

namespace AttentionSharp.Fuzz;

/// <summary>
/// Byte-level mutations in the manner of AFL's havoc stage: bit flips, random and boundary bytes, inserted, deleted and
/// duplicated runs, truncation, splices of another seed, and replacement of a decimal number by a boundary value (which
/// reaches the length and count fields of text formats such as JSON headers). One to four are stacked per input.
/// </summary>
public sealed class Mutator(Random random, IReadOnlyList<byte[]> seeds)
{
    static readonly byte[] BoundaryBytes = [0x00, 0x01, 0x7F, 0x80, 0xFF, (byte)'"', (byte)'{', (byte)'}', (byte)'[', (byte)']', (byte)',', (byte)':', (byte)'/', (byte)'\n', (byte)'\\'];

    static readonly string[] BoundaryNumbers = ["0", "-1", "1", "2", "7", "255", "256", "65535", "2147483647", "2147483648", "-2147483648",
        "4294967295", "9223372036854775807", "18446744073709551615", "99999999999999999999", "1e308", "1.5", "NaN", "\"1\"", "null", "[]", "{}", "true"];

    /// <summary>A new input: a random seed with one to four mutations.</summary>
    public byte[] Next()
    {
        var bytes = new List<byte>(seeds[random.Next(seeds.Count)]);
        for (int m = random.Next(1, 5); m > 0; m--) MutateOnce(bytes);
        return bytes.ToArray();
    }

    void MutateOnce(List<byte> b)
    {
        int n = b.Count;
        switch (random.Next(10))
        {
            case 0 when n > 0: b[random.Next(n)] ^= (byte)(1 << random.Next(8)); break;
            case 1 when n > 0: b[random.Next(n)] = (byte)random.Next(256); break;
            case 2 when n > 0: b[random.Next(n)] = BoundaryBytes[random.Next(BoundaryBytes.Length)]; break;
            case 3: b.InsertRange(random.Next(n + 1), Enumerable.Range(0, random.Next(1, 9)).Select(_ => (byte)random.Next(256))); break;
            case 4 when n > 0:
            {
                int at = random.Next(n);
                b.RemoveRange(at, Math.Min(n - at, random.Next(1, 33)));
                break;
            }
            case 5 when n > 0:
            {
                int at = random.Next(n), length = Math.Min(n - at, random.Next(1, 65));
                b.InsertRange(random.Next(n + 1), b.GetRange(at, length));
                break;
            }
            case 6 when n > 0:
            {
                int keep = random.Next(n); // truncate
                b.RemoveRange(keep, n - keep);
                break;
            }
            case 7:
            {
                var other = seeds[random.Next(seeds.Count)];
                if (other.Length == 0) break;
                int from = random.Next(other.Length), at = random.Next(n + 1);
                b.InsertRange(at, other.Skip(from).Take(random.Next(1, 129)));
                break;
            }
            default: ReplaceNumber(b); break;
        }
    }

    void ReplaceNumber(List<byte> b)
    {
        // Pick a run of ASCII digits (with a leading '-') and put a boundary value in its place.
        var starts = new List<int>();
        for (int i = 0; i < b.Count; i++)
            if (char.IsAsciiDigit((char)b[i]) && (i == 0 || !char.IsAsciiDigit((char)b[i - 1]))) starts.Add(i);
        if (starts.Count == 0) return;
        int start = starts[random.Next(starts.Count)], end = start;
        while (end < b.Count && char.IsAsciiDigit((char)b[end])) end++;
        if (start > 0 && b[start - 1] == '-') start--;
        b.RemoveRange(start, end - start);
        b.InsertRange(start, Encoding.ASCII.GetBytes(BoundaryNumbers[random.Next(BoundaryNumbers.Length)]));
    }
}
