using System.Text.Json.Nodes;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Cli;

/// <summary>
/// Crash safety of attn train: a run SIGKILLed at random moments and resumed from its checkpoint each time logs exactly the
/// losses of an uninterrupted run, step for step, with no step missing or repeated.
/// </summary>
public class CrashResumeTests(Xunit.Abstractions.ITestOutputHelper output)
{
    const int Steps = 150;
    const int EvalInterval = 10; // a checkpoint every 10 steps

    static string[] TrainArgs(string data, string outDir) =>
    [
        "train", "--data", data, "--out", outDir, "--steps", $"{Steps}", "--minutes", "0", "--eval-interval", $"{EvalInterval}",
        "--layers", "2", "--heads", "2", "--width", "32", "--context", "32", "--batch", "8", "--warmup", "10", "--lr", "0.003",
        "--tokenizer", "char", "--seed", "11",
    ];

    static readonly Dictionary<string, string> FixedThreads = new() { ["ATTN_THREADS"] = "2" };

    [Fact]
    [Trait("Category", "Slow")]
    public void KilledAndResumedThreeTimesLogsTheLossesOfAnUninterruptedRun()
    {
        using var dir = new TempDirectory();
        var text = string.Concat(Enumerable.Range(0, 200).Select(i => $"line {i}: the quick brown fox jumps over the lazy dog {i % 7}.\n"));
        var data = dir.Write("data.txt", text);

        var straightDir = Path.Combine(dir.Path, "straight");
        var (code, log) = RunToEnd(TrainArgs(data, straightDir));
        Assert.True(code == 0, log);
        var expected = Losses(straightDir);
        Assert.Equal(Enumerable.Range(1, Steps), expected.Keys.Order());

        var crashDir = Path.Combine(dir.Path, "crashed");
        var rng = new Random(2024);
        for (int kill = 0; kill < 3; kill++)
        {
            // Resume from the second attempt on; kill once the log reaches a random step past the latest checkpoint.
            var args = TrainArgs(data, crashDir).ToList();
            if (kill > 0) args.AddRange(["--resume", crashDir]);
            int target = (kill + 1) * 35 + rng.Next(0, 20);
            using var p = AttnProcess.Start(args, FixedThreads);
            _ = p.StandardOutput.ReadToEndAsync();
            _ = p.StandardError.ReadToEndAsync();
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (LastStep(crashDir) < target && !p.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(2);
            Thread.Sleep(rng.Next(0, 30)); // lands anywhere in a step, an evaluation or a checkpoint write
            Assert.False(p.HasExited, $"attn finished before the kill at step {target}; make the run longer.");
            p.Kill(); // SIGKILL: no handler runs, nothing is flushed
            p.WaitForExit();
            output.WriteLine($"killed at step {LastStep(crashDir)} (target {target})");
        }
        var (resumedCode, resumedLog) = RunToEnd([.. TrainArgs(data, crashDir), "--resume", crashDir]);
        Assert.True(resumedCode == 0, resumedLog);

        var actual = Losses(crashDir);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (step, loss) in expected)
            Assert.True(loss == actual[step], $"step {step}: uninterrupted loss {loss:R}, after crashes {actual[step]:R}");
    }

    static (int, string) RunToEnd(IEnumerable<string> args)
    {
        using var p = AttnProcess.Start(args, FixedThreads);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(); throw new TimeoutException("attn train ran over 3 minutes."); }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>Step → (training loss, validation loss if logged) from log.jsonl; a step logged twice fails the test.</summary>
    static Dictionary<int, (float Loss, float? Valid)> Losses(string runDir)
    {
        var result = new Dictionary<int, (float, float?)>();
        foreach (var line in File.ReadLines(Path.Combine(runDir, "log.jsonl")))
        {
            var o = JsonNode.Parse(line)!.AsObject();
            if (o["step"] is null) continue;
            int step = o["step"]!.GetValue<int>();
            if (o["loss"] is { } loss)
            {
                Assert.False(result.ContainsKey(step), $"step {step} is logged twice");
                result[step] = (loss.GetValue<float>(), null);
            }
            else if (o["val_loss"] is { } valid) result[step] = (result[step].Item1, valid.GetValue<float>());
        }
        return result;
    }

    static int LastStep(string runDir)
    {
        var path = Path.Combine(runDir, "log.jsonl");
        if (!File.Exists(path)) return 0;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            int last = 0;
            while (reader.ReadLine() is { } line)
            {
                int i = line.IndexOf("\"step\":", StringComparison.Ordinal);
                if (i < 0) continue;
                int j = i + 7, k = j;
                while (k < line.Length && char.IsAsciiDigit(line[k])) k++;
                if (k > j) last = Math.Max(last, int.Parse(line.AsSpan(j, k - j)));
            }
            return last;
        }
        catch (IOException) { return 0; }
    }
}
