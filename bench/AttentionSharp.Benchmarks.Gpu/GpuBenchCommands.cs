using System.CommandLine;
using AttentionSharp.Gpu;

namespace AttentionSharp.Benchmarks;

/// <summary>
/// The GPU benchmarks' command line: <c>gemm --device cuda</c>, <c>train --device cuda</c> and <c>gpu-check</c>. The
/// benchmark program and the <c>attn</c> command both send such arguments here (<see cref="Handles"/>), so they run in
/// process, without TorchSharp or a .NET SDK (the published attn on a GPU machine). Without a GPU the device's one
/// sentence is printed and the exit code is 3.
/// </summary>
public static class GpuBenchCommands
{
    /// <summary>
    /// True for the arguments of a GPU benchmark: gpu-check, or any command with <c>--device cuda</c> (or simulator).
    /// </summary>
    public static bool Handles(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Count > 0 && args[0] == "gpu-check") return true;
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] is "--device=cuda" or "--device=simulator") return true;
            if (args[i] == "--device" && i + 1 < args.Count && args[i + 1] is "cuda" or "simulator") return true;
        }
        return false;
    }

    /// <summary>Parses and runs; returns the exit code.</summary>
    public static int Run(string[] args) => Create().Parse(args).Invoke();

    public static RootCommand Create()
    {
        var root = new RootCommand("AttentionSharp's GPU benchmarks and check (ILGPU kernels on a CUDA device).");
        root.Subcommands.Add(CreateGemm());
        root.Subcommands.Add(CreateTrain());
        root.Subcommands.Add(CreateCheck());
        return root;
    }

    static Option<string> DeviceOption() => new("--device")
    {
        Description = "cuda (the first NVIDIA GPU), or simulator (ILGPU's CPU accelerator: checks the command, its " +
                      "figures mean nothing).",
        DefaultValueFactory = _ => "cuda",
    };

    static Option<string?> JsonOption() => new("--json") { Description = "Also write the results to this JSON file." };

    static Command CreateGemm()
    {
        var device = DeviceOption();
        var json = JsonOption();
        var shapes = new Option<string[]?>("--shapes")
        {
            Description = "Shapes as MxKxN (default: the CPU benchmark's five).", AllowMultipleArgumentsPerToken = true,
        };
        var transposeA = new Option<bool>("--transpose-a") { Description = "C = Aᵀ·B with A stored K×M." };
        var transposeB = new Option<bool>("--transpose-b")
        {
            Description = "C = A·Bᵀ with B stored N×K (a Linear layer's forward pass).",
        };
        var command = new Command("gemm", "GFLOP/s of the device's SGEMM on transformer shapes and their share of the FP32 peak.")
        {
            device, json, shapes, transposeA, transposeB,
        };
        command.SetAction(parse => OnDevice(parse.GetValue(device)!, gpu =>
        {
            var options = new GpuGemmBenchOptions
            {
                JsonPath = parse.GetValue(json), TransposeA = parse.GetValue(transposeA), TransposeB = parse.GetValue(transposeB),
            };
            if (parse.GetValue(shapes) is { Length: > 0 } given)
                options = options with { Shapes = [.. given.Select(ParseShape)] };
            return GpuGemmBenchmark.Run(gpu, options, Console.Out);
        }));
        return command;
    }

    static Command CreateTrain()
    {
        var device = DeviceOption();
        var json = JsonOption();
        var configs = new Option<string[]?>("--configs")
        {
            Description = $"Configurations among {string.Join(", ", TrainBenchConfig.All.Select(c => c.Name))} " +
                          $"(default: {string.Join(" ", TrainBenchConfig.GpuDefault)}).",
            AllowMultipleArgumentsPerToken = true,
        };
        var steps = new Option<int?>("--steps")
        {
            Description = "Timed steps per configuration (default 10); the median counts.",
        };
        var command = new Command("train",
            "Milliseconds per GPT training step on the device, tokens/s and MFU against the FP32 peak.")
        {
            device, json, configs, steps,
        };
        command.SetAction(parse => OnDevice(parse.GetValue(device)!, gpu =>
        {
            var options = new GpuTrainBenchOptions { JsonPath = parse.GetValue(json) };
            if (parse.GetValue(configs) is { Length: > 0 } c) options = options with { Configs = c };
            if (parse.GetValue(steps) is { } s) options = options with { Steps = s };
            return GpuTrainBenchmark.Run(gpu, options, Console.Out);
        }));
        return command;
    }

    static Command CreateCheck()
    {
        var device = DeviceOption();
        var json = JsonOption();
        var command = new Command("gpu-check", "The GPU GPT against the CPU engine on the device (logits, loss, every " +
                                               "gradient, AdamW steps); exit code 1 when a tensor is out of tolerance.")
        {
            device, json,
        };
        command.SetAction(parse =>
            OnDevice(parse.GetValue(device)!, gpu => GpuCheck.Run(gpu, parse.GetValue(json), Console.Out)));
        return command;
    }

    /// <summary>Opens the device and runs; a missing GPU or a bad option is one sentence on stderr and a non-zero exit.</summary>
    static int OnDevice(string name, Func<GpuDevice, int> run)
    {
        try
        {
            using var device = GpuBenchDevice.Open(name);
            return run(device);
        }
        catch (GpuUnavailableException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 3;
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    static (int M, int K, int N) ParseShape(string text)
    {
        var parts = text.Split('x');
        return parts.Length == 3 && int.TryParse(parts[0], out int m) && int.TryParse(parts[1], out int k)
               && int.TryParse(parts[2], out int n) && m > 0 && k > 0 && n > 0
            ? (m, k, n)
            : throw new ArgumentException(
                $"--shapes: '{text}' is not MxKxN (three positive whole numbers joined by x, such as 4096x768x3072).");
    }
}
