using System.CommandLine;
using AttentionSharp.Data;
using AttentionSharp.Distributed;
using AttentionSharp.Nn;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Cli;

/// <summary>
/// `attn train`: binds the options onto the task's preset (<see cref="TaskPresets"/>) and runs
/// <see cref="TrainingRun"/>. An option not given keeps the preset's value; --resume DIR alone continues DIR's run.
/// </summary>
static class TrainCommand
{
    static readonly Option<string?> Task = new("--task")
    {
        Description = $"What to train: {string.Join(", ", TaskPresets.Tasks)} (default gpt, or the resumed run's task); " +
                      "each task has its own defaults for the options not given."
    };
    static readonly Option<string?> Model = new("--model")
    {
        Description = "transformer, or for pos, fashion and g2p lstm, gru or rnn.",
    };
    static readonly Option<string?> Data = new("--data")
    {
        Description = "gpt: a UTF-8 text file (last 10% for validation); fashion: the IDX files' directory; g2p: a dictionary " +
            "file.",
    };
    static readonly Option<int?> Steps = new("--steps") { Description = "Optimizer steps (gpt: 4000)." };
    static readonly Option<double?> Minutes = new("--minutes")
    {
        Description = "Stop after this many minutes; the schedule is fitted to the time (0 = no limit; gpt: 8.5).",
    };
    static readonly Option<string?> Out = new("--out")
    {
        Description = "Run directory: checkpoint/, best/, log.jsonl, loss.png (default: the resumed run's, else runs/TASK).",
    };
    static readonly Option<string?> Resume = new("--resume")
    {
        Description = "Continue this run (or checkpoint) exactly, in its directory unless --out says otherwise.",
    };
    static readonly Option<ulong?> Seed = new("--seed") { Description = "Seed of everything random (1337)." };
    static readonly Option<int?> Layers = new("--layers") { Description = "L: Transformer blocks or recurrent layers." };
    static readonly Option<int?> DecoderLayers = new("--decoder-layers")
    {
        Description = "g2p --model transformer: decoder layers, when they differ from the encoder's (--layers).",
    };
    static readonly Option<int?> Heads = new("--heads") { Description = "NH: attention heads." };
    static readonly Option<int?> Width = new("--width")
    {
        Description = "C: model width (d_model), or the recurrent hidden size.",
    };
    static readonly Option<int?> Context = new("--context") { Description = "T: context length in tokens (gpt)." };
    static readonly Option<int?> Patch = new("--patch")
    {
        Description = "fashion --model transformer: the side of a patch in pixels, a divisor of 28 (7: 16 tokens).",
    };
    static readonly Option<int?> Stem = new("--stem")
    {
        Description = "fashion --model transformer: channels of a 3×3 convolution before the patches (0: none).",
    };
    static readonly Option<int?> StemLayers = new("--stem-layers")
    {
        Description = "fashion --model transformer: how many 3×3 convolutions of --stem channels the stem stacks.",
    };
    static readonly Option<float?> Erase = new("--erase")
    {
        Description = "fashion: the probability of erasing a random rectangle of each training image (0: none).",
    };
    static readonly Option<string?> TestViews = new("--test-views")
    {
        Description = "fashion: the views of each image the final validation and the test average: none, mirror, or " +
                      "shifts (the image and its mirror, each centred and moved one pixel four ways; the default).",
    };
    static readonly Option<string?> Positions = new("--positions") { Description = PositionsHelp() };

