using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.Distributed;
using AttentionSharp.Generation;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Training;

namespace AttentionSharp.Cli;

/// <summary>`attn train`: a GPT trained on the Brown corpus (fetched on first use) or on any UTF-8 text file.</summary>
static class TrainCommand
{
    public static Command Create()
    {
        var defaults = new TrainOptions();
        var task = new Option<string>("--task") { Description = $"What to train: {string.Join(", ", new[] { "gpt" }.Concat(Tasks.TaskRegistry.Train.Keys))} (gpt: a causal language model on text); each task has its own defaults for the options not given.", DefaultValueFactory = _ => "gpt" };
        var modelKind = new Option<string>("--model") { Description = "For tasks: transformer, lstm, gru or rnn.", DefaultValueFactory = _ => "transformer" };
        var data = new Option<string?>("--data") { Description = "A UTF-8 text file to train on instead of the Brown corpus (last 10% for validation)." };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => DefaultSteps };
        var minutes = new Option<double?>("--minutes") { Description = "Stop after this many minutes; the learning-rate schedule is fitted to the time (0 = no limit).", DefaultValueFactory = _ => DefaultMinutes };
        var output = new Option<string>("--out") { Description = "Run directory: checkpoint/, log.jsonl and loss.png (tasks: runs/TASK).", DefaultValueFactory = _ => Path.Combine("runs", "gpt") };
        var resume = new Option<string?>("--resume") { Description = "Continue training from this checkpoint directory." };
        var seed = new Option<ulong>("--seed") { Description = "Seed of everything random.", DefaultValueFactory = _ => defaults.Seed };
        var layers = new Option<int>("--layers") { Description = "L: Transformer blocks.", DefaultValueFactory = _ => 4 };
        var heads = new Option<int>("--heads") { Description = "NH: attention heads.", DefaultValueFactory = _ => 4 };
        var width = new Option<int>("--width") { Description = "C: model width (d_model).", DefaultValueFactory = _ => 128 };
        var context = new Option<int>("--context") { Description = "T: context length in tokens.", DefaultValueFactory = _ => 128 };
        var positions = new Option<string>("--positions") { Description = "Positional encoding: learned (GPT-2), sinusoidal, rotary, alibi or none.", DefaultValueFactory = _ => "learned" };
        var dropout = new Option<float>("--dropout") { Description = "Dropout probability.", DefaultValueFactory = _ => 0f };
        var batch = new Option<int>("--batch") { Description = "B: sequences per micro-batch (per rank under MPI: the global batch is ranks × B).", DefaultValueFactory = _ => defaults.Batch };
        var accumulate = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step.", DefaultValueFactory = _ => 1 };
        var lr = new Option<float>("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => defaults.LearningRate };
        var warmup = new Option<int>("--warmup") { Description = "Warmup steps.", DefaultValueFactory = _ => defaults.WarmupSteps };
        var weightDecay = new Option<float>("--weight-decay") { Description = "AdamW weight decay (matrices only).", DefaultValueFactory = _ => defaults.WeightDecay };
        var evalInterval = new Option<int>("--eval-interval") { Description = "Steps between validation passes.", DefaultValueFactory = _ => defaults.EvalInterval };
        var tokenizer = new Option<string>("--tokenizer") { Description = "char, bpe, or a tiktoken encoding (cl100k_base, o200k_base).", DefaultValueFactory = _ => "char" };
        var vocab = new Option<int>("--vocab") { Description = "Vocabulary size for --tokenizer bpe.", DefaultValueFactory = _ => 512 };
        var init = new Option<string?>("--init") { Description = "Tasks: start from this checkpoint's weights (--task pos --model transformer: an mlm checkpoint)." };
        var attention = new Option<string>("--attention") { Description = "Attention: full, sliding:W (a causal window of W tokens), sliding:W:G1,G2 (plus global positions) or linear (elu+1 features).", DefaultValueFactory = _ => "full" };
        var noAttention = new Option<bool>("--no-attention") { Description = "For --task g2p with --model lstm, gru or rnn: no attention, the encoder's final state is all the decoder sees." };
        var onNonFinite = new Option<string>("--on-nonfinite") { Description = "When the loss or a gradient is NaN or Inf: stop (keep the last good checkpoint) or skip the step.", DefaultValueFactory = _ => "stop" };
        var detectAnomaly = new Option<bool>("--detect-anomaly") { Description = "Check every operation's output and name the first that is NaN or Inf (slower)." };
        var cache = new Option<string?>("--cache") { Description = $"Where fetched data is kept (default: ${DataCache.EnvironmentVariable}, else ~/.cache/attentionsharp)." };
        var distributed = new Option<bool>("--distributed") { Description = "Require MPI (found by itself under mpirun): data-parallel training, --batch rows per rank." };

        var command = new Command("train", "Train a GPT on the Brown corpus (fetched on first use) or on --data FILE, then print samples.")
        {
            task, data, steps, minutes, output, resume, seed, layers, heads, width, context, dropout, batch, accumulate, lr, warmup,
            weightDecay, evalInterval, tokenizer, vocab, cache, modelKind, positions, distributed, init, noAttention, onNonFinite, detectAnomaly,
        };
        command.Options.Add(attention);
        command.SetAction(r =>
        {
            ICommunicator? communicator = null;
            int code = CliErrors.Run(() =>
            {
                communicator = DistributedLaunch.Start(r.GetValue(distributed));
                return Train(r, communicator);
            });
            // A rank that fails alone would leave the others waiting in a collective: end the whole job.
            if (code != 0 && communicator is { Size: > 1 }) communicator.Abort(code);
            communicator?.Dispose();
            return code;
        });
        return command;

        int Train(ParseResult r, ICommunicator communicator)
        {
            var taskName = r.GetValue(task)!;
            if (taskName != "gpt")
            {
                if (communicator.Size > 1)
                    throw new ArgumentException($"--task {taskName} trains in one process; data-parallel training over MPI is for --task gpt.");
                if (!Tasks.TaskRegistry.Train.TryGetValue(taskName, out var trainTask))
                    throw new ArgumentException($"--task '{taskName}' is unknown; available: {string.Join(", ", new[] { "gpt" }.Concat(Tasks.TaskRegistry.Train.Keys))}.");
                var given = command.Options.Where(option => r.GetResult(option) is { Implicit: false }).Select(option => option.Name).ToHashSet(StringComparer.Ordinal);
                return trainTask(new Tasks.TaskOptions
                {
                    Data = r.GetValue(data), Out = given.Contains(output.Name) ? r.GetValue(output)! : Path.Combine("runs", taskName), Cache = r.GetValue(cache), Model = r.GetValue(modelKind)!,
                    Steps = r.GetValue(steps), Minutes = r.GetValue(minutes) is > 0 and var taskLimit ? taskLimit : null, Seed = r.GetValue(seed),
                    Layers = r.GetValue(layers), Heads = r.GetValue(heads), Width = r.GetValue(width), Dropout = r.GetValue(dropout),
                    Batch = r.GetValue(batch), LearningRate = r.GetValue(lr), Warmup = r.GetValue(warmup), WeightDecay = r.GetValue(weightDecay),
                    EvalInterval = r.GetValue(evalInterval), Init = r.GetValue(init), Resume = r.GetValue(resume),
                    NoAttention = r.GetValue(noAttention), Given = given,
                });
            }
            var options = new TrainOptions
            {
                Steps = r.GetValue(steps), Minutes = r.GetValue(minutes) is > 0 and var limit ? limit : null, Batch = r.GetValue(batch), GradAccumulation = r.GetValue(accumulate),
                LearningRate = r.GetValue(lr), WarmupSteps = r.GetValue(warmup), WeightDecay = r.GetValue(weightDecay),
                EvalInterval = r.GetValue(evalInterval), Seed = r.GetValue(seed), DetectAnomaly = r.GetValue(detectAnomaly),
                OnNonFinite = r.GetValue(onNonFinite) switch
                {
                    "stop" => NonFiniteAction.Stop,
                    "skip" => NonFiniteAction.Skip,
                    var other => throw new ArgumentException($"--on-nonfinite '{other}' is unknown; use stop or skip."),
                },
            }.Validate();
            if (communicator.Size > 1 && Environment.GetEnvironmentVariable("ATTN_THREADS") is null)
                Kernels.Parallel.ThreadCount = Math.Max(1, Environment.ProcessorCount / DistributedLaunch.LocalRanks); // ranks on one machine share its cores
            var run = new TrainRun(r.GetValue(data), r.GetValue(output)!, r.GetValue(resume), r.GetValue(cache), r.GetValue(tokenizer)!, r.GetValue(vocab), communicator);
            return run.Execute(options, new GptConfig
            {
                Layers = r.GetValue(layers), Heads = r.GetValue(heads), Width = r.GetValue(width),
                ContextLength = r.GetValue(context), Dropout = r.GetValue(dropout), VocabSize = 1,
                PositionalEncoding = Enum.TryParse<Nn.PositionalEncodingKind>(r.GetValue(positions), ignoreCase: true, out var kind) && !int.TryParse(r.GetValue(positions), out _)
                    ? kind : throw new ArgumentException($"--positions '{r.GetValue(positions)}' is unknown; use learned, sinusoidal, rotary, alibi or none."),
                Attention = ParseAttention(r.GetValue(attention)!),
            });
        }
    }

