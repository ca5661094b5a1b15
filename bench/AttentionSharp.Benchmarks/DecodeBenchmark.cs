using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using AttentionSharp.Autograd;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Benchmarks;

/// <summary>What <see cref="DecodeBenchmark.Run"/> measures and where it reports.</summary>
public sealed record DecodeBenchOptions
{
    /// <summary>The model: GPT-2 small's shape by default (random weights; speed does not depend on them).</summary>
    public GptConfig Model { get; init; } = GptConfig.Gpt2Small;

    /// <summary>Tokens decoded in the timed run (after a one-token prompt).</summary>
    public int Tokens { get; init; } = 64;

    /// <summary>Timed runs of each weight format, each between two bandwidth measurements; the median counts.</summary>
    public int Repetitions { get; init; } = 5;

    public int Threads { get; init; } = 2;

    public string? JsonPath { get; init; }

    /// <summary>Also decode with int8 weights (the same model quantized) and report both side by side.</summary>
    public bool Int8 { get; init; }

    public string? Validate() =>
        Threads < 1 ? $"--threads must be at least 1, got {Threads}."
        : Tokens < 1 ? $"--tokens must be at least 1, got {Tokens}."
        : Tokens + 1 > Model.ContextLength ? $"--tokens {Tokens} do not fit the model's context of {Model.ContextLength} after the prompt."
        : Repetitions < 1 ? $"Repetitions must be at least 1, got {Repetitions}."
        : null;
}

/// <summary>
/// The decoding benchmark: greedy decoding with batch 1 and the K/V cache, whose every token must read all weights
/// once. The limit is the measured memory bandwidth divided by those bytes: (parameters − the position table + one row of it) × 4.
/// Bandwidth is measured by streaming reads of an array much larger than the caches, on the same threads, before and
/// after every timed run: on a shared machine it moved by up to 2× within one run, so each run is held against the
/// higher of the two measurements around it, and the report gives the median run.
/// </summary>
public static class DecodeBenchmark
{
    public static int Run(DecodeBenchOptions options, TextWriter output)
    {
        if (options.Validate() is { } problem) { Console.Error.WriteLine(problem); return 2; }
        int previousThreads = Kernels.Parallel.ThreadCount;
        Kernels.Parallel.ThreadCount = options.Threads;
        try
        {
            var model = new Gpt(options.Model, new Generator(7));
            model.Eval();
            long bytesPerToken = WeightBytesPerToken(model);
            Gpt? int8Model = null;
            long int8Bytes = 0;
            if (options.Int8)
            {
                int8Model = new Gpt(options.Model, new Generator(7));
                int8Model.Eval();
                int8Model.QuantizeInt8();
                int8Bytes = WeightBytesPerToken(int8Model);
            }

            // Warm-up: code compiled, pool and cache buffers in place. Then bandwidth, a run, bandwidth, a run, …
            Decode(model, Math.Min(8, options.Tokens));
            if (int8Model is not null) Decode(int8Model, Math.Min(8, options.Tokens));
            var fp32 = new List<Timed>();
            var int8 = new List<Timed>();
            double before = Bandwidth.Measure(options.Threads);
            for (int r = 0; r < options.Repetitions; r++)
            {
                before = TimeOne(model, options.Tokens, bytesPerToken, before, options.Threads, fp32);
                if (int8Model is not null) before = TimeOne(int8Model, options.Tokens, int8Bytes, before, options.Threads, int8);
            }
            var f = Summary.Of(fp32, bytesPerToken);
            output.WriteLine($"Greedy decoding, batch 1, K/V cache, {options.Tokens} tokens, " +
                             $"{options.Threads} thread(s), model L={options.Model.Layers} C={options.Model.Width} " +
                             $"V={options.Model.VocabSize}; {options.Repetitions} timed runs of each, the median shown");
            output.WriteLine($"Weights read per token: {bytesPerToken / 1e6:F1} MB; streaming-read bandwidth around the " +
                             $"runs: {f.Bandwidth / 1e9:F1} GB/s (median; {Range(fp32.Concat(int8))})");
            output.WriteLine($"Limit (bandwidth / weight bytes per token): {f.Limit:F1} tokens/s");
            output.WriteLine($"Ours: {f.TokensPerSecond:F1} tokens/s = {f.Share:P0} of the limit (each run against the " +
                             $"bandwidth around it: {Shares(fp32, bytesPerToken)})");
            Summary? i8 = int8Model is null ? null : Summary.Of(int8, int8Bytes);
            if (i8 is { } q)
            {
                output.WriteLine($"Int8 weights read per token: {int8Bytes / 1e6:F1} MB; limit {q.Limit:F1} tokens/s");
                output.WriteLine($"Ours, int8: {q.TokensPerSecond:F1} tokens/s = {q.Share:P0} of the int8 limit " +
                                 $"({Shares(int8, int8Bytes)}), {q.TokensPerSecond / f.TokensPerSecond:F2}× fp32");
            }
            if (options.JsonPath is { } path)
            {
                BenchReport.WriteJson(path, new Dictionary<string, object?>
                {
                    ["tokens_per_s"] = Math.Round(f.TokensPerSecond, 2),
                    ["limit_tokens_per_s"] = Math.Round(f.Limit, 2),
                    ["share_of_limit"] = Math.Round(f.Share, 4),
                    ["bandwidth_gb_s"] = Math.Round(f.Bandwidth / 1e9, 2),
                    ["weight_bytes_per_token"] = bytesPerToken,
                    ["tokens"] = options.Tokens,
                    ["threads"] = options.Threads,
                    ["int8_tokens_per_s"] = i8 is { } a ? Math.Round(a.TokensPerSecond, 2) : null,
                    ["int8_limit_tokens_per_s"] = i8 is { } b ? Math.Round(b.Limit, 2) : null,
                    ["int8_share_of_limit"] = i8 is { } c ? Math.Round(c.Share, 4) : null,
                    ["int8_weight_bytes_per_token"] = options.Int8 ? int8Bytes : null,
                });
                output.WriteLine($"Wrote {path}");
            }
            return 0;
        }
        finally
        {
            Kernels.Parallel.ThreadCount = previousThreads;
        }
    }

