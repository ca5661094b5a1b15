using System.Diagnostics;
using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Distributed;
using AttentionSharp.IO;
using AttentionSharp.Nn;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Training;

/// <summary>
/// `attn train --ensemble N`: N runs of the task's model, member k (from 0) with the seed plus k, each an ordinary
/// <see cref="TrainingRun"/> in RUNDIR/member-(k+1) (its checkpoints, log, loss curve and its own test figures): one
/// after another with an N-th of the time limit each, or with <see cref="TrainOptions.SideBySide"/> all at once, each on
/// an N-th of the threads for the whole time limit (its lines prefixed with its number); then the members' best
/// checkpoints decode together, the mean of their
/// distributions (<see cref="Models.Seq2SeqEnsemble"/>), and RUNDIR/best holds the ensemble as one checkpoint that
/// eval, predict and viz read like any other. RUNDIR/ensemble.json keeps the run's options, so that --resume RUNDIR
/// continues it: finished members are kept, an interrupted one resumes from its latest checkpoint, the rest start.
/// </summary>
public sealed class EnsembleRun
{
    /// <summary>The most members an ensemble may have.</summary>
    public const int MaxMembers = 16;

    /// <summary>The file in an ensemble's run directory that keeps its options.</summary>
    public const string ManifestFile = "ensemble.json";

    readonly TrainOptions _options;
    readonly ICommunicator _communicator;
    readonly TextWriter _output;
    readonly Func<TrainOptions, TextWriter, TrainingRun> _memberRun;

    /// <param name="options">The run's options; <see cref="TrainOptions.Ensemble"/> is the number of members.</param>
    /// <param name="communicator">The ranks training together, as for <see cref="TrainingRun"/>.</param>
    /// <param name="output">Where rank 0 prints.</param>
    /// <param name="memberRun">
    /// Makes the run of one member from its options and where it prints (the host sets its loss curve and devices).
    /// </param>
    public EnsembleRun(TrainOptions options, ICommunicator communicator, TextWriter output,
        Func<TrainOptions, TextWriter, TrainingRun> memberRun)
    {
        _options = TaskPresets.Refuse(options.Validate());
        if (_options.Ensemble is not > 1)
            throw new ArgumentException(
                $"An ensemble has at least 2 members; --ensemble is {_options.Ensemble?.ToString() ?? "not set"}.");
        if (_options.Resume is { } resume)
        {
            var manifest = ReadManifest(resume) ?? throw new ArgumentException(
                $"--resume '{resume}' is not an ensemble's run directory (it has no {ManifestFile}); --ensemble " +
                $"{_options.Ensemble} starts a new ensemble without --resume.");
            if (manifest["members"] is not JsonValue v || !v.TryGetValue<int>(out int members) || members != _options.Ensemble)
                throw new ArgumentException(
                    $"--ensemble {_options.Ensemble} does not fit the run in '{resume}', an ensemble of " +
                    $"{manifest["members"]?.ToJsonString() ?? "?"} (leave --ensemble out to continue it).");
        }
        if (_options.SideBySide && communicator.Size > 1)
            throw new ArgumentException($"--side-by-side trains the members in one process; this run has {communicator.Size} " +
                                        "MPI ranks (run it without mpirun, or train the members one after another).");
        _communicator = communicator;
        _output = communicator.Rank == 0 ? output : TextWriter.Null;
        _memberRun = memberRun;
    }

    /// <summary>
    /// After <see cref="Execute"/> has finished: the ensemble's closing record (as <see cref="TrainingRun.Closing"/>).
    /// </summary>
    public JsonObject? Closing { get; private set; }

    bool Leader => _communicator.Rank == 0;

    /// <summary>The options of member <paramref name="k"/> (from 0) of the ensemble <paramref name="options"/> set out.</summary>
    public static TrainOptions Member(TrainOptions options, int k) => options with
    {
        Ensemble = 1,
        Seed = options.Seed + (ulong)k,
        Minutes = options.SideBySide ? options.Minutes : options.Minutes / options.Ensemble,
        Out = MemberDirectory(options.RunDirectory, k),
        Resume = null,
    };

    /// <summary>Where member <paramref name="k"/> (from 0) of the ensemble in <paramref name="runDir"/> trains.</summary>
    public static string MemberDirectory(string runDir, int k) => Path.Combine(runDir, $"member-{k + 1}");