    /// <summary>--attention's value as a pattern; the error names the option.</summary>
    static Nn.AttentionPattern ParseAttention(string text)
    {
        try { return Nn.AttentionPattern.Parse(text); }
        catch (ArgumentException e) { throw new ArgumentException($"--attention: {e.Message}", e); }
    }

    // The default run: measured to finish within 10 minutes on two cores (see README).
    public const int DefaultSteps = 2000;
    public const double DefaultMinutes = 8.5;
}

/// <summary>One training run, from data to samples.</summary>
/// <remarks>
/// Under MPI every rank runs this with the same arguments; rank 0 alone fetches data first, prints, logs and writes
/// checkpoints and the loss curve, the other ranks stay silent (errors still go to stderr).
/// </remarks>
sealed class TrainRun(string? dataFile, string outDir, string? resumeDir, string? cacheDir, string tokenizerName, int vocabSize, ICommunicator communicator)
{
    bool Leader => communicator.Rank == 0;

    public int Execute(TrainOptions options, GptConfig shape)
    {
        var total = Stopwatch.StartNew();
        if (!Leader) Console.SetOut(TextWriter.Null);
        if (Leader) CheckWritable(outDir);
        var (trainText, validText, source) = LoadTextLeaderFirst();

        ITokenizer tokenizer;
        JsonObject? resumedState = null;
        Checkpoint.Contents? resumed = null;
        if (resumeDir is not null)
        {
            resumed = Checkpoint.ReadContents(resumeDir, preferBest: false);
            tokenizer = ITokenizer.FromJson(resumed.TokenizerJson, $"the tokenizer of checkpoint '{resumeDir}'");
            shape = GptConfig.FromJson(resumed.Config);
            resumedState = resumed.State;
            Console.WriteLine($"Resuming from {resumeDir} (step {resumedState["step"]}).");
        }
        else tokenizer = BuildTokenizer(trainText);

        var trainTokens = tokenizer.Encode(trainText);
        var validTokens = tokenizer.Encode(validText);
        var config = (resumed is null ? shape with { VocabSize = tokenizer.VocabSize } : shape).Validate();
        // Global batches of ranks × B rows, drawn as one process would; the trainer gives each rank its rows.
        int globalBatch = options.Batch * communicator.Size;
        var trainBatches = new TokenBatcher(trainTokens, globalBatch, config.ContextLength, "training text");
        var validBatches = new TokenBatcher(validTokens, globalBatch, config.ContextLength, "validation text");
        double tokensPerChar = (double)validTokens.Length / Math.Max(1, validText.Length);

        var initRng = new Generator(options.Seed);
        var model = new Gpt(config, initRng);
        var dataRng = new Generator(options.Seed ^ 0x5DEECE66DUL);
        var trainer = new LanguageModelTrainer(model, options, communicator);
        float bestValid = float.PositiveInfinity;
        if (resumed is not null)
        {
            Checkpoint.LoadWeights(resumeDir!, model, preferBest: false);
            TrainerState.Restore(resumedState!, resumed, model, trainer, dataRng, ref bestValid);
            DataParallel.BroadcastParameters(communicator, model.Parameters()); // any number of ranks resumes rank 0's weights
        }

        Console.WriteLine($"Data: {source}: {trainText.Length:N0} training and {validText.Length:N0} validation characters; " +
                          $"tokenizer {TokenizerName(tokenizer)} with {tokenizer.VocabSize} ids.");
        Console.WriteLine($"Model: GPT, {config.Layers} layers, {config.Heads} heads, width {config.Width}, context {config.ContextLength}, {config.PositionalEncoding.ToString().ToLowerInvariant()} positions, " +
                          $"{model.ParameterCount():N0} parameters. Threads: {Kernels.Parallel.ThreadCount}" +
                          (communicator.Size > 1 ? $" per rank, {communicator.Size} ranks (MPI)." : "."));
        if (config.Attention.Kind != Nn.AttentionKind.Full) Console.WriteLine($"Attention: {config.Attention}.");
        Console.WriteLine($"Training: {options.Steps} steps of {(communicator.Size > 1 ? $"{communicator.Size} ranks × " : "")}{options.Batch}×{config.ContextLength} tokens" +
                          (options.Minutes is { } m ? $", at most {m} minutes" : "") + $"; checkpoints in {outDir}.");

        if (Leader) Directory.CreateDirectory(outDir);
        var checkpointDir = Path.Combine(outDir, Checkpoint.LatestSubdirectory);
        var bestDir = Path.Combine(outDir, Checkpoint.BestSubdirectory);
        var trainCurve = new List<(int, float)>();
        var validCurve = new List<(int, float)>();
        // On resume the log keeps what was written up to the checkpoint's step; later lines (written before a crash) are
        // dropped because those steps run again. Only rank 0 writes it.
        using var log = !Leader ? null
                      : resumed is null ? new MetricsLog(Path.Combine(outDir, "log.jsonl"), append: false)
                      : MetricsLog.ResumeAt(Path.Combine(outDir, "log.jsonl"), trainer.Step);
        var progress = new ProgressLine(Console.Out, Console.IsOutputRedirected);
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        int savedStep = resumed is null ? -1 : trainer.Step;
        // mpirun ends the whole job (SIGTERM, then SIGKILL) when any rank fails: say so on the survivors' side too.
        using var onLauncherStop = communicator.Size > 1 ? System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM,
            _ => Console.Error.WriteLine($"error: rank {communicator.Rank} of {communicator.Size} was stopped by the MPI launcher, which ends the job when any rank fails " +
                                         "(its report names the rank, as 'process rank R' or 'Process name: [[job,1],R]'). " +
                                         (savedStep >= 0 ? $"The last checkpoint, step {savedStep}, is in {checkpointDir}; continue with any number of ranks: attn train --resume {outDir} --out {outDir}"
                                                         : "No checkpoint was written yet."))) : null;

