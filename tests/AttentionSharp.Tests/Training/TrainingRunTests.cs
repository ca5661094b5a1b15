using System.Text.Json.Nodes;
using AttentionSharp.Distributed;
using AttentionSharp.IO;
using AttentionSharp.Tests.Support;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Tests.Training;

/// <summary>
/// The one training run, for every task: stopped part-way and resumed, it logs the losses of an uninterrupted run step for
/// step; --resume alone continues in the run's own directory; options a task cannot use are refused by name; the
/// periodic validation estimate samples all of the validation split.
/// </summary>
public class TrainingRunTests
{
    static int Run(TrainOptions options, Action<StepReport>? observer = null, CancellationTokenSource? cancel = null)
    {
        var output = new StringWriter();
        try
        {
            return new TrainingRun(options, new SingleProcessCommunicator(), output)
            {
                StepObserver = observer, Cancellation = cancel?.Token ?? CancellationToken.None,
            }.Execute();
        }
        catch (Exception e) { throw new InvalidOperationException($"{e.Message}\n{output}", e); }
    }

    static List<JsonObject> Log(string runDir) =>
        [.. File.ReadAllLines(Path.Combine(runDir, "log.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject())];

    /// <summary>Trains <paramref name="o"/> in one process, which must succeed; returns what the run printed.</summary>
    static string Train(TrainOptions o)
    {
        var output = new StringWriter();
        Assert.Equal(0, new TrainingRun(o, new SingleProcessCommunicator(), output).Execute());
        return output.ToString();
    }

    /// <summary>The network config of a run's latest checkpoint.</summary>
    static JsonNode NetworkConfig(string runDir) => JsonNode.Parse(File.ReadAllText(
        Path.Combine(runDir, Checkpoint.LatestSubdirectory, "config.json")))!["network"]!;

    static (int Step, float Loss)[] Losses(string runDir) =>
        [.. Log(runDir).Where(r => r["loss"] is not null).Select(r => ((int)r["step"]!, (float)r["loss"]!))];

    [Theory]
    [InlineData("gpt", "transformer")]
    [InlineData("mlm", "transformer")]
    [InlineData("pos", "transformer")]
    [InlineData("pos", "lstm")]
    [InlineData("fashion", "transformer")]
    [InlineData("fashion", "gru")]
    [InlineData("g2p", "transformer")]
    [InlineData("g2p", "lstm")]
    public void StoppedAndResumedEqualsAnUninterruptedRunStepForStep(string task, string model)
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options(task, model, dir.Path);
        Assert.Equal(0, Run(options with { Out = dir.File("straight") }));
        var expected = Losses(dir.File("straight"));
        Assert.Equal(Enumerable.Range(1, options.Steps), expected.Select(e => e.Step));

        // Stopped as Ctrl-C stops it (after the step in which the signal came), at a step that is no checkpoint's…
        using var cancel = new CancellationTokenSource();
        var stopped = options with { Out = dir.File("stopped") };
        Assert.Equal(130, Run(stopped, r => { if (r.Step == 6) cancel.Cancel(); }, cancel));
        Assert.Equal(7, Losses(stopped.Out!).Length);
        // … then resumed with --resume DIR alone: it continues in DIR.
        Assert.Equal(0, Run(options with { Out = null, Resume = stopped.Out }));
        var actual = Losses(stopped.Out!);
        Assert.Equal(expected.Select(e => e.Step), actual.Select(a => a.Step));
        foreach (var ((step, loss), (_, resumed)) in expected.Zip(actual))
            Assert.True(loss == resumed,
                $"{task}/{model} step {step}: uninterrupted loss {loss:R}, stopped and resumed {resumed:R}");
        Assert.Contains(Log(stopped.Out!), r => r["final_val_loss"] is not null);
    }

    /// <summary>
    /// Random erasing draws from the images' augmentation generator, which the checkpoint keeps: a run with it trains on
    /// other images than one without (other losses), and stopped and resumed it logs the same losses as uninterrupted.
    /// </summary>
    [Fact]
    public void RandomErasingChangesTheTrainingImagesAndResumesExactly()
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options("fashion", "transformer", dir.Path) with { Erase = 0.5f };
        Assert.Equal(0f, TaskPresets.For("fashion", "transformer").Erase);
        Assert.Equal(0f, TaskPresets.For("fashion", "lstm").Erase);
        Assert.Equal(0, Run(options with { Out = dir.File("plain"), Erase = 0f }));
        Assert.Equal(0, Run(options with { Out = dir.File("straight") }));
        var expected = Losses(dir.File("straight"));
        Assert.NotEqual(Losses(dir.File("plain")), expected);
        using var cancel = new CancellationTokenSource();
        var stopped = options with { Out = dir.File("stopped") };
        Assert.Equal(130, Run(stopped, r => { if (r.Step == 6) cancel.Cancel(); }, cancel));
        Assert.Equal(0, Run(options with { Out = null, Resume = stopped.Out }));
        Assert.Equal(expected, Losses(stopped.Out!));
        Assert.StartsWith("--erase must be in [0, 1]",
            Assert.Throws<ArgumentException>(() => (options with { Erase = 1.5f }).Validate()).Message);
    }

    /// <summary>
    /// --label-smoothing sets ε of the training loss for g2p (both networks: it is kept in the checkpoint's network config)
    /// and fashion; the presets' values (0.1, and 0 for g2p's recurrent models) give the losses of a run without the option;
    /// another ε gives other losses; a value outside [0, 1) is refused by name.
    /// </summary>
    [Theory]
    [InlineData("g2p", "transformer", 0.1f)]
    [InlineData("g2p", "lstm", 0f)]
    [InlineData("fashion", "transformer", 0.1f)]
    public void LabelSmoothingIsAnOptionOfTheClassificationTasks(string task, string model, float preset)
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options(task, model, dir.Path) with { Steps = 4, EvalInterval = 0 };
        Assert.Equal(preset, TaskPresets.For(task, model).LabelSmoothing);
        Assert.Equal(0, Run(options with { Out = dir.File("preset") }));
        Assert.Equal(0, Run(options with { Out = dir.File("same"), LabelSmoothing = preset }));
        Assert.Equal(0, Run(options with { Out = dir.File("other"), LabelSmoothing = 0.3f }));
        Assert.Equal(Losses(dir.File("preset")), Losses(dir.File("same")));
        Assert.NotEqual(Losses(dir.File("preset")), Losses(dir.File("other")));
        if (task == "g2p")
        {
            var config = JsonNode.Parse(File.ReadAllText(
                Path.Combine(dir.File("other"), Checkpoint.LatestSubdirectory, "config.json")))!;
            Assert.Equal(0.3f, (float)config["network"]!["label_smoothing"]!);
        }
        var kept = TrainOptions.FromJson((options with { LabelSmoothing = 0.3f }).ToJson(), options);
        Assert.Equal(0.3f, kept.LabelSmoothing);
        foreach (float bad in new[] { -0.1f, 1f, float.NaN })
            Assert.StartsWith("--label-smoothing must be in [0, 1)",
                Assert.Throws<ArgumentException>(() => (options with { LabelSmoothing = bad }).Validate()).Message);
    }

