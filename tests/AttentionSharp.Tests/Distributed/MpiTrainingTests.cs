using System.Diagnostics;
using System.Text.Json.Nodes;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Distributed;

/// <summary>
/// A test that needs Open MPI's mpirun; skipped, saying how to install it, where there is none — unless
/// ATTN_REQUIRE_MPI=1 (as in CI, which installs Open MPI), where a missing mpirun fails it.
/// </summary>
public sealed class MpiFactAttribute : FactAttribute
{
    public MpiFactAttribute()
    {
        if (MpiTrainingTests.MpiRun is null && Environment.GetEnvironmentVariable("ATTN_REQUIRE_MPI") != "1")
            Skip = "mpirun is not installed (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev; .ci/run installs it).";
    }
}

/// <summary>A theory that needs mpirun, skipped or required as <see cref="MpiFactAttribute"/> says.</summary>
public sealed class MpiTheoryAttribute : TheoryAttribute
{
    public MpiTheoryAttribute()
    {
        if (MpiTrainingTests.MpiRun is null && Environment.GetEnvironmentVariable("ATTN_REQUIRE_MPI") != "1")
            Skip = "mpirun is not installed (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev; .ci/run installs it).";
    }
}

/// <summary>
/// `attn train` as separate processes under mpirun, one thread per rank, dropout 0.1: 2 ranks × batch 2 give the losses of one
/// process × batch 4; a rank that dies ends the job with a non-zero status and a message naming the rank, and the last
/// checkpoint loads and resumes in one process exactly where the two ranks left off.
/// </summary>
public class MpiTrainingTests
{
    // The two runs sum the same numbers in a different order (rows split across ranks, then averaged); a few steps of
    // AdamW keep the difference near float rounding.
    const double Atol = 2e-5, Rtol = 2e-5;
    static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);

    public static readonly string? MpiRun = FindOnPath("mpirun");

    static readonly string[] Words = ["the", "of", "and", "to", "a", "in", "that", "is", "was", "he", "for", "it", "with", "as", "his", "on", "be", "at", "by", "had"];
    // About 30 kB of words: enough for a 90/10 split with 32-token windows; initialised after Words, which it reads.
    static readonly string Text = string.Join("\n", Enumerable.Range(0, 600).Select(i =>
        string.Join(' ', Enumerable.Range(0, 10).Select(j => Words[(i * 7 + j * j * 3 + i * j) % Words.Length]))));

    static string[] TrainArguments(string data, string outDir, int batch, int steps) =>
        ["train", "--data", data, "--out", outDir, "--steps", steps.ToString(), "--batch", batch.ToString(), "--layers", "2", "--heads", "2",
         "--width", "32", "--context", "32", "--warmup", "2", "--eval-interval", "2", "--minutes", "0", "--seed", "7", "--dropout", "0.1"];

    [MpiFact]
    public void TwoRanksOfBatchTwoGiveTheLossesOfOneProcessOfBatchFour()
    {
        using var dir = new TempDirectory();
        var data = dir.Write("text.txt", Text);
        var single = Attn(TrainArguments(data, dir.File("single"), batch: 4, steps: 6));
        Assert.True(single.Code == 0, single.Output);
        var two = MpiRunAttn(TrainArguments(data, dir.File("ranks"), batch: 2, steps: 6));
        Assert.True(two.Code == 0, two.Output);

        var expected = Log(dir.File("single"));
        var actual = Log(dir.File("ranks"));
        Assert.Equal(expected.Select(r => Keys(r)), actual.Select(r => Keys(r).Where(k => k is not ("ranks" or "allreduce_s" or "train_s"))));
        foreach (var key in new[] { "loss", "grad_norm", "val_loss", "final_val_loss" })
            TensorAssert.Close(Column(expected, key), Column(actual, key), Atol, Rtol, key);
        Assert.All(actual.Where(r => r["loss"] is not null), r => Assert.Equal(2, (int)r["ranks"]!));
        Assert.Contains("2 ranks (MPI)", two.Output);
    }

    /// <summary>
    /// Every task trains data-parallel the same way: 2 ranks × batch 2 log the losses and gradient norms of one process ×
    /// batch 4 (without dropout, whose masks only the GPT draws by global row), also where rows hold different numbers of
    /// items (padded sentences, masked words, phonemes).
    /// </summary>
    [MpiTheory]
    [InlineData("mlm", "transformer")]
    [InlineData("pos", "lstm")]
    [InlineData("fashion", "transformer")]
    [InlineData("g2p", "transformer")]
    public void EveryTaskTrainsOnTwoRanksAsOneProcessOnTheirBatch(string task, string model)
    {
        using var dir = new TempDirectory();
        var data = task switch
        {
            "pos" or "mlm" => Training.TaskData.Corpus(dir.Path),
            "fashion" => Training.TaskData.Images(dir.Path),
            _ => Training.TaskData.Dictionary(dir.Path),
        };
        string[] Args(string run, int batch) =>
        [
            "train", "--task", task, "--model", model, "--data", data, "--out", run, "--steps", "5", "--batch", $"{batch}",
            "--layers", "1", "--width", "16", .. model == "transformer" ? new[] { "--heads", "2" } : [], "--warmup", "2",
            "--eval-interval", "3", "--eval-sample", "16", "--minutes", "0", "--seed", "7", "--dropout", "0",
        ];
        var single = Attn(Args(dir.File("single"), 4));
        Assert.True(single.Code == 0, single.Output);
        var two = MpiRunAttn(Args(dir.File("ranks"), 2));
        Assert.True(two.Code == 0, two.Output);
        Assert.Contains("2 ranks (MPI)", two.Output);
        var expected = Log(dir.File("single"));
        var actual = Log(dir.File("ranks"));
        foreach (var key in new[] { "loss", "grad_norm", "val_loss", "final_val_loss" })
            TensorAssert.Close(Column(expected, key), Column(actual, key), 1e-4, 1e-4, $"{task} {key}");
        Assert.Equal(5, Column(actual, "loss").Length);
    }

    /// <summary>Ctrl-C on mpirun (which sends its ranks SIGTERM, then SIGKILL a second later) saves the step reached.</summary>
    [MpiFact]
    public void InterruptingMpirunSavesACheckpointAtTheStepReached()
    {
        using var dir = new TempDirectory();
        var data = dir.Write("text.txt", Text);
        var run = dir.File("ranks");
        var args = TrainArguments(data, run, batch: 2, steps: 1_000_000).ToList();
        args[args.IndexOf("--eval-interval") + 1] = "1000";
        var info = new ProcessStartInfo(MpiRun!) { RedirectStandardOutput = true, RedirectStandardError = true };
        // The launcher's SIGKILL follows its SIGTERM after odls_base_sigkill_timeout (1 s by default): a loaded test machine
        // needs longer to finish the step and write the checkpoint, as a large model would.
        string[] launcher = [.. MpiRunOptions, "--mca", "odls_base_sigkill_timeout", "30"];
        foreach (var a in (string[])[.. launcher, Dotnet, AttnDll, .. args]) info.ArgumentList.Add(a);
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        using var mpirun = Process.Start(info)!;
        var output = mpirun.StandardOutput.ReadToEndAsync();
        var error = mpirun.StandardError.ReadToEndAsync();
        var log = Path.Combine(run, "log.jsonl");
        var deadline = DateTime.UtcNow + Limit;
        while (!mpirun.HasExited && DateTime.UtcNow < deadline && !(File.Exists(log) && File.ReadLines(log).Count() > 1500)) Thread.Sleep(50);
        if (mpirun.HasExited) Assert.Fail($"mpirun ended before the interrupt:\n{output.Result}{error.Result}");
        using (var kill = Process.Start("kill", ["-INT", $"{mpirun.Id}"])!) kill.WaitForExit();
        if (!mpirun.WaitForExit(Limit))
        {
            mpirun.Kill(entireProcessTree: true);
            Assert.Fail("mpirun did not end after Ctrl-C.");
        }
        var text = output.Result + error.Result;
        Assert.Contains("Interrupted at step", text);
        int saved = (int)Checkpoint.ReadContents(run, preferBest: false).State["step"]!;
        int logged = Log(run).Where(r => r["loss"] is not null).Max(r => (int)r["step"]!);
        Assert.True(saved == logged && saved % 1000 != 0, $"the checkpoint holds step {saved}; the log reached step {logged}:\n{text}");
    }

    [MpiFact]
    public void ARankThatDiesEndsTheJobAndTheLastCheckpointResumesInOneProcess()
    {
        using var dir = new TempDirectory();
        var data = dir.Write("text.txt", Text);
        const int Steps = 30;
        var run = dir.File("ranks");
        // Rank 1 is killed (SIGKILL, as a crash) once rank 0 has written its first checkpoint, at step 2.
        var args = string.Join(' ', new[] { Dotnet, AttnDll }.Concat(TrainArguments(data, run, batch: 2, Steps)).Select(Quote));
        var script = $"if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then {args} & p=$!; " +
                     $"while [ ! -e {Quote(Path.Combine(run, Checkpoint.LatestSubdirectory))} ]; do sleep 0.05; done; kill -9 $p; wait $p; else exec {args}; fi";
        var died = Run(MpiRun!, [.. MpiRunOptions, "sh", "-c", script]);
        Assert.True(died.Code != 0, $"mpirun exited with 0 although rank 1 was killed:\n{died.Output}");
        Assert.Contains("was stopped by the MPI launcher", died.Output);
        // The launcher names the rank: Open MPI 4 "Process name: [[job,1],1]", later versions "process rank 1".
        Assert.True(died.Output.Contains(",1]") || died.Output.Contains("rank 1"), $"mpirun's report does not name rank 1:\n{died.Output}");

        var checkpoint = Path.Combine(run, Checkpoint.LatestSubdirectory);
        var contents = Checkpoint.ReadContents(checkpoint, preferBest: false);
        var model = new Gpt(GptConfig.FromJson(contents.Config), new Generator(1));
        Checkpoint.LoadWeights(checkpoint, model, preferBest: false);
        int savedStep = (int)contents.State["step"]!;
        Assert.InRange(savedStep, 2, Steps - 1);

        // Resumed in one process on the doubled batch, the remaining steps match an uninterrupted one-process run.
        var resumed = Attn([.. TrainArguments(data, dir.File("resumed"), batch: 4, Steps), "--resume", run]);
        Assert.True(resumed.Code == 0, resumed.Output);
        var reference = Attn(TrainArguments(data, dir.File("single"), batch: 4, Steps));
        Assert.True(reference.Code == 0, reference.Output);
        var after = Log(dir.File("single")).Where(r => r["loss"] is not null && (int)r["step"]! > savedStep).ToList();
        var continued = Log(dir.File("resumed")).Where(r => r["loss"] is not null).ToList();
        Assert.Equal(after.Select(r => (int)r["step"]!), continued.Select(r => (int)r["step"]!));
        TensorAssert.Close(Column(after, "loss"), Column(continued, "loss"), Atol, Rtol, $"losses after resuming at step {savedStep}");
    }

    static string[] MpiRunOptions =>
        ["-np", "2", "--oversubscribe", "-x", "ATTN_THREADS=1", "--mca", "btl_vader_single_copy_mechanism", "none"];

    static (int Code, string Output) MpiRunAttn(string[] arguments) => Run(MpiRun!, [.. MpiRunOptions, Dotnet, AttnDll, .. arguments]);

    static (int Code, string Output) Attn(string[] arguments) => Run(Dotnet, [AttnDll, .. arguments]);

    static (int Code, string Output) Run(string program, string[] arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        info.Environment["ATTN_THREADS"] = "1";
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";         // containers often run as root; harmless otherwise
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} did not finish within {Limit.TotalSeconds} s.");
        }
        return (process.ExitCode, $"$ {program} {string.Join(' ', arguments)}\n{output.Result}{error.Result}");
    }

    static List<JsonObject> Log(string runDir) =>
        [.. File.ReadAllLines(Path.Combine(runDir, "log.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject())];

    static IEnumerable<string> Keys(JsonObject record) => record.Select(p => p.Key);

    static float[] Column(IEnumerable<JsonObject> records, string key) =>
        [.. records.Where(r => r[key] is not null).Select(r => (float)r[key]!)];

    static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : FindOnPath("dotnet") ?? "dotnet";

    /// <summary>attn.dll as the build put it next to this test assembly's configuration (the test project builds the CLI).</summary>
    static string AttnDll
    {
        get
        {
            var testDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)); // …/bin/<config>/<tfm>
            string tfm = testDir.Name, config = testDir.Parent!.Name;
            var root = testDir;
            while (root is not null && !File.Exists(Path.Combine(root.FullName, "AttentionSharp.slnx"))) root = root.Parent;
            var dll = Path.Combine(root?.FullName ?? throw new InvalidOperationException("The repository root (AttentionSharp.slnx) was not found above the test assembly."),
                "src", "AttentionSharp.Cli", "bin", config, tfm, "attn.dll");
            return File.Exists(dll) ? dll : throw new InvalidOperationException($"The CLI was not built at {dll}; build the test project, which builds it.");
        }
    }

    static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}
