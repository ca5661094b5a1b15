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
        var command = new Command("compare", "Measure attention against recurrence: long-range recall, speed against length, vanishing gradients.") { quick, output, seed };
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
                Console.WriteLine($"1/3 long-range recall: {options.Distances.Length} distances × 4 models × {options.StepsPerRun} steps (at most {options.SecondsPerRun} s each)");
                var recall = comparison.LongRange(cancel.Token);
                Console.WriteLine("2/3 training speed against sequence length");
                var speed = comparison.Speed(cancel.Token);
                Console.WriteLine("3/3 gradient norm against distance");
                var gradients = comparison.Gradients();
                string machine = $"{Environment.ProcessorCount} cores, {Kernels.Parallel.ThreadCount} threads, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
                ComparisonReport.Write(dir, options, machine, recall, speed, gradients);
                Console.WriteLine($"Wrote {Path.Combine(dir, "report.md")}, results.json, recall.png, speed.png and gradients.png.");
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