    /// <summary>
    /// --post-ln builds g2p's Transformer with post-LN blocks: the header says so, the checkpoint's network config keeps
    /// it (norm_first false), the run's options keep it for --resume, and it trains on other losses than the preset.
    /// </summary>
    [Fact]
    public void PostLnBuildsTheG2pTransformerWithPostLnBlocks()
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options("g2p", "transformer", dir.Path) with { Steps = 4, EvalInterval = 0 };
        Assert.False(TaskPresets.For("g2p", "transformer").PostLn);
        var output = new StringWriter();
        Assert.Equal(0, new TrainingRun(options with { Out = dir.File("post"), PostLn = true },
            new SingleProcessCommunicator(), output).Execute());
        Assert.Contains("width 16, swiglu, post-LN", output.ToString());
        Assert.Equal(0, Run(options with { Out = dir.File("pre") }));
        Assert.NotEqual(Losses(dir.File("pre")), Losses(dir.File("post")));
        var config = JsonNode.Parse(File.ReadAllText(
            Path.Combine(dir.File("post"), Checkpoint.LatestSubdirectory, "config.json")))!;
        Assert.False((bool)config["network"]!["norm_first"]!);
        Assert.True(TrainOptions.FromJson((options with { PostLn = true }).ToJson(), options).PostLn);
    }

    /// <summary>
    /// --pronunciations first trains g2p on each word's first pronunciation alone: the header counts one example a
    /// training word (all of them: more), the losses differ, the run's options keep the choice for --resume (a run saved
    /// before the option read as all), and a value outside all and first is refused by name.
    /// </summary>
    [Fact]
    public void PronunciationsFirstTrainsOnEachWordsFirstPronunciation()
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options("g2p", "transformer", dir.Path) with { Steps = 3, EvalInterval = 0 };
        // every third word gains a second pronunciation: its phonemes backwards
        var lines = File.ReadAllLines(options.Data!).ToList();
        var words = lines.Where(l => l.StartsWith("  \"", StringComparison.Ordinal)).ToList();
        for (int i = 0; i < words.Count; i += 3)
        {
            var parts = words[i].Trim().TrimEnd(',').Split("\": \"");
            var phones = string.Join(' ', parts[1].TrimEnd('"').Split(' ').Reverse());
            lines.Insert(lines.Count - 1, $",  {parts[0]}(2)\": \"{phones}\"");
        }
        File.WriteAllLines(options.Data!, lines);
        Assert.Equal("all", TaskPresets.For("g2p", "transformer").Pronunciations);

        (int Words, int Examples) Counts(TrainOptions o)
        {
            var output = new StringWriter();
            Assert.Equal(0, new TrainingRun(o, new SingleProcessCommunicator(), output).Execute());
            var m = System.Text.RegularExpressions.Regex.Match(output.ToString(),
                @"([\d,]+) training \(([\d,]+) pronunciations\)");
            Assert.True(m.Success, output.ToString());
            return (int.Parse(m.Groups[1].Value.Replace(",", "")), int.Parse(m.Groups[2].Value.Replace(",", "")));
        }
        var all = Counts(options with { Out = dir.File("all") });
        var first = Counts(options with { Out = dir.File("first"), Pronunciations = "first" });
        Assert.Equal(all.Words, first.Words);
        Assert.Equal(first.Words, first.Examples);
        Assert.InRange(all.Examples - all.Words, all.Words / 4, all.Words / 2);
        Assert.NotEqual(Losses(dir.File("all")), Losses(dir.File("first")));

        var kept = TrainOptions.FromJson((options with { Pronunciations = "first" }).ToJson(), options);
        Assert.Equal("first", kept.Pronunciations);
        var old = options.ToJson();
        old.Remove("pronunciations");
        Assert.Equal("all", TrainOptions.FromJson(old, options with { Pronunciations = "first" }).Pronunciations);
        Assert.StartsWith("--pronunciations must be one of all, first; got 'second'",
            Assert.Throws<ArgumentException>(() => (options with { Pronunciations = "second" }).Validate()).Message);
    }

    /// <summary>
    /// --batching mixed cuts g2p's training batches from words of every length: the header says so, the Transformer's
    /// losses differ from batches of one length and fall, the choice is kept for --resume (a run saved before the option
    /// read as length), a recurrent model refuses it by name, and a value outside length and mixed is refused.
    /// </summary>
    [Fact]
    public void MixedBatchingTrainsTheTransformerOnWordsOfEveryLength()
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options("g2p", "transformer", dir.Path) with { Steps = 20, EvalInterval = 0, Dropout = 0f };
        Assert.Equal("length", TaskPresets.For("g2p", "transformer").Batching);
        string Run(TrainOptions o)
        {
            var output = new StringWriter();
            Assert.Equal(0, new TrainingRun(o, new SingleProcessCommunicator(), output).Execute());
            return output.ToString();
        }
        Assert.DoesNotContain("mixed lengths", Run(options with { Out = dir.File("length") }));
        Assert.Contains("batches of mixed lengths", Run(options with { Out = dir.File("mixed"), Batching = "mixed" }));
        var mixed = Losses(dir.File("mixed"));
        Assert.NotEqual(Losses(dir.File("length")), mixed);
        Assert.True(mixed[^5..].Average(r => r.Loss) < mixed[..5].Average(r => r.Loss), "the mixed batches' loss falls");

        Assert.Equal("mixed", TrainOptions.FromJson((options with { Batching = "mixed" }).ToJson(), options).Batching);
        var old = options.ToJson();
        old.Remove("batching");
        Assert.Equal("length", TrainOptions.FromJson(old, options with { Batching = "mixed" }).Batching);
        Assert.StartsWith("--batching must be one of length, mixed; got 'sorted'",
            Assert.Throws<ArgumentException>(() => (options with { Batching = "sorted" }).Validate()).Message);
        var lstm = TaskData.Options("g2p", "lstm", dir.Path) with { Batching = "mixed" };
        Assert.StartsWith("--batching mixed is not for --task g2p --model lstm",
            Assert.Throws<ArgumentException>(() => TaskPresets.Refuse(lstm)).Message);
        Assert.Equal("length", TaskPresets.Refuse(lstm with { Batching = "length" }).Batching);
    }

    /// <summary>
    /// --dropout-from F (late dropout) trains the first F of the steps without dropout: they log the losses of a run
    /// without dropout bit for bit, the steps after them other losses; stopped and resumed in the dropout half the run
    /// logs its uninterrupted losses; the run's options keep F (a run saved before the option: 0), the header says it,
    /// and F outside [0, 1), or with a dropout of 0, is refused by name.
    /// </summary>
    [Fact]
    public void DropoutFromTrainsTheFirstStepsWithoutDropout()
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options("g2p", "transformer", dir.Path) with
        {
            Steps = 8,
            EvalInterval = 0,
            AttentionDropout = null,
        };
        Assert.Equal(0, Run(options with { Out = dir.File("none"), Dropout = 0 }));
        var late = options with { Out = dir.File("late"), Dropout = 0.2f, DropoutFrom = 0.5f };
        var output = new StringWriter();
        Assert.Equal(0, new TrainingRun(late, new SingleProcessCommunicator(), output).Execute());
        Assert.Contains("dropout 0.2 after the first 50 % of the steps", output.ToString());
        var none = Losses(dir.File("none"));
        var lateLosses = Losses(dir.File("late"));
        Assert.Equal(none[..4], lateLosses[..4]);
        for (int i = 4; i < 8; i++) Assert.NotEqual(none[i].Loss, lateLosses[i].Loss);

        using var cancel = new CancellationTokenSource();
        var stopped = late with { Out = dir.File("stopped") };
        Assert.Equal(130, Run(stopped, r => { if (r.Step == 5) cancel.Cancel(); }, cancel));
        Assert.Equal(0, Run(late with { Out = null, Resume = stopped.Out }));
        Assert.Equal(lateLosses, Losses(stopped.Out!));

        Assert.Equal(0.5f, TrainOptions.FromJson(late.ToJson(), options).DropoutFrom);
        var old = late.ToJson();
        old.Remove("dropout_from");
        Assert.Equal(0f, TrainOptions.FromJson(old, late).DropoutFrom);
        Assert.Equal("--dropout-from must be in [0, 1); got 1.",
            Assert.Throws<ArgumentException>(() => (late with { DropoutFrom = 1 }).Validate()).Message);
        Assert.StartsWith("--dropout-from 0.5 switches dropout on part way through the run, but the dropout is 0",
            Assert.Throws<ArgumentException>(() => (late with { Dropout = 0 }).Validate()).Message);
    }

    /// <summary>
    /// --attention-dropout sets the dropout of g2p's Transformer on its attention weights alone: with --dropout 0 it
    /// trains other losses than no dropout at all; equal to --dropout it is --dropout alone, bit for bit (no setting
    /// means --dropout's); the checkpoint's network config keeps it, one without the field reads as --dropout's, and a
    /// value outside [0, 1) is refused by name.
    /// </summary>
    [Fact]
    public void AttentionDropoutDropsTheAttentionWeightsAlone()
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options("g2p", "transformer", dir.Path) with
        {
            Steps = 4,
            EvalInterval = 0,
            AttentionDropout = null,
        };
        Assert.Equal(0.1f, TaskPresets.For("g2p", "transformer").AttentionDropout);   // the preset's
        Assert.Equal(0, Run(options with { Out = dir.File("none"), Dropout = 0 }));
        Assert.Equal(0, Run(options with { Out = dir.File("attention"), Dropout = 0, AttentionDropout = 0.2f }));
        Assert.NotEqual(Losses(dir.File("none")), Losses(dir.File("attention")));
        Assert.Equal(0, Run(options with { Out = dir.File("all"), Dropout = 0.2f }));
        Assert.Equal(0, Run(options with { Out = dir.File("same"), Dropout = 0.2f, AttentionDropout = 0.2f }));
        Assert.Equal(Losses(dir.File("all")), Losses(dir.File("same")));
        Assert.NotEqual(Losses(dir.File("attention")), Losses(dir.File("all")));

        var network = JsonNode.Parse(File.ReadAllText(
            Path.Combine(dir.File("attention"), Checkpoint.LatestSubdirectory, "config.json")))!["network"]!.AsObject();
        Assert.Equal(0.2f, (float)network["attention_dropout"]!);
        var config = AttentionSharp.Models.EncoderDecoderConfig.FromJson(network);
        Assert.Equal(0.2f, config.AttentionDropout);
        Assert.Equal(0.2f, config.DecoderStack.Attention.Dropout);
        Assert.Equal(0f, config.DecoderStack.Dropout);
        network.Remove("attention_dropout");
        Assert.Null(AttentionSharp.Models.EncoderDecoderConfig.FromJson(network).AttentionDropout);
        Assert.Equal(0.2f, TrainOptions.FromJson((options with { AttentionDropout = 0.2f }).ToJson(), options).AttentionDropout);
        var old = (options with { AttentionDropout = 0.2f }).ToJson();
        old.Remove("attention_dropout");
        Assert.Null(TrainOptions.FromJson(old, TaskPresets.For("g2p", "transformer")).AttentionDropout);
        Assert.Equal("--attention-dropout must be in [0, 1); got 1.",
            Assert.Throws<ArgumentException>(() => (options with { AttentionDropout = 1 }).Validate()).Message);
    }

    /// <summary>
    /// --decoder-layers gives g2p's Transformer a decoder of its own depth, which the checkpoint's network config keeps
    /// beside the encoder's; without it the decoder is as deep as the encoder; a depth below 1 is refused by name.
    /// </summary>
    [Fact]
    public void DecoderLayersSetTheG2pDecodersDepthAlone()
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options("g2p", "transformer", dir.Path) with { Steps = 2, EvalInterval = 0, Layers = 2 };
        Assert.Null(TaskPresets.For("g2p", "transformer").DecoderLayers);
        Assert.Equal(0, Run(options with { Out = dir.File("deep"), DecoderLayers = 1 }));
        var network = NetworkConfig(dir.File("deep"));
        Assert.Equal(2, (int)network["encoder_layers"]!);
        Assert.Equal(1, (int)network["decoder_layers"]!);
        Assert.Equal(0, Run(options with { Out = dir.File("even") }));
        Assert.Equal(2, (int)NetworkConfig(dir.File("even"))["decoder_layers"]!);
        Assert.StartsWith("--decoder-layers must be positive",
            Assert.Throws<ArgumentException>(() => (options with { DecoderLayers = 0 }).Validate()).Message);
    }

    /// <summary>
    /// --ffn-width sets the hidden width of every feed-forward layer of g2p's Transformer, which the checkpoint's network
    /// config keeps (so a resumed or evaluated run rebuilds it) and the model's line names; without it the width is four
    /// times the model's; a width below 1 is refused by name.
    /// </summary>
    [Fact]
    public void FeedForwardWidthSetsTheG2pTransformersHiddenWidth()
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options("g2p", "transformer", dir.Path) with { Steps = 2, EvalInterval = 0, Activation = "relu" };
        Assert.Null(TaskPresets.For("g2p", "transformer").FeedForwardWidth);
        int Hidden(string run) => (int)NetworkConfig(dir.File(run))["d_ff"]!;
        Assert.Contains("width 16, feed-forward 24.", Train(options with { Out = dir.File("narrow"), FeedForwardWidth = 24 }));
        Assert.Equal(24, Hidden("narrow"));
        Assert.Contains("feed-forward 24.", Train(options with { Out = null, Resume = dir.File("narrow"), Steps = 3 }));
        Assert.Equal(24, Hidden("narrow"));
        Assert.DoesNotContain("feed-forward", Train(options with { Out = dir.File("plain") }));
        Assert.Equal(64, Hidden("plain"));
        Assert.Equal("--ffn-width must be positive; got 0.",
            Assert.Throws<ArgumentException>(() => (options with { FeedForwardWidth = 0 }).Validate()).Message);
    }

    /// <summary>
    /// --activation sets the feed-forward non-linearity of g2p's Transformer (the preset: SwiGLU): the checkpoint's
    /// network config keeps it, the model's line names it, SwiGLU's hidden width defaults to the multiple of 16 nearest
    /// 8/3 of the width (its three matrices about as many parameters as ReLU's two at four times), the losses differ from
    /// ReLU's, and a name outside relu, gelu and swiglu is refused by name.
    /// </summary>
    [Fact]
    public void ActivationSetsTheG2pTransformersNonLinearity()
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options("g2p", "transformer", dir.Path) with { Steps = 3, EvalInterval = 0, Width = 48 };
        Assert.Equal("swiglu", TaskPresets.For("g2p", "transformer").Activation);
        JsonNode Network(string run) => NetworkConfig(dir.File(run));
        Assert.Contains("width 48, swiglu.", Train(options with { Out = dir.File("swiglu") }));
        Assert.Equal("SwiGlu", (string)Network("swiglu")["activation"]!);
        Assert.Equal(128, (int)Network("swiglu")["d_ff"]!);
        Assert.Contains("width 48, gelu, feed-forward 64.",
            Train(options with { Out = dir.File("gelu"), Activation = "gelu", FeedForwardWidth = 64 }));
        Assert.Equal("Gelu", (string)Network("gelu")["activation"]!);
        Assert.Contains("feed-forward 64.", Train(options with { Out = null, Resume = dir.File("gelu"), Steps = 4 }));
        Assert.Contains("width 48.", Train(options with { Out = dir.File("relu"), Activation = "relu" }));
        Assert.Equal("Relu", (string)Network("relu")["activation"]!);
        Assert.Equal(192, (int)Network("relu")["d_ff"]!);
        Assert.NotEqual(Losses(dir.File("relu")), Losses(dir.File("swiglu")));
        Assert.Equal("--activation must be relu, gelu or swiglu; got 'tanh'.",
            Assert.Throws<ArgumentException>(() => (options with { Activation = "tanh" }).Validate()).Message);
    }

    /// <summary>
    /// The views a fashion run's final validation and test average leave training as it was (the same losses), are
    /// written into its checkpoints' config.json, and are what loading the checkpoint gives back: `attn eval` scores the
    /// test images as the run did. A checkpoint from before views existed read each image once.
    /// </summary>
    [Fact]
    public void TestViewsChangeTheScoresNotTheTrainingAndTheCheckpointKeepsThem()
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options("fashion", "transformer", dir.Path);
        Assert.Equal("shifts", options.TestViews);
        Assert.Equal("shifts", TaskPresets.For("fashion", "lstm").TestViews);
        Assert.Equal(0, Run(options with { Out = dir.File("shifts") }));
        Assert.Equal(0, Run(options with { Out = dir.File("once"), TestViews = "none" }));
        Assert.Equal(Losses(dir.File("once")), Losses(dir.File("shifts")));
        var last = Log(dir.File("shifts"))[^1];
        var best = Path.Combine(dir.File("shifts"), "best");
        Assert.Equal("shifts", (string?)JsonNode.Parse(File.ReadAllText(Path.Combine(best, "config.json")))!["test_views"]);
        var (model, views) = ImageTask.LoadWithViews(best);
        Assert.Equal("shifts", views.Name);
        var test = AttentionSharp.Data.FashionMnist.LoadTest(options.Data!);
        Assert.Equal((double)last["test_accuracy"]!, ImageEvaluation.Evaluate(model, test, 256, views).Accuracy);
        Assert.Equal("none", ImageTask.LoadWithViews(Path.Combine(dir.File("once"), "best")).Views.Name);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(best, "config.json")))!.AsObject();
        config.Remove("test_views");
        File.WriteAllText(Path.Combine(best, "config.json"), config.ToJsonString());
        Assert.Equal("none", ImageTask.LoadWithViews(best).Views.Name);
        config["test_views"] = "sideways";
        File.WriteAllText(Path.Combine(best, "config.json"), config.ToJsonString());
        Assert.Contains("names the test views 'sideways'; expected one of none, mirror, shifts",
            Assert.Throws<AttentionSharp.IO.CheckpointException>(() => ImageTask.LoadWithViews(best)).Message);
        Assert.Equal("--test-views must be one of none, mirror, shifts; got 'sideways'.",
            Assert.Throws<ArgumentException>(() => (options with { TestViews = "sideways" }).Validate()).Message);
    }

    /// <summary>
    /// The options of a run that fine-tunes <paramref name="init"/> on <paramref name="data"/>, as the CLI binds them.
    /// </summary>
    static TrainOptions FineTune(string init, string data, string outDir) => TaskPresets.For("gpt", "transformer")
        .WithCheckpointShape() with
    {
        Init = init,
        Data = data,
        Out = outDir,
        Minutes = null,
        Steps = 24,
        EvalInterval = 8,
        EvalSample = 16,
        Batch = 4,
        WarmupSteps = 2,
        LearningRate = 3e-3f,
        Seed = 9,
    };

    [Fact]
    public void FineTuningFromACheckpointLowersTheLossOnNewTextAndResumes()
    {
        using var dir = new TempDirectory();
        var pretrain = TaskData.Options("gpt", "transformer", dir.Path) with { Steps = 30, Dropout = 0f };
        Assert.Equal(0, Run(pretrain));
        // New text in the same alphabet: the checkpoint's tokenizer, shape and weights carry over.
        var data = dir.Write("new.txt",
            string.Concat(Enumerable.Repeat("a quiet river left the old city by a big tree.\n", 300)));
        var tuned = FineTune(pretrain.Out!, data, dir.File("tuned"));
        Assert.Equal(0, Run(tuned));
        var losses = Losses(tuned.Out!).Select(l => l.Loss).ToArray();
        Assert.True(losses[^4..].Average() < losses[..4].Average() - 0.2,
            $"fine-tuning did not lower the loss: {string.Join(", ", losses)}");
        var config = AttentionSharp.IO.Checkpoint.ReadContents(tuned.Out!).Config;
        Assert.Equal(16, (int)config["n_embd"]!);   // the checkpoint's shape, not the preset's 128

        // Stopped and resumed (without --init, which a resumed run no longer needs), it logs the same losses.
        using var cancel = new CancellationTokenSource();
        var stopped = tuned with { Out = dir.File("stopped") };
        Assert.Equal(130, Run(stopped, r => { if (r.Step == 10) cancel.Cancel(); }, cancel));
        Assert.Equal(0, Run(stopped with { Init = null, Out = null, Resume = stopped.Out }));
        Assert.Equal(Losses(tuned.Out!), Losses(stopped.Out!));

        var e = Assert.Throws<InvalidOperationException>(() => Run(tuned with { Out = dir.File("wider"), Width = 32 }));
        Assert.Contains("--width 32 contradicts the checkpoint's 16: --init keeps the checkpoint's shape", e.Message);
        e = Assert.Throws<InvalidOperationException>(() => Run(tuned with { Out = dir.File("both"), Resume = tuned.Out }));
        Assert.Contains("--init and --resume exclude each other", e.Message);
    }

    [Theory]
    [InlineData("pos")]
    [InlineData("fashion")]
    [InlineData("g2p")]
    public void EveryTransformerTaskTakesAPositionalEncodingAndAnAttentionPattern(string task)
    {
        using var dir = new TempDirectory();
        var options = TaskData.Options(task, "transformer", dir.Path) with
        {
            Steps = 3,
            Positions = AttentionSharp.Nn.PositionalEncodingKind.Rotary,
            Attention = AttentionSharp.Nn.AttentionPattern.Sliding(2),
        };
        Assert.Equal(0, Run(options));
        var config = AttentionSharp.IO.Checkpoint.ReadContents(options.Out!).Config.ToJsonString();
        Assert.Contains("rotary", config, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("sliding", config, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void ResumeAloneContinuesInTheRunsOwnDirectory()
    {
        var options = new TrainOptions { Resume = Path.Combine("runs", "x") };
        Assert.Equal(Path.Combine("runs", "x"), options.RunDirectory);
        Assert.Equal(Path.Combine("runs", "gpt"), new TrainOptions().RunDirectory);
        Assert.Equal("elsewhere", (options with { Out = "elsewhere" }).RunDirectory);
    }

    [Theory]
    [InlineData("pos", "transformer", "--context")]
    [InlineData("fashion", "lstm", "--heads")]
    [InlineData("gpt", "transformer", "--no-attention")]
    [InlineData("g2p", "transformer", "--no-attention")]
    [InlineData("mlm", "transformer", "--tokenizer")]
    [InlineData("fashion", "transformer", "--word-dropout")]
    [InlineData("mlm", "transformer", "--word-dropout")]
    [InlineData("g2p", "transformer", "--rare-word-dropout")]
    [InlineData("mlm", "transformer", "--train-fraction")]
    [InlineData("g2p", "lstm", "--train-fraction")]
    [InlineData("fashion", "lstm", "--patch")]
    [InlineData("gpt", "transformer", "--patch")]
    [InlineData("pos", "transformer", "--erase")]
    [InlineData("g2p", "lstm", "--erase")]
    [InlineData("pos", "transformer", "--test-views")]
    [InlineData("g2p", "lstm", "--test-views")]
    [InlineData("gpt", "transformer", "--label-smoothing")]
    [InlineData("pos", "lstm", "--label-smoothing")]
    [InlineData("g2p", "lstm", "--post-ln")]
    [InlineData("pos", "transformer", "--post-ln")]
    [InlineData("g2p", "lstm", "--decoder-layers")]
    [InlineData("pos", "transformer", "--decoder-layers")]
    [InlineData("g2p", "lstm", "--ffn-width")]
    [InlineData("gpt", "transformer", "--ffn-width")]
    [InlineData("g2p", "gru", "--activation")]
    [InlineData("fashion", "transformer", "--activation")]
    [InlineData("pos", "lstm", "--ensemble")]
    [InlineData("fashion", "transformer", "--loss-average")]
    [InlineData("gpt", "transformer", "--loss-average")]
    [InlineData("pos", "transformer", "--pronunciations")]
    [InlineData("fashion", "lstm", "--pronunciations")]
    [InlineData("pos", "transformer", "--batching")]
    [InlineData("fashion", "transformer", "--ensemble")]
    [InlineData("pos", "transformer", "--attention-dropout")]
    [InlineData("g2p", "lstm", "--attention-dropout")]
    public void OptionsATaskCannotUseAreRefusedByName(string task, string model, string option)
    {
#pragma warning disable format
        var options = TaskPresets.For(task, model) with
        {
            Context = option == "--context" ? 64 : null, Heads = option == "--heads" ? 4 : TaskPresets.For(task, model).Heads,
            NoAttention = option == "--no-attention", PostLn = option == "--post-ln",
            DecoderLayers = option == "--decoder-layers" ? 2 : null,
            FeedForwardWidth = option == "--ffn-width" ? 64 : null, Activation = option == "--activation" ? "gelu" : null,
            AttentionDropout = option == "--attention-dropout" ? 0.1f : null,
            Tokenizer = option == "--tokenizer" ? "bpe" : TaskPresets.For(task, model).Tokenizer,
            WordDropout = option == "--word-dropout" ? 0.1f : TaskPresets.For(task, model).WordDropout,
            RareWordDropout = option == "--rare-word-dropout" ? 0.25f : TaskPresets.For(task, model).RareWordDropout,
            TrainFraction = option == "--train-fraction" ? 0.5 : TaskPresets.For(task, model).TrainFraction,
            Patch = option == "--patch" ? 4 : TaskPresets.For(task, model).Patch,
            Erase = option == "--erase" ? 0.5f : TaskPresets.For(task, model).Erase,
            TestViews = option == "--test-views" ? "mirror" : TaskPresets.For(task, model).TestViews,
            LabelSmoothing = option == "--label-smoothing" ? 0.1f : TaskPresets.For(task, model).LabelSmoothing,
            Ensemble = option == "--ensemble" ? 2 : TaskPresets.For(task, model).Ensemble,
            LossAverage = option == "--loss-average" ? "token" : TaskPresets.For(task, model).LossAverage,
            Pronunciations = option == "--pronunciations" ? "first" : TaskPresets.For(task, model).Pronunciations,
            Batching = option == "--batching" ? "mixed" : TaskPresets.For(task, model).Batching,
        };
#pragma warning restore format
        var e = Assert.Throws<ArgumentException>(() => TaskPresets.Refuse(options));
        Assert.StartsWith(option, e.Message);
        Assert.Contains($"--task {task}", e.Message);
        Assert.Contains("--model 'cnn' is not available for --task pos",
            Assert.Throws<ArgumentException>(() => TaskPresets.For("pos", "cnn")).Message);
        Assert.Contains("--task 'nope' is unknown",
            Assert.Throws<ArgumentException>(() => TaskPresets.For("nope", "transformer")).Message);
    }

    [Fact]
    public void ThePatchSizeShapesTheViTAndMustDivideTheImage()
    {
        var preset = TaskPresets.For("fashion", "transformer");
        Assert.Equal(7, preset.Patch);
        var (_, config, description) = ImageTask.Create(preset with { Patch = 4 }, new Generator(1));
        Assert.Equal(4, (int)config["network"]!["patch_size"]!);
        Assert.Contains("4×4 patches (49 tokens and a class token)", description);
        var e = Assert.Throws<ArgumentException>(() => ImageTask.Create(preset with { Patch = 5 }, new Generator(1)));
        Assert.Equal("--patch 5 does not divide the 28-pixel side of a Fashion-MNIST image; use 1, 2, 4, 7, 14 or 28.",
            e.Message);
        var zero = Assert.Throws<ArgumentException>(() => (preset with { Patch = 0 }).Validate());
        Assert.StartsWith("--patch must be positive", zero.Message);
    }

    [Fact]
    public void TheStemPutsAConvolutionBeforeThePatches()
    {
        var preset = TaskPresets.For("fashion", "transformer");
        Assert.Equal(16, preset.Stem);
        var (model, config, description) = ImageTask.Create(preset with { Stem = 16 }, new Generator(1));
        Assert.Equal(1, (int)config["network"]!["stem_layers"]!);
        Assert.Equal(16, (int)config["network"]!["stem_channels"]!);
        Assert.Contains("a stem of 1 3×3 convolution (16 channels, stride 1), 7×7 patches (16 tokens", description);
        Assert.Contains(model.NamedParameters(), p => p.Name.StartsWith("stem.", StringComparison.Ordinal));
        var (_, plain, _) = ImageTask.Create(preset with { Stem = 0 }, new Generator(1));
        Assert.Equal(0, (int?)plain["network"]!["stem_layers"] ?? 0);
        Assert.StartsWith("--stem must be 0",
            Assert.Throws<ArgumentException>(() => (preset with { Stem = -1 }).Validate()).Message);
        Assert.StartsWith("--stem is not used", Assert.Throws<ArgumentException>(
            () => TaskPresets.Refuse(TaskPresets.For("fashion", "lstm") with { Stem = 8 })).Message);

        // --stem-layers stacks convolutions of --stem channels; without a stem it has nothing to stack.
        Assert.Equal(1, preset.StemLayers);
        var (_, two, twoDescription) = ImageTask.Create(preset with { StemLayers = 2 }, new Generator(1));
        Assert.Equal(2, (int)two["network"]!["stem_layers"]!);
        Assert.Contains("a stem of 2 3×3 convolutions (16 channels, stride 1)", twoDescription);
        Assert.Equal("--stem-layers 2 needs a stem: give its channels with --stem C.", Assert.Throws<ArgumentException>(
            () => ImageTask.Create(preset with { Stem = 0, StemLayers = 2 }, new Generator(1))).Message);
        Assert.StartsWith("--stem-layers must be positive",
            Assert.Throws<ArgumentException>(() => (preset with { StemLayers = 0 }).Validate()).Message);
        Assert.StartsWith("--stem-layers is not used", Assert.Throws<ArgumentException>(
            () => TaskPresets.Refuse(TaskPresets.For("fashion", "lstm") with { StemLayers = 2 })).Message);
    }

    [Fact]
    public void TheWeightAverageIsWhatValidationAndTheBestCheckpointReadAndItResumesExactly()
    {
        using var dir = new TempDirectory();
        var plain = TaskData.Options("pos", "transformer", dir.Path) with { Out = dir.File("plain") };
        var averaged = plain with { Out = dir.File("averaged"), Ema = 0.9f };
        Assert.Equal(0, Run(plain));
        Assert.Equal(0, Run(averaged));
        // Training reads the trained weights, so its losses are those of the run without an average; validation differs.
        Assert.Equal(Losses(plain.Out!), Losses(averaged.Out!));
        static float[] Validation(string run) =>
            [.. Log(run).Where(r => r["val_loss"] is not null).Select(r => (float)r["val_loss"]!)];
        Assert.NotEqual(Validation(plain.Out!), Validation(averaged.Out!));

        // Stopped between validations and resumed with --resume alone: the same validations, final pass and best weights.
        using var cancel = new CancellationTokenSource();
        var stopped = averaged with { Out = dir.File("stopped") };
        Assert.Equal(130, Run(stopped, r => { if (r.Step == 7) cancel.Cancel(); }, cancel));
        Assert.Null(AttentionSharp.IO.Checkpoint.ReadContents(stopped.Out!, preferBest: false).WeightAverage);
        var kept = AttentionSharp.IO.Checkpoint.ReadContents(stopped.Out!, preferBest: false, optimizer: true);
        Assert.Equal(0.9f, TrainOptions.FromJson((JsonObject)kept.State["options"]!, TaskPresets.For("pos", "transformer")).Ema);
        Assert.Equal(8, (int)kept.State["ema_updates"]!);
        // Loaded for use (eval, predict, sample, quantize), a latest checkpoint gives the average its validation read;
        // for resuming, the trained weights.
        var latest = Path.Combine(stopped.Out!, AttentionSharp.IO.Checkpoint.LatestSubdirectory);
        var (network, _) = AttentionSharp.Training.Tasks.TaggerNetwork.Load(latest);
        var average = kept.WeightAverage!.ToDictionary(a => a.Name, a => a.Values);
        var trained = AttentionSharp.IO.SafetensorsFile.Read(Path.Combine(latest, AttentionSharp.IO.Checkpoint.WeightsFile));
        foreach (var (name, p) in network.Model.NamedParameters()) Assert.Equal(average[name], p.Data.ToArray());
        Assert.Contains(network.Model.NamedParameters(),
            n => !trained.ReadFloat32(n.Name).AsSpan().SequenceEqual(n.Parameter.Data));
        AttentionSharp.IO.Checkpoint.LoadWeights(latest, network.Model, trained: true);
        foreach (var (name, p) in network.Model.NamedParameters()) Assert.Equal(trained.ReadFloat32(name), p.Data.ToArray());

        Assert.Equal(0, Run(averaged with { Out = null, Resume = stopped.Out }));
        Assert.Equal(Validation(averaged.Out!), Validation(stopped.Out!));
        Assert.Equal((float)Log(averaged.Out!)[^1]["final_val_loss"]!, (float)Log(stopped.Out!)[^1]["final_val_loss"]!);
        static byte[] BestWeights(string run) =>
            File.ReadAllBytes(Path.Combine(run, "best", AttentionSharp.IO.Checkpoint.WeightsFile));
        Assert.Equal(BestWeights(averaged.Out!), BestWeights(stopped.Out!));

        var e = Assert.Throws<ArgumentException>(() => (plain with { Ema = 1f }).Validate());
        Assert.StartsWith("--ema must be in [0, 1)", e.Message);
        var onGpu = TaskPresets.For("gpt", "transformer") with { Ema = 0.999f, Device = TrainDevice.Cuda };
        e = Assert.Throws<ArgumentException>(() => TaskPresets.Refuse(onGpu));
        Assert.StartsWith("--ema averages the CPU model's weights", e.Message);
    }

    [Fact]
    public void ATaggerStartsFromTheEncoderWeightsAnMlmRunValidated()
    {
        using var dir = new TempDirectory();
        // Stopped between validations, a run with a weight average keeps the average beside the trained weights.
        var mlm = TaskData.Options("mlm", "transformer", dir.Path) with { Out = dir.File("mlm"), Ema = 0.9f };
        using var cancel = new CancellationTokenSource();
        Assert.Equal(130, Run(mlm, r => { if (r.Step == 7) cancel.Cancel(); }, cancel));
        var latest = Path.Combine(mlm.Out!, Checkpoint.LatestSubdirectory);
        var average = Checkpoint.ReadContents(latest, optimizer: true).WeightAverage!.ToDictionary(a => a.Name, a => a.Values);
        var trained = SafetensorsFile.Read(Path.Combine(latest, Checkpoint.WeightsFile));

        // --init takes the average, as eval and predict do, not the trained weights.
        var pos = TaskData.Options("pos", "transformer", dir.Path) with { Init = latest, TrainFraction = mlm.TrainFraction };
        var tagger = new TaggingTask(pos, null, new SingleProcessCommunicator(), TextWriter.Null).Model;
        var encoder = tagger.NamedParameters().Where(p => average.ContainsKey(p.Name)).ToList();
        Assert.True(encoder.Count > 10, $"{encoder.Count} tensors shared");
        foreach (var (name, p) in encoder) Assert.Equal(average[name], p.Data.ToArray());
        Assert.Contains(encoder, n => !trained.ReadFloat32(n.Name).AsSpan().SequenceEqual(n.Parameter.Data));

        // ReadWeights gives the tensors asked for, with their shapes; from a checkpoint without an average apart, the
        // weights themselves.
        var some = Checkpoint.ReadWeights(latest, n => n.StartsWith("encoder.", StringComparison.Ordinal));
        Assert.NotEmpty(some);
        Assert.All(some, w => Assert.StartsWith("encoder.", w.Key));
        foreach (var (name, (values, shape)) in some)
        {
            Assert.Equal(average[name], values);
            Assert.Equal(trained.Entries.Single(e => e.Name == name).ShapeToArray(), shape);
        }
        var best = Path.Combine(mlm.Out!, Checkpoint.BestSubdirectory);
        var bestWeights = SafetensorsFile.Read(Path.Combine(best, Checkpoint.WeightsFile));
        foreach (var (name, (values, _)) in Checkpoint.ReadWeights(best, _ => true))
            Assert.Equal(bestWeights.ReadFloat32(name), values);
    }

    [Fact]
    public void AShareOfTheTrainingDocumentsIsAFixedDrawInsideEveryLargerShare()
    {
        using var dir = new TempDirectory();
        var train = AttentionSharp.Data.BrownCorpus.Load(TaskData.Corpus(dir.Path)).Split().Train;
        Assert.Equal(16, train.Count);
        var quarter = AttentionSharp.Training.Tasks.TaggingTask.Share(train, 0.25);
        var half = AttentionSharp.Training.Tasks.TaggingTask.Share(train, 0.5);
        Assert.Equal(4, quarter.Count);
        Assert.Equal(8, half.Count);
        Assert.Subset(half.ToHashSet(), quarter.ToHashSet());
        Assert.Equal(half, AttentionSharp.Training.Tasks.TaggingTask.Share(train, 0.5));       // the same draw every time
        Assert.Equal(half.OrderBy(d => d.Id, StringComparer.Ordinal), half);                     // in the corpus's order
        Assert.Same(train, AttentionSharp.Training.Tasks.TaggingTask.Share(train, 1));
        Assert.Single(AttentionSharp.Training.Tasks.TaggingTask.Share(train, 0.001));           // never empty
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionSharp.Training.Tasks.TaggingTask.Share(train, 0));

        // --train-fraction is checked, kept by checkpoints (so --resume alone trains on the same share) and named in the header.
        var pos = TaskPresets.For("pos", "transformer");
        foreach (double bad in new[] { 0, -0.5, 1.5, double.NaN })
        {
            var e = Assert.Throws<ArgumentException>(() => (pos with { TrainFraction = bad }).Validate());
            Assert.StartsWith("--train-fraction must be in (0, 1]", e.Message);
        }
        Assert.Equal(0.25, TrainOptions.FromJson((pos with { TrainFraction = 0.25 }).ToJson(), pos).TrainFraction);
        // --rare-word-dropout likewise; a run saved before it existed resumes without it, whatever the preset says now.
        Assert.Equal(0.5f, TrainOptions.FromJson((pos with { RareWordDropout = 0.5f }).ToJson(), pos).RareWordDropout);
        var before = pos.ToJson();
        before.Remove("rare_word_dropout");
        Assert.Equal(0f, TrainOptions.FromJson(before, pos).RareWordDropout);
        Assert.Contains("--rare-word-dropout must be", Assert.Throws<ArgumentException>(
            () => (pos with { RareWordDropout = -1f }).Validate()).Message);
        var options = TaskData.Options("pos", "transformer", dir.Path) with { Steps = 2, TrainFraction = 0.25 };
        var output = new StringWriter();
        Assert.Equal(0, new TrainingRun(options, new SingleProcessCommunicator(), output).Execute());
        Assert.Contains("(from 4 of the 16 training documents)", output.ToString());
    }

    [Fact]
    public void ThePeriodicValidationEstimateSamplesAllOfValidation()
    {
        // A text whose validation part (its last tenth) turns, half way, from the training text's kind into another:
        // the first windows of validation alone would score only the familiar half.
        using var dir = new TempDirectory();
        var rng = new Random(1);
        string familiar = TaskData.Text(900);
        string foreign = new([.. Enumerable.Range(0, familiar.Length / 18).Select(_ => "qxzjvkwy \n"[rng.Next(10)])]);
        var data = dir.Write("text.txt", familiar + foreign);
#pragma warning disable format
        var options = TaskPresets.For("gpt", "transformer") with
        {
            Data = data, Out = dir.File("run"), Minutes = null, Steps = 60, EvalInterval = 60, EvalSample = 256, Batch = 8,
            WarmupSteps = 5, Layers = 1, Heads = 2, Width = 32, Context = 16, Seed = 3,
        };
#pragma warning restore format
        Assert.Equal(0, Run(options));
        var log = Log(options.Out!);
        float periodic = (float)log.Last(r => r["val_loss"] is not null)!["val_loss"]!;
        float full = (float)log.Single(r => r["final_val_loss"] is not null)["final_val_loss"]!;
        Assert.True(Math.Abs(periodic - full) < 0.05 * full,
            $"the last periodic validation loss {periodic} is not within 5% of the full pass's {full}");
        Assert.Equal(256, (int)log.Last(r => r["val_loss"] is not null)!["val_sample"]!);
    }
}
