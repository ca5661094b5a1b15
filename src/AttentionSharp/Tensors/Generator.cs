namespace AttentionSharp;

/// <summary>
/// The one random number generator of the library: xoshiro256** seeded through SplitMix64 (Blackman and Vigna,
/// "Scrambled linear pseudorandom number generators", 2018). Everything random — initialisation, dropout seeds,
/// batch sampling, token sampling — draws from a Generator the caller passes, so a run is reproducible from its seed;
/// <see cref="GetState"/>/<see cref="SetState"/> let a checkpoint resume the exact stream.
/// </summary>
public sealed class Generator
{
    ulong _s0, _s1, _s2, _s3;
    double _spareNormal;
    bool _hasSpare;

    public Generator(ulong seed) => Reseed(seed);

    /// <summary>
    /// Where this process's batch begins in a larger one whose dropout masks are drawn in parts (a data-parallel rank's
    /// rows firstRow…): dropout drawn from this generator gives the rows the mask the whole batch gets there. 0 otherwise.
    /// Not part of the random stream (<see cref="GetState"/> leaves it out); the data-parallel trainer sets it per batch.
    /// </summary>
    public int FirstRow
    {
        get => _firstRow;
        set => _firstRow = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, "The first row of a batch cannot be negative.");
    }

    int _firstRow;

    public void Reseed(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix64(ref x); _s1 = SplitMix64(ref x); _s2 = SplitMix64(ref x); _s3 = SplitMix64(ref x);
        _hasSpare = false;
    }

    static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, 1) as float (24 random bits, never rounds up to 1).</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    /// <summary>Uniform integer in [0, n), without modulo bias (Lemire's method).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "The upper bound must be positive.");
        ulong threshold = (0UL - (ulong)n) % (ulong)n;
        while (true)
        {
            ulong r = NextUInt64();
            UInt128 m = (UInt128)r * (ulong)n;
            if ((ulong)m >= threshold) return (int)(m >> 64);
        }
    }

    /// <summary>Standard normal N(0, 1) by the Box–Muller transform; the second value of each pair is kept for the next call.</summary>
    public double NextNormal()
    {
        if (_hasSpare) { _hasSpare = false; return _spareNormal; }
        double u1 = 1.0 - NextDouble(); // (0, 1]: log is finite
        double u2 = NextDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        _spareNormal = r * Math.Sin(2 * Math.PI * u2);
        _hasSpare = true;
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>The full state, for checkpoints: four words of xoshiro state, the spare normal's bits, and whether it is held.</summary>
    public ulong[] GetState() => [_s0, _s1, _s2, _s3, (ulong)BitConverter.DoubleToInt64Bits(_spareNormal), _hasSpare ? 1UL : 0UL];

    public void SetState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != 6) throw new ArgumentException($"A generator state has 6 words, got {state.Length}.", nameof(state));
        if ((state[0] | state[1] | state[2] | state[3]) == 0) throw new ArgumentException("A generator state cannot be all zeros.", nameof(state));
        (_s0, _s1, _s2, _s3) = (state[0], state[1], state[2], state[3]);
        _spareNormal = BitConverter.Int64BitsToDouble((long)state[4]);
        _hasSpare = state[5] != 0;
    }
}
