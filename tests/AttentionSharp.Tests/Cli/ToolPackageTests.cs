using System.Diagnostics;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Cli;

/// <summary>
/// attn as users get it: the CLI packed by <c>dotnet pack</c> as a .NET tool, installed by <c>dotnet tool install</c>
/// into a tool path, prints its version and trains a tiny model from there, with no source tree or build output beside it.
/// </summary>
public class ToolPackageTests(Xunit.Abstractions.ITestOutputHelper output)
{
    // About a minute on 2 idle cores (pack 30 s, install 10 s, train a few seconds); the limit leaves room for busy
    // cores, and the test kills what is still running there.
    static readonly TimeSpan Limit = TimeSpan.FromMinutes(4);

    [Fact]
    [Trait("Category", "Slow")]
    public void PackedToolInstallsPrintsItsVersionAndTrains()
    {
        var clock = Stopwatch.StartNew();
        using var dir = new TempDirectory();
        string packages = dir.File("packages"), tools = dir.File("tools"), run = dir.File("run");
        var (root, configuration) = SourceTree();
        var version = ToolVersion();

        // Packs the build the tests run against (the test project builds the CLI in its own configuration).
        Run(Dotnet, ["pack", Path.Combine(root, "src", "AttentionSharp.Cli"), "-c", configuration, "--no-build", "-o", packages,
                     "-nologo", "-nodeReuse:false"], dir.Path, clock);
        var package = Path.Combine(packages, $"attn.{version}.nupkg");
        Assert.True(File.Exists(package), $"dotnet pack wrote no {Path.GetFileName(package)}; it wrote: "
            + string.Join(", ", Directory.EnumerateFiles(packages).Select(Path.GetFileName)));

        // The packed folder is the only source, so the install can take nothing but this package.
        var config = dir.Write("nuget.config", $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="packed" value="{packages}" />
              </packageSources>
            </configuration>
            """);
        Run(Dotnet, ["tool", "install", "attn", "--tool-path", tools, "--configfile", config, "--version", version], dir.Path, clock);
        var attn = Path.Combine(tools, OperatingSystem.IsWindows() ? "attn.exe" : "attn");
        Assert.True(File.Exists(attn), $"dotnet tool install put no attn in the tool path; it holds: "
            + string.Join(", ", Directory.EnumerateFileSystemEntries(tools).Select(Path.GetFileName)));

        var printed = Run(attn, ["--version"], dir.Path, clock).Trim();
        Assert.True(printed.Split('+')[0] == version, $"attn --version printed '{printed}', expected {version}.");

        var data = dir.Write("small.txt", string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog.\n", 40)));
        Run(attn, ["train", "--data", data, "--steps", "2", "--minutes", "0", "--layers", "1", "--width", "16", "--heads", "2",
                   "--context", "16", "--batch", "2", "--out", run], dir.Path, clock);
        var model = Path.Combine(run, "checkpoint", "model.safetensors");
        Assert.True(File.Exists(model) && new FileInfo(model).Length > 0, $"attn train from the installed tool wrote no checkpoint at {model}.");
        output.WriteLine($"packed, installed, ran --version and train in {clock.Elapsed.TotalSeconds:F0} s");
    }

    /// <summary>The version the build gave attn (its informational version without the commit): the one it packs as.</summary>
    static string ToolVersion()
    {
        var product = FileVersionInfo.GetVersionInfo(Path.Combine(AppContext.BaseDirectory, "attn.dll")).ProductVersion;
        return product is { Length: > 0 } ? product.Split('+')[0]
            : throw new InvalidOperationException("attn.dll has no informational version; src/Directory.Build.props sets one.");
    }

    /// <summary>The repository root above the test assembly, and the configuration it was built in (…/bin/CONFIG/TFM).</summary>
    static (string Root, string Configuration) SourceTree()
    {
        var testDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var root = testDir;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "AttentionSharp.slnx"))) root = root.Parent;
        return (root?.FullName ?? throw new InvalidOperationException("The repository root (AttentionSharp.slnx) was not found above the test assembly."),
                testDir.Parent!.Name);
    }

    static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    /// <summary>
    /// Runs <paramref name="file"/> to its end within what is left of <see cref="Limit"/>; a non-zero exit or the limit fails
    /// the test with the command's output. Returns standard output.
    /// </summary>
    string Run(string file, string[] args, string workingDirectory, Stopwatch clock)
    {
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        // The test host may run under MSBuild (dotnet test); a child dotnet pack must find its own SDK, and no build node
        // may outlive it holding the output pipes open.
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            info.Environment.Remove(name);
        info.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        // The installed tool's launcher finds the runtime beside the dotnet that runs the tests.
        if (Path.IsPathRooted(Dotnet)) info.Environment["DOTNET_ROOT"] = Path.GetDirectoryName(Dotnet);

        var command = $"{Path.GetFileName(file)} {string.Join(' ', args)}";
        using var p = Process.Start(info) ?? throw new InvalidOperationException($"{command} did not start.");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var left = Limit - clock.Elapsed;
        if (left <= TimeSpan.Zero || !p.WaitForExit(left))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            Assert.Fail($"{command} was still running when the test reached its limit of {Limit.TotalSeconds:F0} s.");
        }
        // Output ends with the process; a few seconds' grace covers the pipes' last bytes.
        Task.WaitAll([stdout, stderr], TimeSpan.FromSeconds(10));
        string text = stdout.IsCompleted ? stdout.Result : "", errors = stderr.IsCompleted ? stderr.Result : "";
        output.WriteLine($"$ {command}  ({clock.Elapsed.TotalSeconds:F0} s)\n{text}{errors}");
        Assert.True(p.ExitCode == 0, $"{command} exited with {p.ExitCode}:\n{text}{errors}");
        return text;
    }
}
