using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttentionSharp.Experiments;

/// <summary>The comparison's results as DIR/report.md, DIR/results.json and PNG plots beside them.</summary>
public static class ComparisonReport
{
    static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>
    /// Writes report.md, results.json and a plot per experiment that has results (the parallelism experiment alone
    /// leaves the others empty); <paramref name="gpuSpeed"/> adds the parallelism experiment on a GPU.
    /// </summary>
    public static void Write(string dir, ComparisonOptions options, string machine, IReadOnlyList<RecallResult> recall,
        IReadOnlyList<SpeedResult> speed, IReadOnlyList<GradientResult> gradients,
        IReadOnlyList<BottleneckResult>? bottleneck = null, GpuSpeedResults? gpuSpeed = null,
        IReadOnlyList<CrossoverResult>? crossover = null)
    {
        bottleneck ??= [];
        crossover ??= [];
        Directory.CreateDirectory(dir);
        if (crossover.Count > 0)
        {
            PlotCrossover(Path.Combine(dir, "crossover-time.png"), m => Crossover.TimeCurve(crossover, m, options),
                r => r.Minutes, "POS tagging: test accuracy against training time", "time limit (minutes, log scale)",
                m => m.ToString("0.##", Invariant));
            PlotCrossover(Path.Combine(dir, "crossover-data.png"), m => Crossover.DataCurve(crossover, m, options),
                r => r.TrainingWords,
                Inv($"POS tagging: test accuracy against training data ({options.CrossoverFractionMinutes:0.##} min each)"),
                "training words (log scale)", w => w.ToString("N0", Invariant));
        }
        if (bottleneck.Count > 0) PlotBottleneck(Path.Combine(dir, "bottleneck.png"), bottleneck);
        if (recall.Count > 0) PlotRecall(Path.Combine(dir, "recall.png"), recall);
        if (speed.Count > 0)
            PlotSpeed(Path.Combine(dir, "speed.png"), speed, "Training throughput against sequence length (batch 8)");
        if (gpuSpeed is not null)
            PlotSpeed(Path.Combine(dir, "speed-gpu.png"), gpuSpeed.Results, $"On the GPU ({gpuSpeed.Device}), batch 8");
        if (gradients.Count > 0) PlotGradients(Path.Combine(dir, "gradients.png"), gradients);
        var json = Json(options, machine, recall, speed, gradients, bottleneck);
        json["crossover"] = new JsonArray(crossover.Select(r => (JsonNode)new JsonObject
        {
            ["model"] = r.Model, ["minutes"] = r.Minutes, ["train_fraction"] = r.Fraction, ["training_words"] = r.TrainingWords,
            ["steps"] = r.Steps, ["seconds"] = r.Seconds, ["test_accuracy"] = r.TestAccuracy,
            ["test_unseen_accuracy"] = double.IsNaN(r.UnseenAccuracy) ? null : r.UnseenAccuracy,
        }).ToArray());
        json["lengths"] = new JsonArray([.. options.Lengths.Select(t => (JsonNode)t)]);
        json["gpu_speed"] = gpuSpeed is null ? null : new JsonObject
        {
            ["device"] = gpuSpeed.Device,
            ["lengths"] = new JsonArray([.. options.GpuLengths.Select(t => (JsonNode)t)]),
            ["transformer_differences"] = Comparison.GpuTransformerDifferences,
            ["results"] = SpeedJson(gpuSpeed.Results),
        };
        WriteAtomically(Path.Combine(dir, "results.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        WriteAtomically(Path.Combine(dir, "report.md"),
            Markdown(options, machine, recall, speed, gradients, bottleneck, gpuSpeed, crossover));
    }

    /// <summary>
    /// Writes report.md and the plots of <paramref name="dir"/> again from its results.json, with this version's report
    /// (the figures are not measured again). The options are the mode's (quick or full) with the run's seed; the
    /// lengths are those measured.
    /// </summary>
    public static void Rewrite(string dir)
    {
        var path = Path.Combine(dir, "results.json");
        if (!File.Exists(path))
            throw new FileNotFoundException($"'{path}' does not exist: give the directory of an attn compare run.");
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                   ?? throw new InvalidDataException($"'{path}' is not a JSON object.");
        }
        catch (JsonException e) { throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e); }
        T Get<T>(JsonNode? node, string field) =>
            node?[field] is JsonValue v && v.TryGetValue<T>(out var value) ? value
            : throw new InvalidDataException($"'{path}': '{field}' is missing or not a {typeof(T).Name}.");
        JsonArray Array(JsonNode? node, string field) => node?[field] as JsonArray ?? [];
        SequenceModelKind Kind(JsonNode? node) => Get<string>(node, "model") switch
        {
            "RNN" => SequenceModelKind.Rnn,
            "LSTM" => SequenceModelKind.Lstm,
            "GRU" => SequenceModelKind.Gru,
            "Transformer" => SequenceModelKind.Transformer,
            var other => throw new InvalidDataException($"'{path}': model '{other}' is not one of the comparison's."),
        };
        double Rate(JsonNode? node, string field) => node?[field] is null ? double.NaN : Get<double>(node, field);
        string mode = Get<string>(json, "mode");
        var preset = mode switch
        {
            "quick" => ComparisonOptions.Quick,
            "full" => ComparisonOptions.Full,
            _ => throw new InvalidDataException($"'{path}' is a '{mode}' run; only quick and full runs can be rewritten."),
        };
        var options = preset with { Seed = Get<ulong>(json, "seed") };