    /// <summary>--positions' help, each kind with the tasks whose presets read it, as the presets say.</summary>
    static string PositionsHelp()
    {
        var byKind = TaskPresets.Tasks.GroupBy(t => TaskPresets.For(t, "transformer").Positions!.Value).ToList();
        var rest = Enum.GetValues<PositionalEncodingKind>().Where(k => byKind.All(g => g.Key != k))
            .Select(k => k.ToString().ToLowerInvariant()).ToList();
        var used = byKind.Select(g => $"{g.Key.ToString().ToLowerInvariant()} ({string.Join(", ", g)})");
        return "Transformers: " + string.Join(", ", used) +
               (rest.Count == 0 ? "." : $", {string.Join(", ", rest[..^1])}{(rest.Count > 1 ? " or " : "")}{rest[^1]}.");
    }
    static readonly Option<float?> Dropout = new("--dropout") { Description = "Dropout probability." };
    static readonly Option<float?> AttentionDropout = new("--attention-dropout")
    {
        Description = "g2p's Transformer: dropout on the attention weights alone, in [0, 1) (default: --dropout's).",
    };
    static readonly Option<float?> DropoutFrom = new("--dropout-from")
    {
        Description = "Late dropout: train the first F of the steps without dropout, then with --dropout, F in [0, 1) (0).",
    };
    static readonly Option<float?> WordDropout = new("--word-dropout")
    {
        Description = "pos: the share of training words read as <unk> (spelling kept), so the tagger learns unseen words.",
    };
    static readonly Option<float?> RareWordDropout = new("--rare-word-dropout")
    {
        Description = "pos: α; a training word seen n times is read as <unk> with probability α/(α+n), " +
                      "so <unk> learns rare words.",
    };
    static readonly Option<double?> TrainFraction = new("--train-fraction")
    {
        Description = "pos: train on this share of the training documents (a fixed draw; 1 = all), for learning curves.",
    };
    static readonly (Option<int?> Beam, Option<float?> LengthPenalty) Decoding = DecodingOptions.Create();
    static readonly Option<int?> Beam = Decoding.Beam;
    static readonly Option<float?> LengthPenalty = Decoding.LengthPenalty;
    static readonly Option<int?> Ensemble = new("--ensemble")
    {
        Description = "g2p: train N models (seeds S, S+1, …) that decode together, in DIR/member-1 … and DIR/best: one " +
                      "after another, an N-th of --minutes each, or with --side-by-side at the same time (1: one model).",
    };
    static readonly Option<bool?> SideBySide = new("--side-by-side")
    {
        Description = "g2p with --ensemble N: train the members at the same time, each on 1/N of the threads and for the " +
                      "whole --minutes, instead of one after another (true or false).",
    };
    static readonly Option<int?> Batch = new("--batch")
    {
        Description = "B: rows per micro-batch (per rank under MPI: the global batch is ranks × B).",
    };
    static readonly Option<int?> Accumulate = new("--grad-accum") { Description = "Micro-batches per optimizer step (1)." };
    static readonly Option<float?> Lr = new("--lr") { Description = "Peak learning rate." };
    static readonly Option<int?> Warmup = new("--warmup") { Description = "Warmup steps." };
    static readonly Option<float?> MinLrRatio = new("--min-lr-ratio")
    {
        Description = "The rate the cosine schedule ends at, as a fraction of the peak, in [0, 1] (0.1).",
    };
    static readonly Option<float?> WeightDecay = new("--weight-decay") { Description = "AdamW weight decay (matrices only)." };
    static readonly Option<float?> Ema = new("--ema")
    {
        Description = "Keep a moving average of the weights with this decay (e.g. 0.999) and validate, keep the best " +
                      "checkpoint and test with it (0 = none).",
    };
    static readonly Option<string?> LossAverage = new("--loss-average")
    {
        Description = "--task g2p: how a batch's loss weighs its target phonemes: batch (their mean, every batch " +
                      "weighs the same) or token (their sum over a batch's average count, every phoneme weighs the same).",
    };
    static readonly Option<string?> Pronunciations = new("--pronunciations")
    {
        Description = "--task g2p: which pronunciations of a training word to train on: all (one example each) or " +
                      "first (the dictionary's first alone); scoring accepts any either way.",
    };
    static readonly Option<string?> Batching = new("--batching")
    {
        Description = "--task g2p: how training batches are cut: length (words of one spelling length, no padding) or " +
                      "mixed (words of every length together, spellings padded; the Transformer only).",
    };
    static readonly Option<float?> LabelSmoothing = new("--label-smoothing")
    {
        Description = "ε of label smoothing in the training loss (--task g2p and fashion): 1 − ε on the label, ε spread " +
                      "over every class.",
    };
    static readonly Option<int?> EvalInterval = new("--eval-interval") { Description = "Steps between validation passes." };
    static readonly Option<int?> EvalSample = new("--eval-sample")
    {
        Description = "Validation examples a periodic pass scores, drawn once from all of validation (0 = all); the final " +
            "pass scores all.",
    };
    static readonly Option<string?> Tokenizer = new("--tokenizer")
    {
        Description = "gpt: char, bpe, or a tiktoken encoding (cl100k_base, o200k_base).",
    };
    static readonly Option<int?> Vocab = new("--vocab") { Description = "Vocabulary size for --tokenizer bpe (2048)." };
    static readonly Option<string?> Init = new("--init")
    {
        Description = "gpt: fine-tune a GPT checkpoint (its weights, tokenizer and shape; a fresh optimizer and schedule); " +
            "pos --model transformer: start from an mlm checkpoint's encoder.",
    };
    static readonly Option<string?> Attention = new("--attention")
    {
        Description = "Transformers: full, sliding:W (a window of W tokens, causal in a GPT), sliding:W:G1,G2 (plus global " +
            "positions) or linear (elu+1 features; not with padded batches).",
    };
    static readonly Option<bool> NoAttention = new("--no-attention")
    {
        Description = "g2p with --model lstm, gru or rnn: no attention, the encoder's final state is all the decoder sees.",
    };
    static readonly Option<int?> FeedForwardWidth = new("--ffn-width")
    {
        Description = "g2p's Transformer: the feed-forward layers' hidden width (default: 4 × --width).",
    };
    static readonly Option<string?> Activation = new("--activation")
    {
        Description = "g2p's Transformer: the feed-forward non-linearity, relu (default), gelu or swiglu (whose hidden " +
                      "width defaults to about 8/3 × --width, the parameters of relu's 4 ×).",
    };
    static readonly Option<bool> PostLn = new("--post-ln")
    {
        Description = "g2p's Transformer: LayerNorm after each residual sum (post-LN, as in the paper) instead of before " +
                      "each sublayer.",
    };
    static readonly Option<string> OnNonFinite = new("--on-nonfinite")
    {
        Description = "When the loss or a gradient is NaN or Inf: stop (keep the last good checkpoint) or skip the step.",
        DefaultValueFactory = _ => "stop",
    };
    static readonly Option<bool> DetectAnomaly = new("--detect-anomaly")
    {
        Description = "Check every operation's output and name the first that is NaN or Inf (slower).",
    };
    static readonly Option<string?> Cache = new("--cache")
    {
        Description = $"Where fetched data is kept (default: ${DataCache.EnvironmentVariable}, else ~/.cache/attentionsharp).",
    };
    static readonly Option<string> Device = new("--device")
    {
        Description = "cpu, or cuda: --task gpt or mlm on the first NVIDIA GPU (one process; evaluation, checkpoints and " +
                      "samples through the CPU model).",
        DefaultValueFactory = _ => "cpu",
    };
    static readonly Option<bool> Distributed = new("--distributed")
    {
        Description = "Require MPI (found by itself under mpirun): data-parallel training, --batch rows per rank.",
    };

