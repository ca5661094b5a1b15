using System.Diagnostics;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.Distributed;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Experiments;

/// <summary>
/// One run of the crossover experiment: <c>attn train --task pos --model M --minutes T --train-fraction F</c>, with the
/// accuracy of its best checkpoint on the test split, overall and on words unseen in its training share.
/// </summary>
public sealed record CrossoverResult(string Model, double Minutes, double Fraction, long TrainingWords, int Steps, double Seconds,
    double TestAccuracy, double UnseenAccuracy);   // NaN: every test word was in the training share

/// <summary>
/// Where attention overtakes recurrence, if it does: the POS tagger's Transformer against its best recurrent baseline
/// (the BiLSTM), each with its own preset (<see cref="TaskPresets"/>), as the training time grows on all of the training
/// documents and as the share of training documents grows at a fixed time. Every point is a whole run, its schedule
/// fitted to its own time limit, as a user gets it from <c>attn train</c>; the runs are scored on the test split.
/// </summary>
public static class Crossover
{
    /// <summary>The two models, as <c>--model</c> names them.</summary>
    public static readonly string[] Models = ["transformer", "lstm"];

    /// <summary>The report's name of a <c>--model</c>.</summary>
    public static string Name(string model) => model == "transformer" ? "Transformer" : "BiLSTM";