        var x = new int[globalBatch * config.ContextLength];
        var y = new int[x.Length];
        (int[], int[]) NextBatch() { trainBatches.NextRandom(dataRng, x, y); return (x, y); }
        IEnumerable<(int[], int[])> ValidationBatches(int? limit) =>
            validBatches.Sequential().Take(limit ?? int.MaxValue).Select(b => (b.X, b.Y));

        void Save(string dir)
        {
            if (Leader)
                Checkpoint.Save(dir, model, new Checkpoint.Contents(config.ToJson(), tokenizer.ToJson(),
                    TrainerState.Capture(model, trainer, dataRng, bestValid, options), TrainerState.Moments(model, trainer)));
            savedStep = trainer.Step;
        }

        try
        {
            trainer.Run(NextBatch, config.ContextLength,
                report =>
                {
                    if (report.Skipped is { } skipped) progress.Line($"{skipped}; step skipped.");
                    progress.Update(report);
                    trainCurve.Add((report.Step, report.Loss));
                    var record = new JsonObject { ["step"] = report.Step, ["loss"] = Finite(report.Loss), ["lr"] = report.LearningRate, ["grad_norm"] = Finite(report.GradNorm), ["tokens_per_s"] = Math.Round(report.TokensPerSecond), ["elapsed_s"] = Math.Round(report.Elapsed.TotalSeconds, 2) };
                    if (report.Skipped is not null) record["skipped"] = report.Skipped;
                    if (communicator.Size > 1)
                    {
                        record["ranks"] = communicator.Size;
                        record["allreduce_s"] = Math.Round(trainer.AllReduceTime.TotalSeconds, 3);
                        record["train_s"] = Math.Round(trainer.StepTime.TotalSeconds, 3);
                    }
                    log?.Write(record);
                },
                step =>
                {
                    float valid = trainer.Evaluate(ValidationBatches(options.EvalBatches), config.ContextLength);
                    double bpc = valid * tokensPerChar / Math.Log(2);
                    validCurve.Add((step, valid));
                    bool best = valid < bestValid;
                    if (best) bestValid = valid;
                    progress.Line($"step {step}: validation loss {valid:F4}, {bpc:F3} bits/char{(best ? " (best so far)" : "")}");
                    log?.Write(new JsonObject { ["step"] = step, ["val_loss"] = valid, ["val_bits_per_char"] = bpc });
                    Save(checkpointDir);
                    if (best) Save(bestDir);
                },
                cancel.Token);
        }
        finally { Console.CancelKeyPress -= onCancel; }

