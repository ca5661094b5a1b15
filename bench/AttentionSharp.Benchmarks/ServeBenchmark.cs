using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using AttentionSharp.Data;
using AttentionSharp.Models;
using AttentionSharp.Serving;

namespace AttentionSharp.Benchmarks;

/// <summary>What <see cref="ServeBenchmark.Run"/> measures and where it reports.</summary>
public sealed record ServeBenchOptions
{
    /// <summary>The model: random weights (speed does not depend on them), a character vocabulary of printable ASCII.</summary>
    public GptConfig Model { get; init; } = new()
    {
        VocabSize = ServeBenchmark.Alphabet.Length + 1, ContextLength = 256, Layers = 6, Heads = 6, Width = 384,
    };

    /// <summary>Numbers of concurrent clients, each measured in turn.</summary>
    public IReadOnlyList<int> Clients { get; init; } = [1, 2, 4, 8, 16];

    /// <summary>
    /// Completions each client asks for, one after the other (more when fewer clients must reach
    /// <see cref="MinTokens"/>).
    /// </summary>
    public int Requests { get; init; } = 3;

    /// <summary>Completion tokens each measurement generates at least, so that one client is timed as long as many.</summary>
    public int MinTokens { get; init; } = 1536;

    /// <summary>Timed runs at each number of clients; the median rate counts.</summary>
    public int Repetitions { get; init; } = 3;

    /// <summary>max_tokens of each completion (all run to it: the vocabulary has no end-of-text).</summary>
    public int Tokens { get; init; } = 48;

    /// <summary>Stream the completions as server-sent events instead of whole responses.</summary>
    public bool Stream { get; init; }

    public int Threads { get; init; } = Environment.ProcessorCount;

    public string? JsonPath { get; init; }

    public string? Validate() =>
        Threads < 1 ? $"--threads must be at least 1, got {Threads}."
        : Clients.Count == 0 || Clients.Any(c => c < 1) ? "--clients must be numbers ≥ 1."
        : Requests < 1 ? $"--requests must be at least 1, got {Requests}."
        : Repetitions < 1 ? $"Repetitions must be at least 1, got {Repetitions}."
        : Tokens < 1 || Tokens + ServeBenchmark.Prompt.Length > Model.ContextLength
            ? $"--tokens must be in [1, {Model.ContextLength - ServeBenchmark.Prompt.Length}], got {Tokens}."
        : null;
}

/// <summary>
/// The serving benchmark: an in-process <see cref="CompletionServer"/> on the loopback address, and N clients that
/// each ask for a few completions one after another; completion tokens per second at each N, and the speed-up over one
/// client. Concurrent requests decode together (one batched step for all sequences), so the rate should grow with N
/// until the step is no longer bound by reading the weights.
/// </summary>
public static class ServeBenchmark
{
    /// <summary>The vocabulary: printable ASCII.</summary>
    internal static readonly string Alphabet = new([.. Enumerable.Range(32, 95).Select(c => (char)c)]);

    internal const string Prompt = "The quick brown fox ";

    public static int Run(ServeBenchOptions options, TextWriter output)
    {
        if (options.Validate() is { } problem) { Console.Error.WriteLine(problem); return 2; }
        int previousThreads = Kernels.Parallel.ThreadCount;
        Kernels.Parallel.ThreadCount = options.Threads;
        try { return RunAsync(options, output).GetAwaiter().GetResult(); }
        finally { Kernels.Parallel.ThreadCount = previousThreads; }
    }

