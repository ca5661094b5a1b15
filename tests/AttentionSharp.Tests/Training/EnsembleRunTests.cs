using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.Distributed;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Tests.Training;

/// <summary>
/// `--ensemble N`: each member is the ordinary run of its own seed, the ensemble is one checkpoint whose scores are the
/// run's closing figures, and an ensemble stopped in any member resumes to the same members and figures.
/// </summary>
public class EnsembleRunTests
{
    static int Run(TrainOptions options, StringWriter? output = null, Action<StepReport>? observer = null,
        CancellationTokenSource? cancel = null)
    {
        output ??= new StringWriter();
        var group = new SingleProcessCommunicator();
        try
        {
            return new EnsembleRun(options, group, output, (o, writer) => new TrainingRun(o, group, writer)
            {
                StepObserver = observer, Cancellation = cancel?.Token ?? CancellationToken.None,
            }).Execute();
        }
        catch (Exception e) { throw new InvalidOperationException($"{e.Message}\n{output}", e); }
    }

    static List<JsonObject> Log(string runDir) =>
        [.. File.ReadAllLines(Path.Combine(runDir, "log.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject())];

    static (int Step, float Loss)[] Losses(string runDir) =>
        [.. Log(runDir).Where(r => r["loss"] is not null).Select(r => ((int)r["step"]!, (float)r["loss"]!))];

    static TrainOptions Options(string root, string model = "transformer") =>
        TaskData.Options("g2p", model, root) with
        {
            Steps = 6,
            EvalInterval = 3,
            Ensemble = 2,
            Out = Path.Combine(root, "ensemble"),
        };

    [Theory]
    [InlineData("transformer")]
    [InlineData("lstm")]
    public void EachMemberIsTheRunOfItsSeedAndTheEnsembleIsOneCheckpoint(string model)
    {
        using var dir = new TempDirectory();
        var options = Options(dir.Path, model);
        var output = new StringWriter();
        Assert.Equal(0, Run(options, output));
        var runDir = options.Out!;
        string first = EnsembleRun.MemberDirectory(runDir, 0), second = EnsembleRun.MemberDirectory(runDir, 1);
        Assert.Equal(0, new TrainingRun(options with { Ensemble = 1, Seed = options.Seed + 1, Out = dir.File("single") },
            new SingleProcessCommunicator(), new StringWriter()).Execute());
        Assert.Equal(Losses(dir.File("single")), Losses(second));
        Assert.Equal(6, Losses(first).Length);
        Assert.NotEqual(Losses(first), Losses(second));
        var text = output.ToString();
        Assert.Contains("Member 1 of 2: seed 7.", text);
        Assert.Contains("Member 2 of 2: seed 8.", text);
        Assert.Contains("Model: G2P, an ensemble of 2: 2 × ", text);

        var (network, vocabulary) = Seq2SeqNetwork.Load(runDir);
        var ensemble = Assert.IsType<Seq2SeqEnsemble>(network.Model);
        Assert.Equal(2, ensemble.Members.Count);
        var closing = Log(runDir).Single();
        Assert.Equal(2, (int)closing["ensemble"]!);
        Assert.Equal(12, (int)closing["steps"]!);
        var test = new G2pDataset(CmuDict.Load(options.Data!).Split().Test, vocabulary);
        var rates = PronunciationTask.Score(ensemble, test, options.Beam!.Value);
        Assert.Equal(rates.WordErrorRate, (double)closing["test_wer"]!);
        Assert.Equal(rates.PhonemeErrorRate, (double)closing["test_per"]!);
        // The members are the best checkpoints of their runs.
        var alone = Seq2SeqNetwork.Load(second).Network.Model;
        Assert.Equal(alone.Greedy(test.Words[0].Source, 1, test.Words[0].Source.Length, 8).Tokens,
            ensemble.Members[1].Greedy(test.Words[0].Source, 1, test.Words[0].Source.Length, 8).Tokens);
    }

    /// <summary>
    /// Stopped in its second member, the run says how to continue; --resume on the run directory (its options read back
    /// from ensemble.json, as `attn train --resume DIR` reads them) keeps the first member, resumes the second exactly and
    /// scores the same ensemble as an uninterrupted run.
    /// </summary>
    [Fact]
    public void AnEnsembleStoppedInAMemberResumesToTheSameFigures()
    {
        using var dir = new TempDirectory();
        var options = Options(dir.Path);
        Assert.Equal(0, Run(options with { Out = dir.File("straight") }));

        using var cancel = new CancellationTokenSource();
        int member = 0;
        var stopped = options with { Out = dir.File("stopped") };
        var output = new StringWriter();
        Assert.Equal(130, Run(stopped, output, r =>
        {
            if (r.Step == 1) member++;
            if (member == 2 && r.Step == 4) cancel.Cancel();
        }, cancel));
        Assert.Contains($"Continue with: attn train --resume {stopped.Out}", output.ToString());
        Assert.Contains($"Continue the whole ensemble with: attn train --resume {stopped.Out}", output.ToString());
        Assert.False(Directory.Exists(Path.Combine(stopped.Out!, "best")));

        var manifest = EnsembleRun.ReadManifest(stopped.Out!)!;
        var resumed = EnsembleRun.Restore(manifest, TaskPresets.For("g2p", "transformer"), stopped.Out!) with
        {
            Resume = stopped.Out,
        };
        Assert.Equal((options.Layers, options.Width, options.Heads, options.Ensemble), (resumed.Layers, resumed.Width,
            resumed.Heads, resumed.Ensemble));
        output = new StringWriter();
        Assert.Equal(0, Run(resumed, output));
        Assert.Contains("Member 1 of 2: trained already (6 steps", output.ToString());
        Assert.Contains("Member 2 of 2: seed 8, resumed.", output.ToString());
        for (int k = 0; k < 2; k++)
            Assert.Equal(Losses(EnsembleRun.MemberDirectory(dir.File("straight"), k)),
                Losses(EnsembleRun.MemberDirectory(stopped.Out!, k)));
        var (expected, actual) = (Log(dir.File("straight")).Single(), Log(stopped.Out!).Single());
        foreach (var key in new[] { "final_val_loss", "final_val_wer", "test_wer", "test_per", "steps" })
            Assert.Equal(expected[key]!.ToJsonString(), actual[key]!.ToJsonString());

        // Resumed once more, every member is trained: the ensemble is scored again, the same.
        Assert.Equal(0, Run(resumed));
        Assert.Equal(expected["test_wer"]!.ToJsonString(), Log(stopped.Out!).Single()["test_wer"]!.ToJsonString());
        // A new run in the directory replaces the earlier ensemble's members rather than counting them as trained.
        output = new StringWriter();
        Assert.Equal(0, Run(options with { Out = stopped.Out, Seed = 11 }, output));
        Assert.Contains("Member 1 of 2: seed 11.", output.ToString());
        Assert.DoesNotContain("trained already", output.ToString());
    }

    /// <summary>
    /// --side-by-side trains the members at the same time on threads of their own, each with its share of the kernel
    /// threads: each member logs the losses of the same member trained in turn (the kernels give the same floats on any
    /// number of threads), every line a member prints starts with its number, the ensemble scores as the one trained in
    /// turn, and each member has the whole time limit instead of its share.
    /// </summary>
    [Fact]
    public void SideBySideMembersTrainAtOnceToTheSameFigures()
    {
        using var dir = new TempDirectory();
        var options = Options(dir.Path);
        Assert.Equal(0, Run(options with { Out = dir.File("turn") }));
        var output = new StringWriter();
        Assert.Equal(0, Run(options with { Out = dir.File("side"), SideBySide = true }, output));
        for (int k = 0; k < 2; k++)
            Assert.Equal(Losses(EnsembleRun.MemberDirectory(dir.File("turn"), k)),
                Losses(EnsembleRun.MemberDirectory(dir.File("side"), k)));
        var (expected, actual) = (Log(dir.File("turn")).Single(), Log(dir.File("side")).Single());
        foreach (var key in new[] { "final_val_loss", "test_wer", "test_per", "steps" })
            Assert.Equal(expected[key]!.ToJsonString(), actual[key]!.ToJsonString());
        var lines = output.ToString().Split('\n', StringSplitOptions.TrimEntries);
        Assert.Contains("Ensemble: 2 models trained side by side, 6 steps each, seeds 7–8; they decode together. " +
                        $"Run directory: {dir.File("side")}.", lines);
        Assert.Contains("[1] Member 1 of 2: seed 7.", lines);
        Assert.Contains("[2] Member 2 of 2: seed 8.", lines);
        foreach (var member in new[] { "[1] ", "[2] " })
        {
            Assert.Contains(lines, l => l.StartsWith(member + "Parameters: ", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith(member + "Test (best checkpoint", StringComparison.Ordinal));
        }
        var timed = options with { Minutes = 30, Steps = 100_000 };
        Assert.Equal(15, EnsembleRun.Member(timed, 1).Minutes);
        Assert.Equal(30, EnsembleRun.Member(timed with { SideBySide = true }, 1).Minutes);
        Assert.True(TrainOptions.FromJson((options with { SideBySide = true }).ToJson(), options).SideBySide);
        var old = options.ToJson();
        old.Remove("side_by_side");
        Assert.False(TrainOptions.FromJson(old, options with { SideBySide = true }).SideBySide);

        // A member that fails stops the other, which saves its latest checkpoint, and its error reaches the caller.
        var failing = options with { Out = dir.File("failing"), SideBySide = true, Steps = 400, EvalInterval = 0 };
        var group = new SingleProcessCommunicator();
        var e = Assert.Throws<InvalidOperationException>(() => new EnsembleRun(failing, group, new StringWriter(),
            (o, writer) => new TrainingRun(o, group, writer)
            {
                StepObserver = r =>
                {
                    if (o.Seed == failing.Seed + 1 && r.Step == 20) throw new InvalidOperationException("member 2 failed");
                },
            }).Execute());
        Assert.Equal("member 2 failed", e.Message);
        var first = EnsembleRun.MemberDirectory(failing.Out!, 0);
        Assert.InRange(Losses(first).Length, 1, 399);
        Assert.True(Directory.Exists(Path.Combine(first, "checkpoint")));
        Assert.False(Directory.Exists(Path.Combine(failing.Out!, "best")));
    }

    [Fact]
    public void AnEnsemblesCheckpointIsNotResumedAsARun()
    {
        using var dir = new TempDirectory();
        var options = Options(dir.Path) with { Steps = 2, EvalInterval = 2 };
        Assert.Equal(0, Run(options));
        var e = Assert.Throws<ArgumentException>(() => new TrainingRun(options with
        {
            Ensemble = 1,
            Resume = Path.Combine(options.Out!, "best"),
            Out = dir.File("again"),
        }, new SingleProcessCommunicator(), new StringWriter()).Execute());
        Assert.Contains("is an ensemble's checkpoint: its models decode together and train no further", e.Message);
        Assert.Equal("0:59", TrainingRun.Clock(TimeSpan.FromSeconds(59)));
        Assert.Equal("1:00:01", TrainingRun.Clock(TimeSpan.FromSeconds(3601)));
        Assert.StartsWith("--ensemble must be between 1 and 16; got 0.",
            Assert.Throws<ArgumentException>(() => (options with { Ensemble = 0 }).Validate()).Message);
        EnsembleRun Ensemble(TrainOptions o) =>
            new(o, new SingleProcessCommunicator(), new StringWriter(), (_, _) => throw new InvalidOperationException());
        Assert.Contains("An ensemble has at least 2 members",
            Assert.Throws<ArgumentException>(() => Ensemble(options with { Ensemble = 1 })).Message);
        Assert.Contains("--ensemble 3 does not fit the run in", Assert.Throws<ArgumentException>(() =>
            Ensemble(options with { Ensemble = 3, Resume = options.Out })).Message);
        var member = EnsembleRun.MemberDirectory(options.Out!, 0);
        Assert.Contains($"--resume '{member}' is not an ensemble's run directory", Assert.Throws<ArgumentException>(() =>
            Ensemble(options with { Resume = member })).Message);
    }
}