        var recall = Array(json, "recall").Select(r => new RecallResult(Kind(r), Get<int>(r, "distance"),
            Get<double>(r, "accuracy"), Get<int>(r, "steps"), Get<double>(r, "seconds"), Get<long>(r, "parameters"),
            Get<float>(r, "final_loss"))).ToList();
        List<SpeedResult> Speed(JsonArray results) => [.. results.Select(r => new SpeedResult(Kind(r), Get<int>(r, "length"),
            Get<double>(r, "ms_per_step"), Get<double>(r, "tokens_per_s")))];
        var speed = Speed(Array(json, "speed"));
        var gradients = Array(json, "gradients").Select(g => new GradientResult(Kind(g), Get<int>(g, "trained_distance"),
            [.. Array(g, "norm_by_distance").Select(v => v!.GetValue<double>())])).ToList();
        var bottleneck = Array(json, "bottleneck").Select(b => new BottleneckResult(Get<string>(b, "model"),
            Get<long>(b, "parameters"), Get<int>(b, "steps"), Get<double>(b, "seconds"), Get<double>(b, "wer"),
            Get<double>(b, "per"), [.. Array(b, "by_length").Select(l =>
                new LengthBucketResult(Get<string>(l, "lengths"), Get<int>(l, "words"), Rate(l, "wer"), Rate(l, "per")))]))
            .ToList();
        var gpu = json["gpu_speed"] is JsonObject g
            ? new GpuSpeedResults(Get<string>(g, "device"), Speed(Array(g, "results"))) : null;
        var crossover = Array(json, "crossover").Select(c => new CrossoverResult(Get<string>(c, "model"),
            Get<double>(c, "minutes"), Get<double>(c, "train_fraction"), Get<long>(c, "training_words"), Get<int>(c, "steps"),
            Get<double>(c, "seconds"), Get<double>(c, "test_accuracy"), Rate(c, "test_unseen_accuracy"))).ToList();
        int[] Lengths(JsonNode? node) => [.. Array(node, "lengths").Select(t => t!.GetValue<int>())];   // the tables' rows
        if (Lengths(json) is { Length: > 0 } lengths) options = options with { Lengths = lengths };
        if (Lengths(json["gpu_speed"]) is { Length: > 0 } gpuLengths) options = options with { GpuLengths = gpuLengths };
        Write(dir, options, Get<string>(json, "machine"), recall, speed, gradients, bottleneck, gpu, crossover);
    }

    /// <summary>
    /// One sentence saying, for each recurrent model, the length T from which on the Transformer's tokens/s stays above
    /// that model's (at every longer length measured for both), or that it does not; <paramref name="where"/> opens it
    /// ("On the GPU").
    /// </summary>
    public static string Overtakes(IReadOnlyList<SpeedResult> speed, string where)
    {
        ArgumentNullException.ThrowIfNull(speed);
        var transformer = speed.Where(r => r.Model == SequenceModelKind.Transformer)
            .ToDictionary(r => r.Length, r => r.TokensPerSecond);
        var parts = new List<string>();
        foreach (var kind in Comparison.Models.Where(k => k != SequenceModelKind.Transformer))
        {
            var both = speed.Where(r => r.Model == kind && transformer.ContainsKey(r.Length)).OrderBy(r => r.Length).ToList();
            if (both.Count == 0)
            {
                parts.Add($"cannot be set against the {Name(kind)}'s (no length measured for both)");
                continue;
            }
            bool Ahead(int i) => transformer[both[i].Length] > both[i].TokensPerSecond;
            var (start, once) = LastLead(both.Count, Ahead);
            int from = both[start].Length;
            if (Ahead(both.Count - 1))
                parts.Add(start == 0 ? Inv($"is above the {Name(kind)}'s from the shortest T measured, {from}")
                    : Inv($"overtakes the {Name(kind)}'s at T = {from}"));
            else if (start == 0)
                parts.Add(Inv($"does not overtake the {Name(kind)}'s at any T measured (up to {both[^1].Length})"));
            else if (once)   // ahead at the short lengths, behind at the long ones
                parts.Add(Inv($"is above the {Name(kind)}'s up to T = {both[start - 1].Length} and below it from T = {from}"));
            else
                parts.Add(Inv($"is below the {Name(kind)}'s from T = {from} (above it at some shorter T)"));
        }
        return $"{where}, the Transformer's tokens/s " + string.Join(", ", parts.SkipLast(1)) +
               (parts.Count > 1 ? " and " : "") + parts[^1] + ".";
    }

    /// <summary>
    /// The last lead of two curves compared at <paramref name="count"/> points: the first point of the run, ending at the
    /// last point, on which <paramref name="ahead"/> is what it is at the last (0 when it never changes), and whether the
    /// lead changed only there (every earlier point the other way).
    /// </summary>
    internal static (int Start, bool Once) LastLead(int count, Func<int, bool> ahead)
    {
        bool last = ahead(count - 1);
        int start = count - 1;
        while (start > 0 && ahead(start - 1) == last) start--;
        return (start, Enumerable.Range(0, start).All(i => ahead(i) != last));
    }

    static string Inv(FormattableString text) => FormattableString.Invariant(text);

    static string Name(SequenceModelKind k) => k switch
    {
        SequenceModelKind.Rnn => "RNN",
        SequenceModelKind.Lstm => "LSTM",
        SequenceModelKind.Gru => "GRU",
        _ => "Transformer",
    };

    static string Markdown(ComparisonOptions o, string machine, IReadOnlyList<RecallResult> recall, IReadOnlyList<SpeedResult> speed, IReadOnlyList<GradientResult> gradients,
        IReadOnlyList<BottleneckResult> bottleneck, GpuSpeedResults? gpuSpeed, IReadOnlyList<CrossoverResult> crossover)
    {
        var s = new StringBuilder();
        var models = Comparison.Models;
        s.AppendLine("# Attention against recurrence, measured");
        s.AppendLine();
        s.AppendLine(Invariant, $"Mode: **{o.Mode}** (`attn compare{(o.Mode == "quick" ? " --quick" : "")}`), seed {o.Seed}, on {machine}.");
        s.AppendLine(Inv($"Every model embeds tokens in {o.Embedding} dimensions and has about the same number of parameters: ") +
            string.Join(", ", models.Select(k => recall.FirstOrDefault(r => r.Model == k) is { } r ? $"{Name(k)} {r.Parameters:N0}" : Name(k))) + ".");
        if (recall.Count > 0) RecallSection(s, o, recall);
        if (speed.Count > 0) ParallelismSection(s, o.Lengths, speed);
        if (gpuSpeed is not null) GpuParallelismSection(s, o.GpuLengths, gpuSpeed);
        if (gradients.Count > 0) GradientsSection(s, o, gradients);
        if (bottleneck.Count > 0) BottleneckSection(s, o, bottleneck);
        if (crossover.Count > 0) CrossoverSection(s, o, crossover);
        return s.ToString();
    }

    static void CrossoverSection(StringBuilder s, ComparisonOptions o, IReadOnlyList<CrossoverResult> crossover)
    {
        string Percent(double x) => double.IsNaN(x) ? "–" : Inv($"{100 * x:F2} %");
        string Cell(CrossoverResult? r) => r is null ? "–"
            : Inv($"{Percent(r.TestAccuracy)} ({Percent(r.UnseenAccuracy)}), {r.Steps:N0}");
        string Minutes(double m) => Inv($"{m:0.##} min");
        s.AppendLine();
        s.AppendLine("## Crossover: the POS tagger as training time and data grow");
        s.AppendLine();
        s.AppendLine("Part-of-speech tagging of the Brown corpus (`attn train --task pos`): the Transformer against the " +
            "task's best recurrent baseline, the BiLSTM, each with its own preset. Every point is a whole run, " +
            "`--minutes M --train-fraction F`, its schedule fitted to its own time limit, scored with its best checkpoint " +
            "on the test split. Cells: test accuracy (accuracy on words unseen in that run's training documents), " +
            "training steps.");
        s.AppendLine();
        s.AppendLine("| time limit | Transformer | BiLSTM |");
        s.AppendLine("|---:|---:|---:|");
        var t = Crossover.TimeCurve(crossover, "transformer", o);
        var l = Crossover.TimeCurve(crossover, "lstm", o);
        foreach (double m in o.CrossoverMinutes)
        {
            var (a, b) = (t.FirstOrDefault(r => r.Minutes == m), l.FirstOrDefault(r => r.Minutes == m));
            s.AppendLine($"| {Minutes(m)} | {Cell(a)} | {Cell(b)} |");
        }
        s.AppendLine();
        s.AppendLine(Crossover.Verdict(t, l, r => Minutes(r.Minutes),
            "As the training time grows (all of the training documents)"));
        s.AppendLine();
        s.AppendLine("![test accuracy against training time](crossover-time.png)");
        s.AppendLine();
        t = Crossover.DataCurve(crossover, "transformer", o);
        l = Crossover.DataCurve(crossover, "lstm", o);
        s.AppendLine("| share of the training documents | training words | Transformer | BiLSTM |");
        s.AppendLine("|---:|---:|---:|---:|");
        foreach (double f in o.CrossoverFractions)
        {
            var (a, b) = (t.FirstOrDefault(r => r.Fraction == f), l.FirstOrDefault(r => r.Fraction == f));
            string words = (a ?? b)?.TrainingWords.ToString("N0", Invariant) ?? "–";
            s.AppendLine(Inv($"| {f:0.###} | {words} | {Cell(a)} | {Cell(b)} |"));
        }
        s.AppendLine();
        s.AppendLine(Crossover.Verdict(t, l, r => Inv($"{r.TrainingWords:N0} training words"),
            Inv($"As the training data grows ({Minutes(o.CrossoverFractionMinutes)} each)")));
        s.AppendLine();
        s.AppendLine("![test accuracy against training data](crossover-data.png)");
    }

    static void RecallSection(StringBuilder s, ComparisonOptions o, IReadOnlyList<RecallResult> recall)
    {
        var models = Comparison.Models;
        s.AppendLine();
        s.AppendLine("## Long-range dependency: recall a token d positions back");
        s.AppendLine();
        s.AppendLine(Invariant, $"Sequences `[key, d fillers, ?]`; the answer is the key ({RecallTask.Keys} possible, chance {1.0 / RecallTask.Keys:P1}). " +
            $"Each model trains the same budget per distance: {o.StepsPerRun} steps of batch {o.Batch} (AdamW, lr {o.LearningRate.ToString(Invariant)}), cut short by a cap of {o.SecondsPerRun:0.#} s or after 20 perfect batches in a row, " +
            $"then is scored on {o.EvaluationExamples} fresh sequences. Cells: test accuracy (training steps).");
        s.AppendLine();
        s.AppendLine("| d | " + string.Join(" | ", models.Select(Name)) + " |");
        s.AppendLine("|---:|" + string.Concat(models.Select(_ => "---:|")));
        foreach (int d in o.Distances)
            s.AppendLine(Inv($"| {d} | ") + string.Join(" | ", models.Select(k => recall.FirstOrDefault(r => r.Model == k && r.Distance == d) is { } r ? $"{r.Accuracy * 100:F1} % ({r.Steps})" : "–")) + " |");
        s.AppendLine();
        s.AppendLine("![recall accuracy against distance](recall.png)");
    }

    static void ParallelismSection(StringBuilder s, int[] lengths, IReadOnlyList<SpeedResult> speed)
    {
        s.AppendLine();
        s.AppendLine("## Parallelism: training step time against sequence length");
        s.AppendLine();
        s.AppendLine("Forward, backward and an AdamW step on batch 8; median of a few steps after warming up. " +
                     "Cells: ms per step (tokens/s).");
        SpeedTable(s, lengths, speed);
        s.AppendLine(Overtakes(speed, "On the CPU"));
        s.AppendLine();
        s.AppendLine("![step time against sequence length](speed.png)");
    }

    static void GpuParallelismSection(StringBuilder s, int[] lengths, GpuSpeedResults gpu)
    {
        s.AppendLine();
        s.AppendLine("## Parallelism on the GPU: training step time against sequence length");
        s.AppendLine();
        s.AppendLine($"On {gpu.Device}: the same step (forward with the loss read back, backward, an AdamW step; batch 8), " +
            "timed until the device has finished it, median of a few steps after warming up. The recurrent models are the " +
            "CPU's models uploaded: one GEMM projects the inputs of every step, then each step is one GEMM and one fused " +
            "kernel of gate math, forward and backward, one after another. " + Comparison.GpuTransformerDifferences +
            " Cells: ms per step (tokens/s).");
        SpeedTable(s, lengths, gpu.Results);
        s.AppendLine(Overtakes(gpu.Results, "On the GPU"));
        s.AppendLine();
        s.AppendLine("![step time against sequence length on the GPU](speed-gpu.png)");
    }

    static void SpeedTable(StringBuilder s, int[] lengths, IReadOnlyList<SpeedResult> speed)
    {
        var models = Comparison.Models;
        s.AppendLine();
        s.AppendLine("| T | " + string.Join(" | ", models.Select(Name)) + " |");
        s.AppendLine("|---:|" + string.Concat(models.Select(_ => "---:|")));
        foreach (int t in lengths)
            s.AppendLine(Inv($"| {t} | ") + string.Join(" | ", models.Select(k =>
                speed.FirstOrDefault(r => r.Model == k && r.Length == t) is { } r
                    ? Inv($"{r.MillisecondsPerStep:F1} ({r.TokensPerSecond:N0})")
                    : "–")) + " |");
        s.AppendLine();
    }

    static void GradientsSection(StringBuilder s, ComparisonOptions o, IReadOnlyList<GradientResult> gradients)
    {
        s.AppendLine();
        s.AppendLine(Invariant, $"## Vanishing gradients: ‖∂loss/∂x_t‖ against the distance from the output");
        s.AppendLine();
        s.AppendLine(Inv($"On the models trained at d = {o.GradientDistance}: the mean over 64 sequences of the gradient norm of the loss with respect to each input embedding. ") +
            "The key sits at the largest distance; a model that learns the task must get gradient there.");
        s.AppendLine();
        int[] marks = gradients.Count == 0 ? [] : new[] { 0, 1, 4, 16, 64, 256, 1024 }.Where(m => m < gradients[0].NormByDistance.Length).Append(gradients[0].NormByDistance.Length - 1).Distinct().ToArray();
        s.AppendLine("| distance | " + string.Join(" | ", gradients.Select(g => Name(g.Model))) + " |");
        s.AppendLine("|---:|" + string.Concat(gradients.Select(_ => "---:|")));
        foreach (int m in marks)
            s.AppendLine(Inv($"| {m}{(m == marks[^1] ? " (the key)" : "")} | ") + string.Join(" | ", gradients.Select(g => g.NormByDistance[m].ToString("0.00E+00", Invariant))) + " |");
        s.AppendLine();
        s.AppendLine("![gradient norm against distance](gradients.png)");
    }

    static void BottleneckSection(StringBuilder s, ComparisonOptions o, IReadOnlyList<BottleneckResult> bottleneck)
    {
        s.AppendLine();
        s.AppendLine("## The bottleneck: sequence-to-sequence without attention, with attention, and the Transformer");
        s.AppendLine();
        s.AppendLine(Inv($"Grapheme-to-phoneme on CMUdict, each model trained {o.BottleneckSeconds:0} s, then pronouncing ") +
            (o.BottleneckTestStride == 1 ? "every test word" : Inv($"every {o.BottleneckTestStride}th test word")) +
            " greedily. Cells: word error rate (a word is wrong unless it matches a reference pronunciation exactly).");
        s.AppendLine();
        s.AppendLine("| model | parameters | steps | PER | WER | " + string.Join(" | ", Bottleneck.Buckets.Select(b => Bottleneck.BucketName(b) + " letters")) + " |");
        s.AppendLine("|---|---:|---:|---:|---:|" + string.Concat(Bottleneck.Buckets.Select(_ => "---:|")));
        foreach (var r in bottleneck)
            s.AppendLine(Inv($"| {r.Model} | {r.Parameters:N0} | {r.Steps} | {r.PhonemeErrorRate * 100:F1} % | {r.WordErrorRate * 100:F1} % | ") +
                string.Join(" | ", r.ByLength.Select(b => b.Words == 0 ? "–" : Inv($"{b.WordErrorRate * 100:F1} % ({b.Words})"))) + " |");
        s.AppendLine();
        s.AppendLine("![word error by word length](bottleneck.png)");
    }

    static JsonObject Json(ComparisonOptions o, string machine, IReadOnlyList<RecallResult> recall, IReadOnlyList<SpeedResult> speed, IReadOnlyList<GradientResult> gradients,
        IReadOnlyList<BottleneckResult> bottleneck) => new()
        {
            ["bottleneck"] = new JsonArray(bottleneck.Select(r => (JsonNode)new JsonObject
            {
                ["model"] = r.Model, ["parameters"] = r.Parameters, ["steps"] = r.Steps, ["seconds"] = r.Seconds,
                ["wer"] = r.WordErrorRate, ["per"] = r.PhonemeErrorRate,
                ["by_length"] = new JsonArray(r.ByLength.Select(b => (JsonNode)new JsonObject
                {
                    ["lengths"] = b.Lengths, ["words"] = b.Words, ["wer"] = double.IsNaN(b.WordErrorRate) ? null : b.WordErrorRate,
                    ["per"] = double.IsNaN(b.PhonemeErrorRate) ? null : b.PhonemeErrorRate,
                }).ToArray()),
            }).ToArray()),
            ["mode"] = o.Mode, ["seed"] = o.Seed, ["machine"] = machine, ["embedding"] = o.Embedding, ["steps_per_run"] = o.StepsPerRun, ["seconds_per_run"] = o.SecondsPerRun,
            ["recall"] = new JsonArray(recall.Select(r => (JsonNode)new JsonObject
            {
                ["model"] = Name(r.Model), ["distance"] = r.Distance, ["accuracy"] = r.Accuracy, ["steps"] = r.Steps,
                ["seconds"] = r.Seconds, ["parameters"] = r.Parameters, ["final_loss"] = r.FinalLoss,
            }).ToArray()),
            ["speed"] = SpeedJson(speed),
            ["gradients"] = new JsonArray(gradients.Select(g => (JsonNode)new JsonObject
            {
                ["model"] = Name(g.Model), ["trained_distance"] = g.Distance,
                ["norm_by_distance"] = new JsonArray(g.NormByDistance.Select(v => (JsonNode)JsonValue.Create(v)!).ToArray()),
            }).ToArray()),
        };

    static JsonArray SpeedJson(IReadOnlyList<SpeedResult> speed) => new(speed.Select(r => (JsonNode)new JsonObject
    {
        ["model"] = Name(r.Model), ["length"] = r.Length, ["ms_per_step"] = r.MillisecondsPerStep,
        ["tokens_per_s"] = r.TokensPerSecond,
    }).ToArray());

    static void PlotRecall(string path, IReadOnlyList<RecallResult> recall)
    {
        var plot = new ScottPlot.Plot();
        foreach (var kind in Comparison.Models)
        {
            var points = recall.Where(r => r.Model == kind).OrderBy(r => r.Distance).ToArray();
            if (points.Length == 0) continue;
            Series(plot, Name(kind), points.Select(p => Math.Log2(p.Distance)).ToArray(), points.Select(p => 100 * p.Accuracy).ToArray());
        }
        var chance = plot.Add.HorizontalLine(100.0 / RecallTask.Keys);
        chance.LinePattern = ScottPlot.LinePattern.Dashed;
        chance.LegendText = "chance";
        Log2Ticks(plot, recall.Select(r => r.Distance));
        plot.Axes.SetLimitsY(0, 105);
        plot.Title("Recall a token d positions back");
        plot.XLabel("distance d");
        plot.YLabel("test accuracy (%)");
        plot.ShowLegend(ScottPlot.Alignment.LowerLeft);
        Save(plot, path);
    }

    static void PlotSpeed(string path, IReadOnlyList<SpeedResult> speed, string title)
    {
        var plot = new ScottPlot.Plot();
        foreach (var kind in Comparison.Models)
        {
            var points = speed.Where(r => r.Model == kind).OrderBy(r => r.Length).ToArray();
            if (points.Length == 0) continue;
            Series(plot, Name(kind), points.Select(p => Math.Log2(p.Length)).ToArray(), points.Select(p => Math.Log10(p.TokensPerSecond)).ToArray());
        }
        Log2Ticks(plot, speed.Select(r => r.Length));
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int e = 2; e <= 8; e++) ticks.AddMajor(e, Math.Pow(10, e).ToString("N0", Invariant));
        plot.Axes.Left.TickGenerator = ticks;
        plot.Title(title);
        plot.XLabel("sequence length T");
        plot.YLabel("tokens per second (log scale)");
        plot.ShowLegend(ScottPlot.Alignment.LowerLeft);
        Save(plot, path);
    }

    static void PlotGradients(string path, IReadOnlyList<GradientResult> gradients)
    {
        var plot = new ScottPlot.Plot();
        foreach (var g in gradients)
        {
            var xs = Enumerable.Range(0, g.NormByDistance.Length).Select(i => (double)i).ToArray();
            var ys = g.NormByDistance.Select(v => Math.Log10(Math.Max(v, 1e-30))).ToArray();
            var line = plot.Add.ScatterLine(xs, ys);
            line.LegendText = Name(g.Model);
            line.LineWidth = 2;
        }
        plot.Title(gradients.Count > 0 ? $"‖∂loss/∂x_t‖ against distance from the output (trained at d = {gradients[0].Distance})" : "gradients");
        plot.XLabel("distance from the output (positions)");
        plot.YLabel("log10 gradient norm");
        plot.ShowLegend(ScottPlot.Alignment.LowerLeft);
        Save(plot, path);
    }

    static void PlotBottleneck(string path, IReadOnlyList<BottleneckResult> results)
    {
        var plot = new ScottPlot.Plot();
        foreach (var r in results)
        {
            var points = r.ByLength.Select((b, i) => (i, b)).Where(p => p.b.Words > 0).ToArray();
            Series(plot, r.Model, points.Select(p => (double)p.i).ToArray(), points.Select(p => 100 * p.b.WordErrorRate).ToArray());
        }
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int i = 0; i < Bottleneck.Buckets.Length; i++) ticks.AddMajor(i, Bottleneck.BucketName(Bottleneck.Buckets[i]));
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.SetLimitsY(0, 100);
        plot.Title("Grapheme-to-phoneme: word error by word length");
        plot.XLabel("word length (letters)");
        plot.YLabel("word error rate (%)");
        plot.ShowLegend(ScottPlot.Alignment.UpperLeft);
        Save(plot, path);
    }

    static void PlotCrossover(string path, Func<string, List<CrossoverResult>> curveOf, Func<CrossoverResult, double> x,
        string title, string xLabel, Func<double, string> tick)
    {
        var plot = new ScottPlot.Plot();
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        var curves = Crossover.Models.Select(m => (Model: m, Points: curveOf(m).OrderBy(x).ToArray())).ToList();
        foreach (var (model, points) in curves.Where(c => c.Points.Length > 0))
            Series(plot, Crossover.Name(model), [.. points.Select(p => Math.Log2(x(p)))],
                [.. points.Select(p => 100 * p.TestAccuracy)]);
        foreach (double v in curves.SelectMany(c => c.Points).Select(x).Distinct().Order())
            ticks.AddMajor(Math.Log2(v), tick(v));
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel("test accuracy (%)");
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        Save(plot, path);
    }

    /// <summary>One model's line with markers, in the legend under <paramref name="name"/>.</summary>
    static void Series(ScottPlot.Plot plot, string name, double[] xs, double[] ys)
    {
        var line = plot.Add.Scatter(xs, ys);
        line.LegendText = name;
        line.LineWidth = 2;
        line.MarkerSize = 7;
    }

    static void Log2Ticks(ScottPlot.Plot plot, IEnumerable<int> values)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (int v in values.Distinct().Order()) ticks.AddMajor(Math.Log2(v), v.ToString(Invariant));
        plot.Axes.Bottom.TickGenerator = ticks;
    }

    static void Save(ScottPlot.Plot plot, string path)
    {
        var temp = path + $".tmp-{Environment.ProcessId}.png";
        plot.SavePng(temp, 900, 540);
        File.Move(temp, path, overwrite: true);
    }

    static void WriteAtomically(string path, string text)
    {
        var temp = path + $".tmp-{Environment.ProcessId}";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}