    public static Command Create()
    {
        var command = new Command("train",
            "Train a model: a GPT on the Brown corpus (fetched on first use) or --data FILE by default, or --task NAME.");
        foreach (var option in new Option[] { Task, Model, Data, Steps, Minutes, Out, Resume, Seed, Layers, DecoderLayers,
                     Heads, Width, Context, Patch, Stem, StemLayers, Erase, TestViews, Positions, Dropout,
                     AttentionDropout, DropoutFrom, WordDropout, RareWordDropout, TrainFraction, Beam, LengthPenalty,
                     Ensemble, SideBySide, Batch, Accumulate, Lr, Warmup, MinLrRatio, WeightDecay, Ema, LabelSmoothing,
                     LossAverage, Pronunciations, Batching, EvalInterval, EvalSample, Tokenizer, Vocab, Init, Attention,
                     NoAttention, PostLn, FeedForwardWidth, Activation,
                     OnNonFinite, DetectAnomaly, Cache, Device, Distributed })
            command.Options.Add(option);
        command.SetAction(r =>
        {
            ICommunicator? communicator = null;
            int code = CliErrors.Run(() =>
            {
                var options = Bind(r);   // before MPI starts, so a bad option is reported once
                communicator = DistributedLaunch.Start(r.GetValue(Distributed));
                if (communicator.Size > 1 && Environment.GetEnvironmentVariable("ATTN_THREADS") is null)
                    // ranks share the cores
                    Kernels.Parallel.ThreadCount = Math.Max(1, Environment.ProcessorCount / DistributedLaunch.LocalRanks);
                var group = communicator;
                TrainingRun Run(TrainOptions o, TextWriter output) => new(o, group, output)
                {
                    LossCurve = (path, train, valid, title) => Visualization.LossCurve.Save(path, train, valid, title),
                    DeviceEngine = Gpu.GpuStepEngine.ForCuda,
                };
                return options.Ensemble is > 1 ? new EnsembleRun(options, group, Console.Out, Run).Execute()
                                               : Run(options, Console.Out).Execute();
            });
            // A rank that fails alone would leave the others waiting in a collective: end the whole job.
            if (code != 0 && code != 130 && communicator is { Size: > 1 }) communicator.Abort(code);
            communicator?.Dispose();
            return code;
        });
        return command;
    }

