using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Distributed;
using AttentionSharp.IO;
using AttentionSharp.Nn;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Training;

/// <summary>
/// `attn train --ensemble N`: N runs of the task's model one after another, member k (from 0) with the seed plus k and an
/// N-th of the time limit, each an ordinary <see cref="TrainingRun"/> in RUNDIR/member-(k+1) (its checkpoints, log, loss
/// curve and its own test figures); then the members' best checkpoints decode together, the mean of their
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
    readonly Func<TrainOptions, TrainingRun> _memberRun;

    /// <param name="options">The run's options; <see cref="TrainOptions.Ensemble"/> is the number of members.</param>
    /// <param name="communicator">The ranks training together, as for <see cref="TrainingRun"/>.</param>
    /// <param name="output">Where rank 0 prints.</param>
    /// <param name="memberRun">Makes the run of one member from its options (the host sets its loss curve and devices).</param>
    public EnsembleRun(TrainOptions options, ICommunicator communicator, TextWriter output,
        Func<TrainOptions, TrainingRun> memberRun)
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
        Minutes = options.Minutes / options.Ensemble,
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
        string share = o.Minutes is { } m ? $"{(m / n).ToString("0.##", CultureInfo.InvariantCulture)} minutes each"
                                          : $"{o.Steps} steps each";
        _output.WriteLine($"Ensemble: {n} models trained one after another, {share}, seeds {o.Seed}–" +
                          $"{o.Seed + (ulong)(n - 1)}; they decode together. Run directory: {runDir}.");
        var members = new List<string>();
        int steps = 0;
        for (int k = 0; k < n; k++)
        {
            var member = Member(o, k);
            var dir = member.RunDirectory;
            members.Add(dir);
            _output.WriteLine();
            if (Finished(dir) is { } done)
            {
                steps += done;
                _output.WriteLine($"Member {k + 1} of {n}: trained already ({done} steps, in {dir}).");
                continue;
            }
            if (Directory.Exists(Path.Combine(dir, Checkpoint.LatestSubdirectory))) member = member with { Resume = dir };
            _output.WriteLine($"Member {k + 1} of {n}: seed {member.Seed}" + (member.Resume is null ? "" : ", resumed") + ".");
            var run = _memberRun(member);
            run.ContinueWith = runDir;
            int code = run.Execute();
            if (code != 0)
            {
                if (code == 130) _output.WriteLine($"Continue the whole ensemble with: attn train --resume {runDir}");
                return code;
            }
            steps += run.Steps;
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
                ["layers"] = o.Layers, ["decoder_layers"] = o.DecoderLayers, ["heads"] = o.Heads, ["width"] = o.Width,
                ["positions"] = o.Positions?.ToString(),
                ["attention"] = o.Attention?.ToString(),
            },
        };
        File.WriteAllText(path, manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