    /// <summary>
    /// The manifest of the ensemble run in <paramref name="runDir"/>, or null when the directory holds none (it is not an
    /// ensemble's run directory).
    /// </summary>
    public static JsonObject? ReadManifest(string runDir)
    {
        var path = Path.Combine(runDir, ManifestFile);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                   ?? throw new CheckpointException($"{path} is not a JSON object.");
        }
        catch (JsonException e) { throw new CheckpointException($"{path} is not valid JSON: {e.Message}"); }
    }

    /// <summary>
    /// The options an ensemble's manifest kept, over the task's <paramref name="preset"/>: what <see cref="TrainOptions.ToJson"/>
    /// keeps and the model's shape, which members not yet started need (a single run's shape is in its checkpoint).
    /// </summary>
    public static TrainOptions Restore(JsonObject manifest, TrainOptions preset, string runDir)
    {
        if (manifest["options"] is not JsonObject kept || manifest["shape"] is not JsonObject shape)
            throw new CheckpointException($"{Path.Combine(runDir, ManifestFile)} has no \"options\" and \"shape\" objects.");
        int? Int(string name) => shape[name] is JsonValue v && v.TryGetValue<int>(out int i) ? i : null;
        string? Text(string name) => shape[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        return TrainOptions.FromJson(kept, preset) with
        {
            Layers = Int("layers"),
            DecoderLayers = Int("decoder_layers"),
            FeedForwardWidth = Int("ffn_width"),
            Activation = Text("activation"),
            Heads = Int("heads"),
            Width = Int("width"),
            Positions = Text("positions") is { } positions ? Enum.Parse<PositionalEncodingKind>(positions) : null,
            Attention = Text("attention") is { } attention ? AttentionPattern.Parse(attention) : null,
        };
    }

    /// <summary>Trains the members not yet trained, then scores the ensemble; returns 0, or 130 when interrupted.</summary>
    public int Execute()
    {
        var total = Stopwatch.StartNew();
        var o = _options;
        int n = o.Ensemble!.Value;
        var runDir = o.RunDirectory;
        if (o.Resume is null && Leader)
        {
            // A new run replaces what an earlier run left in the directory, as a single run does; the members of an
            // earlier ensemble must not count as trained.
            for (int k = 0; Directory.Exists(MemberDirectory(runDir, k)); k++)
                Directory.Delete(MemberDirectory(runDir, k), recursive: true);
            Directory.CreateDirectory(runDir);
            WriteManifest(Path.Combine(runDir, ManifestFile), o);
        }
        double? minutes = o.Minutes is { } m ? o.SideBySide ? m : m / n : null;
        string share = minutes is { } each ? $"{each.ToString("0.##", CultureInfo.InvariantCulture)} minutes each"
                                           : $"{o.Steps} steps each";
        _output.WriteLine($"Ensemble: {n} models trained {(o.SideBySide ? "side by side" : "one after another")}, {share}, " +
                          $"seeds {o.Seed}–{o.Seed + (ulong)(n - 1)}; they decode together. Run directory: {runDir}.");
        var members = new List<string>();
        var pending = new List<(int K, TrainOptions Options)>();
        int steps = 0;
        for (int k = 0; k < n; k++)
        {
            var member = Member(o, k);
            var dir = member.RunDirectory;
            members.Add(dir);
            if (Finished(dir) is { } done)
            {
                steps += done;
                _output.WriteLine();
                _output.WriteLine($"Member {k + 1} of {n}: trained already ({done} steps, in {dir}).");
                continue;
            }
            if (Directory.Exists(Path.Combine(dir, Checkpoint.LatestSubdirectory))) member = member with { Resume = dir };
            pending.Add((k, member));
        }
        var (code, trained) = o.SideBySide ? TrainSideBySide(pending, n) : TrainInTurn(pending, n);
        steps += trained;
        if (code != 0)
        {
            if (code == 130) _output.WriteLine($"Continue the whole ensemble with: attn train --resume {runDir}");
            return code;
        }

        _output.WriteLine();
        var task = TrainingTasks.Ensemble(o, members, _communicator, _output);
        _output.WriteLine($"Model: {task.Title}.");
        var final = task.Evaluate(full: true);
        var closing = new JsonObject { ["ensemble"] = n, ["steps"] = steps, ["final_val_loss"] = final.Loss };
        foreach (var (key, value) in final.Record) closing["final_" + key] = value?.DeepClone();
        _output.WriteLine($"Final pass, the ensemble of the members' best checkpoints: {final.Summary}.");
        task.Finish(_output, closing);
        var bestDir = Path.Combine(runDir, Checkpoint.BestSubdirectory);
        var logPath = Path.Combine(runDir, "log.jsonl");
        if (Leader)
        {
            var state = new JsonObject
            {
                ["step"] = steps, ["options"] = o.ToJson(),
                ["members"] = new JsonArray([.. members.Select(d => (JsonNode)Path.GetFileName(d))]),
            };
            Checkpoint.Save(bestDir, task.Model, new Checkpoint.Contents(task.Config, task.TokenizerJson, state, null));
            using var log = new MetricsLog(logPath, append: false);
            log.Write(closing);
        }
        Closing = closing;
        _output.WriteLine($"Checkpoint: {Path.GetFullPath(bestDir)} (the ensemble; each member's runs in " +
                          $"{Path.GetFullPath(members[0])} …)   Log: {Path.GetFullPath(logPath)}");
        _output.WriteLine($"Time: {TrainingRun.Clock(total.Elapsed)}. Try: {task.Try(runDir)}");
        return 0;
    }

    static string Starting(int k, int n, TrainOptions member) =>
        $"Member {k + 1} of {n}: seed {member.Seed}" + (member.Resume is null ? "" : ", resumed") + ".";

    /// <summary>Trains the members one after another; returns the first exit code other than 0 and the steps taken.</summary>
    (int Code, int Steps) TrainInTurn(List<(int K, TrainOptions Options)> pending, int n)
    {
        int steps = 0;
        foreach (var (k, member) in pending)
        {
            _output.WriteLine();
            _output.WriteLine(Starting(k, n, member));
            var run = _memberRun(member, _output);
            run.ContinueWith = _options.RunDirectory;
            int code = run.Execute();
            if (code != 0) return (code, steps);
            steps += run.Steps;
        }
        return (0, steps);
    }

    /// <summary>
    /// Trains the members at the same time, each on its own thread with an equal share of the kernel threads (at least
    /// one), each line it prints prefixed with its number. A member that fails ends the others (they save their latest
    /// checkpoints, as on Ctrl-C) and its error is rethrown; otherwise returns 130 when any was interrupted.
    /// </summary>
    (int Code, int Steps) TrainSideBySide(List<(int K, TrainOptions Options)> pending, int n)
    {
        if (pending.Count == 0) return (0, 0);
        int threads = Kernels.Parallel.ThreadCount, each = Math.Max(1, threads / pending.Count);
        var output = TextWriter.Synchronized(_output);
        output.WriteLine();
        output.WriteLine($"Training {pending.Count} member{(pending.Count == 1 ? "" : "s")} at once, {each} " +
                         $"thread{(each == 1 ? "" : "s")} each; each line starts with its member's number.");
        using var stop = new CancellationTokenSource();
        var runs = pending.Select(p =>
        {
            var writer = new PrefixedWriter(output, $"[{p.K + 1}] ");
            writer.WriteLine(Starting(p.K, n, p.Options));
            var run = _memberRun(p.Options, writer);
            run.ContinueWith = _options.RunDirectory;
            var linked = CancellationTokenSource.CreateLinkedTokenSource(run.Cancellation, stop.Token);
            run.Cancellation = linked.Token;                            // the host's token, or another member's failure
            return (Run: run, Stop: linked, Output: writer);
        }).ToList();
        var codes = new int[runs.Count];
        var errors = new ExceptionDispatchInfo?[runs.Count];
        var workers = runs.Select((member, i) => new Thread(() => TrainMember(member.Run, i))
        {
            Name = $"ensemble member {pending[i].K + 1}",
        }).ToList();
        foreach (var worker in workers) worker.Start();
        foreach (var worker in workers) worker.Join();
        foreach (var member in runs)
        {
            member.Output.Flush();                                      // a last line without its newline
            member.Stop.Dispose();
        }
        foreach (var error in errors) error?.Throw();
        return (codes.FirstOrDefault(c => c != 0), runs.Sum(r => r.Run.Steps));

        void TrainMember(TrainingRun run, int i)
        {
            try
            {
                using (Kernels.Parallel.Limit(each)) codes[i] = run.Execute();
            }
            catch (Exception e)
            {
                errors[i] = ExceptionDispatchInfo.Capture(e);
                stop.Cancel();                                          // the others save their latest and stop
            }
        }
    }

    /// <summary>
    /// The steps of the member trained in <paramref name="dir"/> when its run finished (its log ends with the closing
    /// record), else null.
    /// </summary>
    static int? Finished(string dir)
    {
        var log = Path.Combine(dir, "log.jsonl");
        if (!File.Exists(log) || !Directory.Exists(Path.Combine(dir, Checkpoint.BestSubdirectory))) return null;
        var last = File.ReadLines(log).LastOrDefault(l => l.Length > 0);
        JsonObject? closing;
        try { closing = last is null ? null : JsonNode.Parse(last) as JsonObject; }
        catch (JsonException) { return null; }
        if (closing is null || !closing.ContainsKey("final_val_loss")) return null;
        var state = Checkpoint.ReadContents(dir, preferBest: false).State;
        return state["step"] is JsonValue v && v.TryGetValue<int>(out int step) ? step : 0;
    }

    static void WriteManifest(string path, TrainOptions o)
    {
        var manifest = new JsonObject
        {
            ["members"] = o.Ensemble, ["options"] = o.ToJson(),
            ["shape"] = new JsonObject
            {
                ["layers"] = o.Layers, ["decoder_layers"] = o.DecoderLayers,
                ["ffn_width"] = o.FeedForwardWidth, ["activation"] = o.Activation, ["heads"] = o.Heads, ["width"] = o.Width,
                ["positions"] = o.Positions?.ToString(),
                ["attention"] = o.Attention?.ToString(),
            },
        };
        File.WriteAllText(path, manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
