using System.Diagnostics;

namespace AttentionSharp.Tests.Cli;

/// <summary>Runs the attn command (built beside the tests) in a child process.</summary>
static class AttnProcess
{
    static string Dll => Path.Combine(AppContext.BaseDirectory, "attn.dll");

    /// <summary>Starts attn with <paramref name="args"/>; output is collected and returned by <see cref="Finish"/>.</summary>
    public static Process Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        info.ArgumentList.Add(Dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) info.Environment[k] = v;
        var p = Process.Start(info) ?? throw new InvalidOperationException("attn did not start.");
        p.OutputDataReceived += (_, _) => { };
        return p;
    }

    /// <summary>Runs attn to the end and returns its exit code and output.</summary>
    public static (int Code, string Output) Run(params string[] args)
    {
        using var p = Start(args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(entireProcessTree: true); throw new TimeoutException($"attn {string.Join(' ', args)} ran over 3 minutes."); }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