    static async Task<int> RunAsync(ServeBenchOptions options, TextWriter output)
    {
        var tokenizer = CharTokenizer.Train(Alphabet);
        var model = new Gpt(options.Model, new Generator(7));
        int most = options.Clients.Max();
        var serve = new ServeOptions { Port = 0, MaxSequences = most, MaxQueue = most, ModelName = "bench" };
        await using var server = await CompletionServer.StartAsync(model, tokenizer, serve);
        using var http = new HttpClient { BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromMinutes(10) };

        // Warm-up: code compiled, pools and caches filled, at the most clients and at one.
        await Measure(http, options with { Requests = 1, MinTokens = 0 }, most);
        await Measure(http, options with { Requests = 1, MinTokens = 0 }, 1);
        var m = options.Model;
        output.WriteLine($"Completions server, model L={m.Layers} C={m.Width} NH={m.Heads} V={m.VocabSize} T={m.ContextLength}, "
                         + $"completions of {options.Tokens} tokens, at least {options.Requests} per client and "
                         + $"{options.MinTokens} tokens per run, {(options.Stream ? "streamed" : "whole")}, "
                         + $"{options.Threads} thread(s), "
                         + $"median of {options.Repetitions} runs");
        output.WriteLine($"{"clients",8} {"tokens",8} {"seconds",8} {"tokens/s",9} {"speed-up",9}");
        var rates = new Dictionary<int, double>();
        foreach (int clients in options.Clients)
        {
            var runs = new List<(int Tokens, double Seconds)>();
            for (int r = 0; r < options.Repetitions; r++) runs.Add(await Measure(http, options, clients));
            var (tokens, seconds) = runs.OrderBy(run => run.Tokens / run.Seconds).ElementAt(runs.Count / 2);
            rates[clients] = tokens / seconds;
            double speedUp = rates[clients] / rates[options.Clients[0]];
            output.WriteLine($"{clients,8} {tokens,8} {seconds,8:F2} {rates[clients],9:F1} {speedUp,8:F2}×");
        }
        double? ratio = rates.TryGetValue(8, out var eight) && rates.TryGetValue(1, out var one) ? eight / one : null;
        if (ratio is { } eightToOne) output.WriteLine($"8 clients : 1 client = {eightToOne:F2}");
        if (options.JsonPath is { } path)
        {
            BenchReport.WriteJson(path, new Dictionary<string, object?>
            {
                ["tokens_per_s"] = rates.ToDictionary(p => p.Key.ToString(), p => Math.Round(p.Value, 2)),
                ["ratio_8_to_1"] = ratio is { } x ? Math.Round(x, 3) : null,
                ["requests_per_client"] = options.Requests,
                ["min_tokens_per_run"] = options.MinTokens,
                ["repetitions"] = options.Repetitions,
                ["max_tokens"] = options.Tokens,
                ["stream"] = options.Stream,
                ["threads"] = options.Threads,
                ["model"] = new
                {
                    layers = m.Layers, width = m.Width, heads = m.Heads, vocab = m.VocabSize, context = m.ContextLength,
                },
            });
            output.WriteLine($"Wrote {path}");
        }
        return 0;
    }

    /// <summary>Completion tokens and seconds for <paramref name="clients"/> clients asking at once.</summary>
    static async Task<(int Tokens, double Seconds)> Measure(HttpClient http, ServeBenchOptions options, int clients)
    {
        int tokensPerRound = clients * options.Tokens;
        int requests = Math.Max(options.Requests, (options.MinTokens + tokensPerRound - 1) / tokensPerRound);
        long start = Stopwatch.GetTimestamp();
        var counts = await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
        {
            int tokens = 0;
            for (int i = 0; i < requests; i++) tokens += await Complete(http, options, (ulong)(c * 1000 + i));
            return tokens;
        }));
        return (counts.Sum(), Stopwatch.GetElapsedTime(start).TotalSeconds);
    }

    static async Task<int> Complete(HttpClient http, ServeBenchOptions options, ulong seed)
    {
        var body = new { prompt = Prompt, max_tokens = options.Tokens, seed, stream = options.Stream };
        using var response = await http.PostAsJsonAsync("/v1/completions", body);
        string text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"The server answered {(int)response.StatusCode}: {text}");
        // A stream's last chunk before [DONE] carries the token counts.
        string json = options.Stream ? text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)[^2]["data: ".Length..] : text;
        using var document = JsonDocument.Parse(json);
        return document.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
    }
}
