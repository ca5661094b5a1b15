using System.CommandLine;
using System.Diagnostics;

namespace AttentionSharp.Cli;

/// <summary>
/// <c>attn bench …</c>: runs the benchmark program (bench/AttentionSharp.Benchmarks) of a source checkout with the same
/// arguments. The benchmarks compare against TorchSharp, whose libtorch is a large download; keeping them in their own
/// program means `attn train` never needs it, and the installed tool does not carry them: it finds the checkout above
/// the current directory or the attn binary, or at <c>--source DIR</c>. The GPU benchmarks (<c>--device cuda</c>,
/// <c>gpu-check</c>) need no TorchSharp and run in this process instead, so a published attn runs them on a GPU machine
/// without the SDK.
/// </summary>
static class BenchCommand
{
    const string ProjectPath = "bench/AttentionSharp.Benchmarks/AttentionSharp.Benchmarks.csproj";

    public static Command Create()
    {
        var rest = new Argument<string[]>("arguments") { Description = "gemm | attention, then their options (--json FILE, --threads N, …).", Arity = ArgumentArity.ZeroOrMore };
        var source = new Option<string?>("--source") { HelpName = "DIR", Description = "The root of a source checkout of AttentionSharp (default: the first directory above the current one or the attn binary that has bench/AttentionSharp.Benchmarks)." };
        var command = new Command("bench",
            "Benchmarks against TorchSharp on this machine: `attn bench gemm`, `attn bench attention`, `attn bench train`, " +
            "`attn bench decode` (--help for options). Needs a source checkout of the repository (it runs " +
            "bench/AttentionSharp.Benchmarks there with dotnet run): run it from a clone, or pass --source DIR. On an NVIDIA " +
            "GPU, `attn bench gemm --device cuda`, `attn bench train --device cuda` and `attn bench gpu-check` run in this " +
            "process, without a checkout.") { rest, source };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(r => CliErrors.Run(() =>
        {
            var args = (r.GetValue(rest) ?? []).Concat(r.UnmatchedTokens).ToArray();
            if (Benchmarks.GpuBenchCommands.Handles(args)) return Benchmarks.GpuBenchCommands.Run(args);
            var project = r.GetValue(source) is { } root ? ProjectIn(root) : FindProject();
            var start = new ProcessStartInfo("dotnet") { UseShellExecute = false };
            foreach (var a in new[] { "run", "-c", "Release", "--project", project, "--" }.Concat(args)) start.ArgumentList.Add(a);
            Console.Error.WriteLine($"Running the benchmarks: dotnet run -c Release --project {project} -- {string.Join(' ', args)}");
            using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet could not be started.");
            process.WaitForExit();
            return process.ExitCode;
        }));
        return command;
    }

    /// <summary>The benchmark project of the checkout at <paramref name="root"/> (--source).</summary>
    static string ProjectIn(string root)
    {
        var candidate = Path.GetFullPath(Path.Combine(root, ProjectPath));
        return File.Exists(candidate) ? candidate : throw new ArgumentException(
            $"--source {root}: {candidate} was not found; pass the root of a source checkout of AttentionSharp (the directory with bench/ and src/).");
    }

    /// <summary>The benchmark project above the current directory or the attn binary (a build in the source tree).</summary>
    static string FindProject()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, ProjectPath);
                if (File.Exists(candidate)) return candidate;
            }
        throw new InvalidOperationException(
            "attn bench runs the benchmark program of a source checkout (bench/AttentionSharp.Benchmarks) with TorchSharp, "
            + "and none was found above the current directory or the attn binary; run it from a clone of the repository, or pass --source DIR.");
    }
}