    /// <summary>
    /// Trains both models at every point of <paramref name="options"/> (the time curve's minutes on all of the training
    /// documents, then the data curve's shares at <see cref="ComparisonOptions.CrossoverFractionMinutes"/>; a point on
    /// both is run once). <paramref name="data"/> replaces the Brown corpus (a directory in its NLTK layout) as
    /// <c>--data</c> does; <paramref name="cache"/> is where the corpus is fetched to.
    /// </summary>
    public static List<CrossoverResult> Run(ComparisonOptions options, string? data, string? cache, Action<string>? log = null,
        CancellationToken cancel = default)
    {
        options.Validate();
        log ??= _ => { };
        var corpus = data is null ? BrownCorpus.Fetch(DataCache.Resolve(cache), TextWriter.Null) : BrownCorpus.Load(data);
        var train = corpus.Split().Train;
        var points = Points(options);
        var results = new List<CrossoverResult>();
        var root = Path.Combine(Path.GetTempPath(), $"attn-crossover-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            foreach (var (minutes, fraction) in points)
            {
                long words = TaggingTask.Share(train, fraction).Sum(d => (long)d.WordCount);
                foreach (var model in Models)
                {
                    cancel.ThrowIfCancellationRequested();
                    var runOptions = TaskPresets.For("pos", model) with
                    {
                        Minutes = minutes,
                        TrainFraction = fraction,
                        Data = data,
                        Cache = cache,
                        Seed = options.Seed,
                        Out = Path.Combine(root, $"{model}-{results.Count}"),
                    };
                    var run = new TrainingRun(runOptions, new SingleProcessCommunicator(), TextWriter.Null)
                    {
                        Cancellation = cancel,
                    };
                    var clock = Stopwatch.StartNew();
                    if (run.Execute() != 0 || run.Closing is not { } closing)
                        throw new OperationCanceledException("The crossover experiment was interrupted.");
                    var unseen = closing["test_unseen_accuracy"] is null ? double.NaN   // null: no test word unseen
                        : Read(closing, "test_unseen_accuracy");
                    var result = new CrossoverResult(model, minutes, fraction, words, run.Steps, clock.Elapsed.TotalSeconds,
                        Read(closing, "test_accuracy"), unseen);
                    results.Add(result);
                    log(FormattableString.Invariant($"crossover {Name(model),-11} {minutes,5:0.##} min, ") +
                        FormattableString.Invariant($"{fraction,6:P1} of the training documents ({words:N0} words): ") +
                        FormattableString.Invariant(
                            $"{result.Steps} steps, test {result.TestAccuracy:P2}, unseen {result.UnseenAccuracy:P2}"));
                    Directory.Delete(runOptions.Out, recursive: true);
                }
            }
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
        return results;
    }

    /// <summary>The (minutes, share) of every run: the time curve's, then the data curve's not already among them.</summary>
    public static List<(double Minutes, double Fraction)> Points(ComparisonOptions o) =>
        [.. TimePoints(o).Concat(DataPoints(o)).Distinct()];

    /// <summary>The time curve: the runs on all of the training documents, by minutes.</summary>
    public static List<CrossoverResult> TimeCurve(IReadOnlyList<CrossoverResult> results, string model, ComparisonOptions o) =>
        Curve(results, model, TimePoints(o));

    /// <summary>The data curve: the runs of <see cref="ComparisonOptions.CrossoverFractionMinutes"/>, by share.</summary>
    public static List<CrossoverResult> DataCurve(IReadOnlyList<CrossoverResult> results, string model, ComparisonOptions o) =>
        Curve(results, model, DataPoints(o));

    static IEnumerable<(double Minutes, double Fraction)> TimePoints(ComparisonOptions o) =>
        o.CrossoverMinutes.Select(m => (m, 1.0));

    static IEnumerable<(double Minutes, double Fraction)> DataPoints(ComparisonOptions o) =>
        o.CrossoverFractions.Select(f => (o.CrossoverFractionMinutes, f));

    /// <summary><paramref name="model"/>'s runs at <paramref name="points"/>, in order (points not run left out).</summary>
    static List<CrossoverResult> Curve(IReadOnlyList<CrossoverResult> results, string model,
        IEnumerable<(double Minutes, double Fraction)> points) =>
        [.. points
            .Select(p => results.FirstOrDefault(r => r.Model == model && r.Minutes == p.Minutes && r.Fraction == p.Fraction))
            .OfType<CrossoverResult>()];

    /// <summary>
    /// What the two curves of one experiment show, in one sentence: that one model is ahead at every point, or where the
    /// lead changes hands for the last time and who keeps it to the last point; <paramref name="axis"/> names the points
    /// ("2 min"), <paramref name="along"/> the experiment ("As the training time grows").
    /// </summary>
    public static string Verdict(IReadOnlyList<CrossoverResult> transformer, IReadOnlyList<CrossoverResult> lstm,
        Func<CrossoverResult, string> axis, string along)
    {
        int n = Math.Min(transformer.Count, lstm.Count);
        if (n == 0) return $"{along}: no point was measured for both models.";
        bool Ahead(int i) => transformer[i].TestAccuracy > lstm[i].TestAccuracy;
        string Leader(bool transformerAhead) => transformerAhead ? "the Transformer" : "the BiLSTM";
        string gap(int i) =>
            FormattableString.Invariant($"{100 * (transformer[i].TestAccuracy - lstm[i].TestAccuracy):+0.00;-0.00} points");
        bool last = Ahead(n - 1);
        var (from, once) = ComparisonReport.LastLead(n, Ahead);
        string Span(int i, int j) => i == j ? $"at {axis(transformer[i])} ({gap(i)})"
            : $"from {axis(transformer[i])} ({gap(i)}) to {axis(transformer[j])} ({gap(j)})";
        if (from == 0)
            return $"{along}, {Leader(last)} is ahead at every point, {Span(0, n - 1)} " +
                   "(gaps are the Transformer's accuracy minus the BiLSTM's): the curves do not cross here.";
        return $"{along}, the curves cross{(once ? "" : " more than once")}: {Leader(!last)} leads " +
               (once ? Span(0, from - 1) : $"at {axis(transformer[from - 1])} ({gap(from - 1)})") +
               $", {Leader(last)} {Span(from, n - 1)} (gaps are the Transformer's accuracy minus the BiLSTM's).";
    }

    static double Read(JsonObject closing, string key) =>
        closing[key] is JsonValue v && v.TryGetValue<double>(out var x) ? x
        : throw new InvalidOperationException($"The tagger's run closed without '{key}'.");
}
