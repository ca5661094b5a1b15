using System.CommandLine;
namespace AttentionSharp.Benchmarks;

/// <summary>
/// The benchmarks' command line (<c>attn bench …</c> runs this program): side-by-side figures against TorchSharp, one
/// subcommand per benchmark.
/// </summary>
public static class BenchCommands
{
    public static RootCommand Create()
    {
        var bench = new RootCommand("AttentionSharp benchmarks: figures next to TorchSharp (libtorch + MKL) on this machine.");
        bench.Subcommands.Add(CreateGemm());
        bench.Subcommands.Add(CreateAttention());
        bench.Subcommands.Add(CreateTrain());
        bench.Subcommands.Add(CreateDecode());
        bench.Subcommands.Add(CreateServe());
        bench.Subcommands.Add(new Command("gpu-check",
            "The GPU GPT against the CPU engine on a CUDA device (attn bench gpu-check --help)."));
        return bench;
    }

    /// <summary>
    /// --device: cpu here; cuda sends the whole command to the GPU benchmarks (<see cref="GpuBenchCommands"/>) before this
    /// parser sees it, so only its help and cpu reach this option.
    /// </summary>
    static Option<string> CpuDevice()
    {
        var device = new Option<string>("--device")
        {
            Description = "cpu (default), or cuda: the same benchmark on the first NVIDIA GPU (no TorchSharp peer there).",
            DefaultValueFactory = _ => "cpu",
        };
        device.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string>() is not "cpu")
                r.AddError($"--device '{r.GetValueOrDefault<string>()}' is unknown; use cpu or cuda.");
        });
        return device;
    }

    static Command CreateGemm()
    {
        var json = new Option<string?>("--json") { Description = "Also write the results to this JSON file." };
        var threads = new Option<int?>("--threads") { Description = "Threads for both libraries (default: all cores, or ATTN_THREADS)." };
        var shapes = new Option<string[]?>("--shapes") { Description = "Shapes as MxKxN (default: five transformer shapes).", AllowMultipleArgumentsPerToken = true };
        var transposeA = new Option<bool>("--transpose-a") { Description = "C = Aᵀ·B with A stored K×M, as in a weight gradient." };
        var transposeB = new Option<bool>("--transpose-b") { Description = "C = A·Bᵀ with B stored N×K, as in a Linear layer's forward pass." };
        var gemm = new Command("gemm", "GFLOPS of the fp32 GEMM on transformer shapes, next to TorchSharp and the " +
                                       "measured FMA peak; with --device cuda, the GPU's SGEMM against its FP32 peak.");
        foreach (var o in new Option[] { json, threads, shapes, transposeA, transposeB, CpuDevice() }) gemm.Options.Add(o);
        gemm.SetAction(parse =>
        {
            var options = new GemmBenchOptions { JsonPath = parse.GetValue(json), TransposeA = parse.GetValue(transposeA), TransposeB = parse.GetValue(transposeB) };
            if (parse.GetValue(threads) is { } n) options = options with { Threads = n };
            if (parse.GetValue(shapes) is { Length: > 0 } given)
            {
                var parsed = new List<(int M, int K, int N)>();
                foreach (var text in given)
                {
                    var parts = text.Split('x');
                    if (parts.Length != 3 || !int.TryParse(parts[0], out int m) || !int.TryParse(parts[1], out int k) || !int.TryParse(parts[2], out int nn))
                    {
                        Console.Error.WriteLine($"--shapes: '{text}' is not MxKxN (three whole numbers joined by x, such as 128x768x128).");
                        return 2;
                    }
                    parsed.Add((m, k, nn));
                }
                options = options with { Shapes = parsed };
            }
            return GemmBenchmark.Run(options, Console.Out);
        });
        return gemm;
    }

    static Command CreateAttention()
    {
        var json = new Option<string?>("--json") { Description = "Also write the results to this JSON file." };
        var threads = new Option<int?>("--threads")
        {
            Description = "Threads for both libraries (default: all cores, or ATTN_THREADS).",
        };
        var lengths = new Option<int[]?>("--lengths")
        {
            Description = "Sequence lengths T (default: 256 1024 4096).", AllowMultipleArgumentsPerToken = true,
        };
        var longContext = new Option<bool>("--long")
        {
            Description = "Long context instead: plain, flash, sliding-window and linear attention for T = 1k … 64k, " +
                          "time and peak memory, and their scaling exponents.",
        };
        var batch = new Option<int?>("--batch")
        {
            Description = "B (default 1): a task's batch, with --lengths of its sequences, times its attention.",
        };
        var heads = new Option<int?>("--heads") { Description = "NH (default 12)." };
        var headSize = new Option<int?>("--head-size") { Description = "HS (default 64)." };
        var attention = new Command("attention", "Milliseconds of flash and plain attention, forward and forward+backward, " +
            "next to TorchSharp's scaled_dot_product_attention.");
        foreach (var o in new Option[] { json, threads, lengths, longContext, batch, heads, headSize }) attention.Options.Add(o);
        attention.SetAction(parse =>
        {
            if (parse.GetValue(longContext))
            {
                if (parse.GetValue(batch) is not null || parse.GetValue(heads) is not null
                    || parse.GetValue(headSize) is not null)
                {
                    Console.Error.WriteLine(
                        "--batch, --heads and --head-size shape the short-context benchmark; --long has its own shapes.");
                    return 2;
                }
                var longOptions = new LongAttentionBenchOptions { JsonPath = parse.GetValue(json) };
                if (parse.GetValue(threads) is { } m) longOptions = longOptions with { Threads = m };
                if (parse.GetValue(lengths) is { Length: > 0 } l) longOptions = longOptions with { Lengths = l };
                return LongAttentionBenchmark.Run(longOptions, Console.Out);
            }
            var options = new AttentionBenchOptions { JsonPath = parse.GetValue(json) };
            if (parse.GetValue(threads) is { } n) options = options with { Threads = n };
            if (parse.GetValue(lengths) is { Length: > 0 } t) options = options with { Lengths = t };
            if (parse.GetValue(batch) is { } b) options = options with { Batch = b };
            if (parse.GetValue(heads) is { } h) options = options with { Heads = h };
            if (parse.GetValue(headSize) is { } hs) options = options with { HeadSize = hs };
            return AttentionBenchmark.Run(options, Console.Out);
        });
        return attention;
    }

    static Command CreateTrain()
    {
        var json = new Option<string?>("--json") { Description = "Also write the results to this JSON file." };
        var threads = new Option<int?>("--threads") { Description = "Threads for both libraries (default 2)." };
        var configs = new Option<string[]?>("--configs")
        {
            Description = "Configurations (default: baby main char-small gpt2-124M).",
            AllowMultipleArgumentsPerToken = true,
        };
        var steps = new Option<int?>("--steps") { Description = "Timed steps per library (default 10); the median counts." };
        var profile = new Option<bool>("--profile") { Description = "Also print our time per operation kind, forward and backward." };
        var train = new Command("train", "Milliseconds per GPT training step (forward, backward, clip, AdamW), " +
                                         "tokens/s, MFU and peak memory, next to the same model in TorchSharp; with " +
                                         "--device cuda, the step on the GPU.");
        foreach (var o in new Option[] { json, threads, configs, steps, profile, CpuDevice() }) train.Options.Add(o);
        train.SetAction(parse =>
        {
            var options = new TrainBenchOptions { JsonPath = parse.GetValue(json), Profile = parse.GetValue(profile) };
            if (parse.GetValue(threads) is { } n) options = options with { Threads = n };
            if (parse.GetValue(configs) is { Length: > 0 } c) options = options with { Configs = c };
            if (parse.GetValue(steps) is { } s) options = options with { Steps = s };
            return TrainBenchmark.Run(options, Console.Out);
        });
        return train;
    }

    static Command CreateDecode()
    {
        var json = new Option<string?>("--json") { Description = "Also write the results to this JSON file." };
        var threads = new Option<int?>("--threads") { Description = "Threads (default 2)." };
        var tokens = new Option<int?>("--tokens") { Description = "Tokens to decode (default 64)." };
        var int8 = new Option<bool>("--int8")
        {
            Description = "Also decode with int8 weights and report fp32 and int8 side by side, each against its own " +
                          "bandwidth limit.",
        };
        var decode = new Command("decode",
            "Tokens per second of GPT-2-124M-shaped decoding (batch 1, K/V cache) against the memory-bandwidth limit.");
        foreach (var o in new Option[] { json, threads, tokens, int8 }) decode.Options.Add(o);
        decode.SetAction(parse =>
        {
            var options = new DecodeBenchOptions { JsonPath = parse.GetValue(json), Int8 = parse.GetValue(int8) };
            if (parse.GetValue(threads) is { } n) options = options with { Threads = n };
            if (parse.GetValue(tokens) is { } t) options = options with { Tokens = t };
            return DecodeBenchmark.Run(options, Console.Out);
        });
        return decode;
    }

    static Command CreateServe()
    {
        var json = new Option<string?>("--json") { Description = "Also write the results to this JSON file." };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: all cores)." };
        var clients = new Option<int[]?>("--clients")
        {
            Description = "Concurrent clients, measured in turn (default: 1 2 4 8 16).",
            AllowMultipleArgumentsPerToken = true,
        };
        var requests = new Option<int?>("--requests")
        {
            Description = "Completions per client, at least (default 3; more with few clients, so each run generates " +
                          "1536 tokens).",
        };
        var tokens = new Option<int?>("--tokens") { Description = "max_tokens per completion (default 48)." };
        var layers = new Option<int?>("--layers") { Description = "L of the model (default 6)." };
        var width = new Option<int?>("--width") { Description = "C of the model (default 384, 64 per head)." };
        var stream = new Option<bool>("--stream") { Description = "Stream the completions (server-sent events)." };
        var serve = new Command("serve",
            "Completion tokens per second of attn serve's server at 1, 2, 4, 8 and 16 concurrent clients " +
            "(continuous batching).");
        foreach (var o in new Option[] { json, threads, clients, requests, tokens, layers, width, stream }) serve.Options.Add(o);
        serve.SetAction(parse =>
        {
            var options = new ServeBenchOptions { JsonPath = parse.GetValue(json), Stream = parse.GetValue(stream) };
            if (parse.GetValue(threads) is { } n) options = options with { Threads = n };
            if (parse.GetValue(clients) is { Length: > 0 } c) options = options with { Clients = c };
            if (parse.GetValue(requests) is { } r) options = options with { Requests = r };
            if (parse.GetValue(tokens) is { } t) options = options with { Tokens = t };
            if (parse.GetValue(layers) is { } l) options = options with { Model = options.Model with { Layers = l } };
            if (parse.GetValue(width) is { } w)
                options = options with { Model = options.Model with { Width = w, Heads = Math.Max(1, w / 64) } };
            return ServeBenchmark.Run(options, Console.Out);
        });
        return serve;
    }
}
