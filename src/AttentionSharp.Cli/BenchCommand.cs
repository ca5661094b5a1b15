using System.CommandLine;
using System.Diagnostics;

namespace AttentionSharp.Cli;

/// <summary>
/// <c>attn bench …</c>: runs the benchmark program (bench/AttentionSharp.Benchmarks) of this source tree with the same
/// arguments. The benchmarks compare against TorchSharp, whose libtorch is a large download; keeping them in their own
/// program means `attn train` never needs it.
/// </summary>
static class BenchCommand
{
    const string ProjectPath = "bench/AttentionSharp.Benchmarks/AttentionSharp.Benchmarks.csproj";

    public static Command Create()
    {
        var rest = new Argument<string[]>("arguments") { Description = "gemm | attention, then their options (--json FILE, --threads N, …).", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("bench", "Benchmarks against TorchSharp on this machine: `attn bench gemm`, `attn bench attention`, `attn bench train`, `attn bench decode` (--help for options).") { rest };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(r => CliErrors.Run(() =>
        {
            var args = (r.GetValue(rest) ?? []).Concat(r.UnmatchedTokens).ToArray();
            var project = FindProject() ?? throw new InvalidOperationException(
                $"attn bench runs the benchmark program from the source tree, and {ProjectPath} was not found above the current directory or the attn binary.");
            var start = new ProcessStartInfo("dotnet") { UseShellExecute = false };
            foreach (var a in new[] { "run", "-c", "Release", "--project", project, "--" }.Concat(args)) start.ArgumentList.Add(a);
            Console.Error.WriteLine($"Running the benchmarks: dotnet run -c Release --project {project} -- {string.Join(' ', args)}");
            using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet could not be started.");
            process.WaitForExit();
            return process.ExitCode;
        }));
        return command;
    }

    static string? FindProject()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, ProjectPath);
                if (File.Exists(candidate)) return candidate;
            }
        return null;
    }
}
