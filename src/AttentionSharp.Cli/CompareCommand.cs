using System.CommandLine;
using AttentionSharp.Experiments;

namespace AttentionSharp.Cli;

/// <summary>
/// `attn compare`: RNN, LSTM, GRU and Transformer at matched parameters and training time, on long-range recall, training
/// speed against length, and gradient decay with distance; writes DIR/report.md, DIR/results.json and PNG plots.
/// </summary>
static class CompareCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "The short version (a few minutes) instead of the full one (about half an hour)." };
        var output = new Option<string>("--out") { Description = "Directory for report.md, results.json and the plots.", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the models and data.", DefaultValueFactory = _ => 1 };
        var cache = new Option<string?>("--cache") { Description = "Data cache directory (the bottleneck experiment fetches CMUdict with npm)." };
        var command = new Command("compare", "Measure attention against recurrence: long-range recall, speed against length, vanishing gradients, the seq2seq bottleneck.") { quick, output, seed, cache };
        command.SetAction(r => CliErrors.Run(() =>
        {
            var options = (r.GetValue(quick) ? ComparisonOptions.Quick : ComparisonOptions.Full) with { Seed = r.GetValue(seed) };
            string dir = r.GetValue(output)!;
            Directory.CreateDirectory(dir);
            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                Console.WriteLine($"Comparing RNN, LSTM, GRU and Transformer ({options.Mode} mode, {Kernels.Parallel.ThreadCount} threads); results in {dir}.");
                var comparison = new Comparison(options, Console.WriteLine);
                // Fetch the bottleneck experiment's data first, so a missing npm fails before the long part.
                var dictionary = Data.CmuDict.Fetch(Data.DataCache.Resolve(r.GetValue(cache)), Console.Out);
                Console.WriteLine($"1/4 long-range recall: {options.Distances.Length} distances × 4 models × {options.StepsPerRun} steps (at most {options.SecondsPerRun} s each)");
                var recall = comparison.LongRange(cancel.Token);
                Console.WriteLine("2/4 training speed against sequence length");
                var speed = comparison.Speed(cancel.Token);
                Console.WriteLine("3/4 gradient norm against distance");
                var gradients = comparison.Gradients();
                Console.WriteLine($"4/4 the bottleneck: G2P with LSTM, LSTM + attention and Transformer, {options.BottleneckSeconds} s each");
                var split = dictionary.Split();
                var bottleneck = Bottleneck.Run(split.Train, split.Test.Where((_, i) => i % options.BottleneckTestStride == 0).ToList(),
                    Data.G2pVocabulary.ForCmuDict(keepStress: false), options.BottleneckSeconds, options.Seed, Console.WriteLine, cancel.Token);
                string machine = $"{Environment.ProcessorCount} cores, {Kernels.Parallel.ThreadCount} threads, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
                ComparisonReport.Write(dir, options, machine, recall, speed, gradients, bottleneck);
                Console.WriteLine($"Wrote {Path.Combine(dir, "report.md")}, results.json, recall.png, speed.png, gradients.png and bottleneck.png.");
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
}