    /// <summary>The task's preset with every option given on the command line bound onto it.</summary>
    static TrainOptions Bind(ParseResult r)
    {
        var resume = r.GetValue(Resume);
        // An ensemble's run directory keeps its options (and shape) in its manifest, a single run in its checkpoint.
        var manifest = resume is null ? null : EnsembleRun.ReadManifest(resume);
        var resumed = resume is null || manifest is not null ? null : IO.Checkpoint.ReadContents(resume, preferBest: false);
        var keptOptions = manifest?["options"] as System.Text.Json.Nodes.JsonObject;
        var resumedConfig = resumed?.Config;
        if (resumedConfig is not null) TrainingTasks.RefuseEnsemble(resumedConfig, resume!);
        var task = r.GetValue(Task) ?? keptOptions?["task"]?.GetValue<string>()
                   ?? (resumedConfig is null ? "gpt" : TrainingTasks.TaskOf(resumedConfig));
        var model = r.GetValue(Model) ?? keptOptions?["model"]?.GetValue<string>()
                    ?? resumedConfig?["model"]?.GetValue<string>() ?? "transformer";
        var p = TaskPresets.For(task, model);
        // --resume DIR alone continues the run as it was started: its kept options stand where none is given.
        if (manifest is not null)
            p = EnsembleRun.Restore(manifest, p, resume!) with { Task = task, Model = model };
        else if (resumed?.State["options"] is System.Text.Json.Nodes.JsonObject kept)
            p = TrainOptions.FromJson(kept, p) with { Task = task, Model = model };
        // A run that starts from a checkpoint (--resume, or --init) keeps its shape: only what is given may say otherwise.
        if ((resume is not null && manifest is null) || (task == "gpt" && r.GetValue(Init) is not null))
            p = p.WithCheckpointShape();
#pragma warning disable format // one option's binding a clause, several to a line
        return TaskPresets.Refuse((p with
        {
            Data = r.GetValue(Data) ?? p.Data, Out = r.GetValue(Out), Resume = resume, Init = r.GetValue(Init),
            Cache = r.GetValue(Cache) ?? p.Cache,
            Steps = r.GetValue(Steps) ?? p.Steps, Minutes = r.GetValue(Minutes) is { } m ? (m > 0 ? m : null) : p.Minutes,
            Seed = r.GetValue(Seed) ?? p.Seed, Batch = r.GetValue(Batch) ?? p.Batch,
            GradAccumulation = r.GetValue(Accumulate) ?? p.GradAccumulation,
            LearningRate = r.GetValue(Lr) ?? p.LearningRate, WarmupSteps = r.GetValue(Warmup) ?? p.WarmupSteps,
            MinLearningRateRatio = r.GetValue(MinLrRatio) ?? p.MinLearningRateRatio,
            WeightDecay = r.GetValue(WeightDecay) ?? p.WeightDecay, Ema = r.GetValue(Ema) ?? p.Ema,
            EvalInterval = r.GetValue(EvalInterval) ?? p.EvalInterval,
            EvalSample = r.GetValue(EvalSample) ?? p.EvalSample, Layers = r.GetValue(Layers) ?? p.Layers,
            Heads = r.GetValue(Heads) ?? p.Heads,
            Width = r.GetValue(Width) ?? p.Width, Dropout = r.GetValue(Dropout) ?? p.Dropout,
            DropoutFrom = r.GetValue(DropoutFrom) ?? p.DropoutFrom,
            AttentionDropout = r.GetValue(AttentionDropout) ?? p.AttentionDropout,
            LabelSmoothing = r.GetValue(LabelSmoothing) ?? p.LabelSmoothing,
            LossAverage = r.GetValue(LossAverage) ?? p.LossAverage,
            Pronunciations = r.GetValue(Pronunciations) ?? p.Pronunciations,
            Batching = r.GetValue(Batching) ?? p.Batching,
            WordDropout = r.GetValue(WordDropout) ?? p.WordDropout,
            RareWordDropout = r.GetValue(RareWordDropout) ?? p.RareWordDropout,
            TrainFraction = r.GetValue(TrainFraction) ?? p.TrainFraction,
            Beam = r.GetValue(Beam) ?? p.Beam, Ensemble = r.GetValue(Ensemble) ?? p.Ensemble,
            LengthPenalty = r.GetValue(LengthPenalty) ?? p.LengthPenalty, Context = r.GetValue(Context) ?? p.Context,
            Patch = r.GetValue(Patch) ?? p.Patch, Stem = r.GetValue(Stem) ?? p.Stem,
            StemLayers = r.GetValue(StemLayers) ?? p.StemLayers, DecoderLayers = r.GetValue(DecoderLayers) ?? p.DecoderLayers,
            FeedForwardWidth = r.GetValue(FeedForwardWidth) ?? p.FeedForwardWidth,
            Activation = r.GetValue(Activation) ?? p.Activation,
            Erase = r.GetValue(Erase) ?? p.Erase, TestViews = r.GetValue(TestViews) ?? p.TestViews,
            Positions = r.GetValue(Positions) is { } positions ? ParsePositions(positions) : p.Positions,
            Attention = r.GetValue(Attention) is { } attention ? ParseAttention(attention) : p.Attention,
            Tokenizer = r.GetValue(Tokenizer) ?? p.Tokenizer, Vocab = r.GetValue(Vocab) ?? p.Vocab,
            NoAttention = r.GetValue(NoAttention) || p.NoAttention, PostLn = r.GetValue(PostLn) || p.PostLn,
            SideBySide = r.GetValue(SideBySide) ?? p.SideBySide,
            DetectAnomaly = r.GetValue(DetectAnomaly), Device = ParseDevice(r.GetValue(Device)),
            OnNonFinite = r.GetValue(OnNonFinite) switch
            {
                "stop" => NonFiniteAction.Stop,
                "skip" => NonFiniteAction.Skip,
                var other => throw new ArgumentException($"--on-nonfinite '{other}' is unknown; use stop or skip."),
            },
        }).Validate());
#pragma warning restore format
    }

    /// <summary>--device's value: cpu or cuda.</summary>
    internal static TrainDevice ParseDevice(string? text) => text switch
    {
        null or "cpu" => TrainDevice.Cpu,
        "cuda" => TrainDevice.Cuda,
        _ => throw new ArgumentException($"--device '{text}' is unknown; use cpu or cuda."),
    };

    static PositionalEncodingKind ParsePositions(string text) =>
        Enum.TryParse<PositionalEncodingKind>(text, ignoreCase: true, out var kind) && !int.TryParse(text, out _)
            ? kind
            : throw new ArgumentException($"--positions '{text}' is unknown; use learned, sinusoidal, rotary, alibi or none.");

    /// <summary>--attention's value as a pattern; the error names the option.</summary>
    static AttentionPattern ParseAttention(string text)
    {
        try { return AttentionPattern.Parse(text); }
        catch (ArgumentException e) { throw new ArgumentException($"--attention: {e.Message}", e); }
    }
}