    /// <summary>One timed run: its tokens per second and the higher of the bandwidths measured around it.</summary>
    readonly record struct Timed(double TokensPerSecond, double Bandwidth)
    {
        public double Share(long bytesPerToken) => TokensPerSecond * bytesPerToken / Bandwidth;
    }

    /// <summary>Medians over the runs: tokens/s, the bandwidth, its limit, and each run's share of its own limit.</summary>
    readonly record struct Summary(double TokensPerSecond, double Bandwidth, double Limit, double Share)
    {
        public static Summary Of(List<Timed> runs, long bytesPerToken)
        {
            double bandwidth = BenchReport.Median([.. runs.Select(r => r.Bandwidth)]);
            return new(BenchReport.Median([.. runs.Select(r => r.TokensPerSecond)]), bandwidth, bandwidth / bytesPerToken,
                BenchReport.Median([.. runs.Select(r => r.Share(bytesPerToken))]));
        }
    }

    /// <summary>Times one decoding run and measures the bandwidth after it; returns that measurement for the next run.</summary>
    static double TimeOne(Gpt model, int tokens, long bytesPerToken, double before, int threads, List<Timed> runs)
    {
        double seconds = BenchReport.Seconds(() => Decode(model, tokens));
        double after = Bandwidth.Measure(threads);
        runs.Add(new Timed(tokens / seconds, Math.Max(before, after)));
        return after;
    }

    static string Shares(List<Timed> runs, long bytesPerToken) =>
        string.Join(", ", runs.Select(r =>
            $"{r.TokensPerSecond:F1} tokens/s at {r.Bandwidth / 1e9:F1} GB/s, {r.Share(bytesPerToken):P0}"));

    static string Range(IEnumerable<Timed> runs)
    {
        var all = runs.Select(r => r.Bandwidth / 1e9).ToList();
        return $"{all.Min():F1} to {all.Max():F1} GB/s from run to run";
    }

    /// <summary>
    /// Bytes of weights one token reads: every parameter once (int8 ones as values and scales), but only one row of
    /// the position table; the token embedding counts once, as the head that reads all of it.
    /// </summary>
    static long WeightBytesPerToken(Gpt model) => model.NamedParameters().Sum(p =>
        p.Parameter.Quantized is { } q ? q.Bytes
        : p.Name == "wpe.weight" ? (long)model.Config.Width * sizeof(float)
        : (long)p.Parameter.Count * sizeof(float));

    /// <summary>Feeds token 0, then <paramref name="tokens"/> greedy tokens, one at a time through the cache.</summary>
    static void Decode(Gpt model, int tokens)
    {
        using var cache = new KvCache(model.Blocks.Count);
        using var noGrad = GradMode.NoGrad();
        int next = 0;
        for (int i = 0; i < tokens; i++)
        {
            using var scope = TensorScope.Begin();
            var logits = model.Forward([next], 1, 1, cache);                 // (1, 1, V)
            next = ArgMax(logits.Data);
        }
    }

    static int ArgMax(ReadOnlySpan<float> values) => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(values);
}

/// <summary>
/// Memory bandwidth as a large streaming read: every thread sums its share of a 1 GiB array (allocated once) with vector
/// loads.
/// </summary>
internal static unsafe class Bandwidth
{
    const long Floats = 1L << 28; // 1 GiB: far beyond any cache

    /// <summary>The best of <paramref name="trials"/> full reads, bytes per second.</summary>
    public static double Measure(int threads, int trials = 3)
    {
        var data = _data ??= Touched();
        double best = 0;
        float sink = 0;
        fixed (float* p = data)
        {
            float* start = p;
            for (int trial = 0; trial < trials; trial++)
            {
                var watch = Stopwatch.StartNew();
                Kernels.Parallel.For((int)(Floats / Chunk), 1, (from, to) =>
                {
                    float s = Sum(start + (long)from * Chunk, (long)(to - from) * Chunk);
                    if (s == -1) sink += s; // keeps the sums alive
                });
                best = Math.Max(best, Floats * sizeof(float) / watch.Elapsed.TotalSeconds);
            }
        }
        GC.KeepAlive(sink);
        return best;
    }

    const int Chunk = 1 << 16;

    /// <summary>The array read, allocated on first use and kept for the measurements that follow.</summary>
    static float[]? _data;

    static float[] Touched()
    {
        var data = GC.AllocateUninitializedArray<float>((int)Floats, pinned: true);
        Array.Fill(data, 1f); // touch every page
        return data;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Sum(float* p, long count)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (long i = 0; i < count; i += 64)
            {
                a0 += Vector512.Load(p + i); a1 += Vector512.Load(p + i + 16);
                a2 += Vector512.Load(p + i + 32); a3 += Vector512.Load(p + i + 48);
            }
            return Vector512.Sum(a0 + a1 + a2 + a3);
        }
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        for (long i = 0; i < count; i += 32)
        {
            b0 += Vector256.Load(p + i); b1 += Vector256.Load(p + i + 8);
            b2 += Vector256.Load(p + i + 16); b3 += Vector256.Load(p + i + 24);
        }
        return Vector256.Sum(b0 + b1 + b2 + b3);
    }
}