        static float? Finite(float value) => float.IsFinite(value) ? value : null; // JSON has no NaN

        var curvePath = Path.Combine(outDir, "loss.png");
        if (Leader && trainCurve.Count > 0) Visualization.LossCurve.Save(curvePath, trainCurve, validCurve, $"GPT on {source}");
        if (cancel.IsCancellationRequested)
        {
            Save(checkpointDir);
            progress.Line($"Interrupted at step {trainer.Step}; checkpoint saved to {checkpointDir}. Continue with: attn train --resume {outDir} --out {outDir}");
            return 130;
        }

        if (communicator.Size > 1)
            Console.WriteLine($"All-reduce: {trainer.AllReduceTime.TotalSeconds:F1} s of {trainer.StepTime.TotalSeconds:F1} s in training steps " +
                              $"({100 * trainer.AllReduceTime / trainer.StepTime:F1}%, waiting for the slowest rank included).");

        // The full validation set with the best weights (rank 0's, sent to all ranks), then samples from them.
        if (Leader) Checkpoint.LoadWeights(bestDir, model);
        DataParallel.BroadcastParameters(communicator, model.Parameters());
        float finalLoss = trainer.Evaluate(ValidationBatches(null), config.ContextLength);
        if (!Leader) return 0;
        double finalBpc = finalLoss * tokensPerChar / Math.Log(2);
        log!.Write(new JsonObject { ["final_val_loss"] = finalLoss, ["final_val_bits_per_char"] = finalBpc });
        Console.WriteLine();
        Console.WriteLine($"Validation (all {validTokens.Length:N0} tokens, best checkpoint): loss {finalLoss:F4}, {finalBpc:F3} bits per character.");
        Console.WriteLine("Samples (temperature 0.8):");
        var sampleRng = new Generator(options.Seed + 1);
        foreach (var prompt in new[] { "The ", "He said that ", "In the year " })
        {
            var ids = tokenizer.Encode(prompt);
            var outIds = TextGenerator.Generate(model, ids, 240, new SamplingOptions { Temperature = 0.8f }, sampleRng);
            Console.WriteLine($"  » {tokenizer.Decode(outIds).ReplaceLineEndings(" ")}");
        }
        Console.WriteLine($"Checkpoints: {Path.GetFullPath(bestDir)} (best), {Path.GetFullPath(checkpointDir)} (latest)");
        Console.WriteLine($"Loss curve: {Path.GetFullPath(curvePath)}   Log: {Path.GetFullPath(Path.Combine(outDir, "log.jsonl"))}");
        Console.WriteLine($"Time: {total.Elapsed:m\\:ss}. Try: attn sample --checkpoint {outDir} --prompt \"The jury said\"");
        return 0;
    }

    /// <summary>Rank 0 fetches (or finds) the data before the others read it, so ranks never race on the cache.</summary>
    (string Train, string Valid, string Source) LoadTextLeaderFirst()
    {
        if (communicator.Size == 1) return LoadText();
        var signal = new int[1];
        var text = Leader ? LoadText() : default;
        communicator.Broadcast(signal, root: 0);
        return Leader ? text : LoadText();
    }

    (string Train, string Valid, string Source) LoadText()
    {
        if (dataFile is not null)
        {
            var split = TextFile.Split(TextFile.Read(dataFile));
            return (split.Train, split.Validation, dataFile);
        }
        var corpus = BrownCorpus.Fetch(DataCache.Resolve(cacheDir), Console.Out);
        var docs = corpus.Split();
        return (BrownCorpus.PlainText(docs.Train), BrownCorpus.PlainText(docs.Validation), "the Brown corpus");
    }

    ITokenizer BuildTokenizer(string trainText) => tokenizerName switch
    {
        "char" => CharTokenizer.Train(trainText),
        "bpe" => ByteBpeTokenizer.Train(trainText, vocabSize),
        _ when TiktokenTokenizer.SupportedEncodings.Contains(tokenizerName) => new TiktokenTokenizer(tokenizerName),
        _ => throw new ArgumentException($"--tokenizer '{tokenizerName}' is unknown; use char, bpe, or one of {string.Join(", ", TiktokenTokenizer.SupportedEncodings)}."),
    };

    static string TokenizerName(ITokenizer t) => t switch
    {
        CharTokenizer => "characters",
        ByteBpeTokenizer => "byte-level BPE",
        TiktokenTokenizer tk => tk.Encoding,
        _ => t.GetType().Name,
    };

    static void CheckWritable(string dir)
    {
        var full = Path.GetFullPath(dir);
        try
        {
            var parent = Path.GetDirectoryName(full)!;
            Directory.CreateDirectory(parent);
            var probe = Path.Combine(parent, $".attn-write-test-{Environment.ProcessId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"The output directory '{dir}' cannot be written: {e.Message}", e);
        }
    }
}
