using System.Diagnostics;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Cli;

/// <summary>A tiny checkpoint written once by attn train, shared by the attn sample tests.</summary>
public sealed class TinyCheckpoint : IDisposable
{
    readonly TempDirectory _dir = new();

    public TinyCheckpoint()
    {
        var text = string.Concat(Enumerable.Repeat("the jury said that the cat sat on the mat. ", 40));
        var data = _dir.Write("small.txt", text);
        Path = _dir.File("run");
        var (code, output) = AttnProcess.Run("train", "--data", data, "--steps", "5", "--minutes", "0", "--layers", "1",
            "--width", "16", "--heads", "2", "--context", "32", "--batch", "2", "--tokenizer", "char", "--out", Path);
        Assert.True(code == 0, output);
    }

    public string Path { get; }

    public string Write(string name, string contents) => _dir.Write(name, contents);

    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// attn sample through a child process: prompts from a file, from standard input and in an interactive loop; several
/// samples; stop strings; errors that name the option.
/// </summary>
public class SampleCommandTests(TinyCheckpoint checkpoint) : IClassFixture<TinyCheckpoint>
{
    /// <summary>Runs attn sample on the checkpoint with <paramref name="stdin"/> as its standard input.</summary>
    (int Code, string Output, string Errors) Sample(string stdin, params string[] args)
    {
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        var info = new ProcessStartInfo(host)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "attn.dll"));
        foreach (var a in new[] { "sample", "--checkpoint", checkpoint.Path }.Concat(args)) info.ArgumentList.Add(a);
        using var p = Process.Start(info) ?? throw new InvalidOperationException("attn did not start.");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("attn sample ran over 3 minutes.");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The continuation of one prompt alone, as attn sample prints it (prompt, text, newline).</summary>
    string Alone(string prompt, params string[] args)
    {
        var (code, output, errors) = Sample("", ["--prompt", prompt, .. args]);
        Assert.True(code == 0, errors);
        return output;
    }

    static readonly string[] Short = ["--tokens", "12", "--seed", "3"];

    [Fact]
    public void PromptsFromAFileAreDecodedTogetherAndEachEqualsItsRunAlone()
    {
        var file = checkpoint.Write("prompts.txt", "the jury\n\n   \nthe cat sat on\nt\n");
        var (code, output, errors) = Sample("", ["--prompt-file", file, .. Short]);
        Assert.True(code == 0, errors);
        string[] prompts = ["the jury", "the cat sat on", "t"];
        string expected = string.Concat(prompts.Select((p, i) => $"--- prompt {i + 1} ---\n" + Alone(p, Short)));
        Assert.Equal(expected, output);

        // The same prompts from standard input.
        (code, var fromStdin, errors) = Sample("the jury\n\n   \nthe cat sat on\nt\n", ["--prompt", "-", .. Short]);
        Assert.True(code == 0, errors);
        Assert.Equal(output, fromStdin);
    }

    [Fact]
    public void SeveralSamplesAreReproducibleAndDiffer()
    {
        string[] args = ["--prompt", "the ", "--num-samples", "3", "--tokens", "20", "--temperature", "1.5",
                         "--seed", "4"];
        var (code, output, errors) = Sample("", args);
        Assert.True(code == 0, errors);
        Assert.Equal(output, Sample("", args).Output);
        var samples = output.Split("--- sample ", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, samples.Length);
        Assert.Equal(3, samples.Select(s => s[s.IndexOf('\n')..]).Distinct().Count());
        // The first sample is what one sample from the seed gives.
        Assert.Equal("1 ---\n" + Alone("the ", "--tokens", "20", "--temperature", "1.5", "--seed", "4"), samples[0]);
    }

    [Fact]
    public void InteractiveContinuesEachLineUntilAnEmptyOne()
    {
        var (code, output, errors) = Sample("the jury\nthe cat\n\nthe mat\n", Short.Concat(["--interactive"]).ToArray());
        Assert.True(code == 0, errors);
        string first = Alone("the jury", Short);
        Assert.StartsWith(first, output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("the cat", lines[1]);
        Assert.DoesNotContain("the mat", output);

        (code, output, errors) = Sample("the jury\nexit\nthe cat\n", Short.Concat(["--interactive"]).ToArray());
        Assert.True(code == 0, errors);
        Assert.Equal(first, output);
    }

    [Fact]
    public void AStopStringEndsTheSampleAndIsNotPrinted()
    {
        string[] args = ["--tokens", "40", "--seed", "3"];
        string full = Alone("the jury", args);
        string continuation = full["the jury".Length..^1];
        string stop = continuation[6..9];
        string expected = "the jury" + continuation[..continuation.IndexOf(stop, StringComparison.Ordinal)] + "\n";
        Assert.Equal(expected, Alone("the jury", [.. args, "--stop", "never printed", "--stop", stop]));
        var (code, output, errors) = Sample("", ["--prompt", "the jury", "--num-samples", "2", "--stop", stop, .. args]);
        Assert.True(code == 0, errors);
        Assert.StartsWith("--- sample 1 ---\n" + expected, output);
        Assert.Contains("the stop string itself is not printed", AttnProcess.Run("sample", "--help").Output);
    }

    [Theory]
    [InlineData("--num-samples", "0", "--num-samples must be ≥ 1")]
    [InlineData("--tokens", "-1", "--tokens must be ≥ 0")]
    [InlineData("--stop", "", "--stop needs a non-empty string")]
    [InlineData("--prompt-file", "missing.txt", "--prompt-file 'missing.txt' does not exist")]
    public void BadOptionsAreRefusedByName(string option, string value, string message)
    {
        var (code, _, errors) = Sample("", option, value);
        Assert.Equal(2, code);
        Assert.Contains(message, errors);
    }

    [Fact]
    public void BadPromptsAreRefusedByName()
    {
        var blank = checkpoint.Write("blank.txt", "\n  \n\n");
        var (code, _, errors) = Sample("", "--prompt-file", blank);
        Assert.Equal(2, code);
        Assert.Contains($"--prompt-file '{blank}' holds no prompt", errors);

        var tooLong = checkpoint.Write("long.txt", "the cat\n" + new string('a', 40) + "\n");
        (code, _, errors) = Sample("", "--prompt-file", tooLong);
        Assert.Equal(2, code);
        Assert.Contains($"Line 2 of --prompt-file '{tooLong}' is 40 tokens long but the model's context is 32", errors);

        (code, _, errors) = Sample("\n", "--prompt", "-");
        Assert.Equal(2, code);
        Assert.Contains("Standard input (--prompt -) holds no prompt", errors);

        (code, _, errors) = Sample("", "--prompt", "the", "--interactive");
        Assert.Equal(2, code);
        Assert.Contains("--interactive reads its prompts from standard input", errors);
    }

    [Fact]
    public void DeviceCudaWithoutAGpuSaysWhyInOneSentence()
    {
        if (AttentionSharp.Gpu.GpuDevice.CudaUnavailableReason() is not { } reason) return;   // a GPU machine samples for real
        var (code, _, errors) = Sample("", "--device", "cuda", "--tokens", "5");
        Assert.NotEqual(0, code);
        Assert.Equal($"error: {reason}", errors.Trim());
        (code, _, errors) = Sample("", "--device", "tpu");
        Assert.NotEqual(0, code);
        Assert.Contains("--device 'tpu' is unknown; use cpu or cuda.", errors);
    }
}
