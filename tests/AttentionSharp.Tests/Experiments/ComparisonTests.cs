using System.Text.Json.Nodes;
using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Experiments;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Experiments;

/// <summary>The recall task, the four matched models, and the comparison end to end on a tiny budget.</summary>
public class ComparisonTests
{
    [Fact]
    public void RecallSequencesAreKeyFillersQueryAndTheLabelIsTheKey()
    {
        const int b = 50, d = 6;
        var ids = new int[b * RecallTask.Length(d)]; var labels = new int[b];
        RecallTask.Sample(new Generator(3), b, d, ids, labels);
        for (int i = 0; i < b; i++)
        {
            var row = ids.AsSpan(i * (d + 2), d + 2);
            Assert.Equal(labels[i], row[0]);
            Assert.InRange(row[0], 0, RecallTask.Keys - 1);
            for (int j = 1; j <= d; j++) Assert.InRange(row[j], RecallTask.Keys, RecallTask.Keys + RecallTask.Fillers - 1);
            Assert.Equal(RecallTask.Query, row[^1]);
        }
        Assert.True(labels.Distinct().Count() > 4, "keys are not spread over the symbols");
        var again = new int[ids.Length]; var labelsAgain = new int[b];
        RecallTask.Sample(new Generator(3), b, d, again, labelsAgain);
        Assert.Equal(ids, again);   // the same seed gives the same data
        Assert.Throws<ArgumentException>(() => RecallTask.Sample(new Generator(1), b, d, new int[3], labels));
    }

    [Theory]
    [InlineData(SequenceModelKind.Rnn)]
    [InlineData(SequenceModelKind.Lstm)]
    [InlineData(SequenceModelKind.Gru)]
    [InlineData(SequenceModelKind.Transformer)]
    public void EachModelHasAboutTheTransformersParametersAndReadsToTheLastPosition(SequenceModelKind kind)
    {
        var transformer = SequenceClassifier.Create(SequenceModelKind.Transformer, RecallTask.VocabSize, RecallTask.Keys, 32, 64, new Generator(1));
        var model = SequenceClassifier.Create(kind, RecallTask.VocabSize, RecallTask.Keys, 32, 64, new Generator(1));
        double ratio = model.ParameterCount() / (double)transformer.ParameterCount();
        Assert.InRange(ratio, 0.97, 1.03);
        int[] ids = [0, 9, 10, 24, 3, 11, 12, 24];
        using var logits = model.Forward(ids, 2, 4);
        Assert.Equal([2, RecallTask.Keys], logits.Shape.ToArray());
        // Changing the first token of sequence 0 changes its answer (the last position sees the whole sequence) and
        // leaves sequence 1's alone (the rows of a batch are independent).
        int[] other = [5, 9, 10, 24, 3, 11, 12, 24];
        using var changed = model.Forward(other, 2, 4);
        Assert.NotEqual(logits.ToArray()[..RecallTask.Keys], changed.ToArray()[..RecallTask.Keys]);
        Assert.Equal(logits.ToArray()[RecallTask.Keys..], changed.ToArray()[RecallTask.Keys..]);
    }

    [Fact]
    public void TheComparisonRunsEndToEndAndWritesItsReport()
    {
        var options = new ComparisonOptions
        {
            Mode = "test", Distances = [2, 4], StepsPerRun = 40, SecondsPerRun = 60, Lengths = [4, 16], GradientDistance = 4,
            Embedding = 16, Batch = 16, EvaluationExamples = 64, LearningRate = 1e-2f,
        };
        var lines = new List<string>();
        var comparison = new Comparison(options, lines.Add);
        Assert.Throws<InvalidOperationException>(() => comparison.Gradients());   // nothing trained yet
        var recall = comparison.LongRange();
        Assert.Equal(8, recall.Count);
        Assert.All(recall, r => { Assert.InRange(r.Accuracy, 0, 1); Assert.InRange(r.Steps, 1, 40); });
        // The gap of 2 is short enough for the Transformer to learn within 40 steps.
        Assert.True(recall.Single(r => r.Model == SequenceModelKind.Transformer && r.Distance == 2).Accuracy > 0.5);
        var speed = comparison.Speed();
        Assert.Equal(8, speed.Count);
        Assert.All(speed, s => Assert.True(s.MillisecondsPerStep > 0 && s.TokensPerSecond > 0));
        var gradients = comparison.Gradients();
        Assert.Equal(4, gradients.Count);
        Assert.All(gradients, g => { Assert.Equal(RecallTask.Length(4), g.NormByDistance.Length); Assert.All(g.NormByDistance, v => Assert.True(double.IsFinite(v) && v >= 0)); });
        // A recurrent input at distance 0 (the query token) always has a gradient; the key must get some in every model.
        Assert.All(gradients, g => Assert.True(g.NormByDistance[0] > 0 && g.NormByDistance[^1] > 0, $"{g.Model}: no gradient"));

        using var dir = new TempDirectory();
        ComparisonReport.Write(dir.Path, options, "test machine", recall, speed, gradients);
        foreach (var f in new[] { "report.md", "results.json", "recall.png", "speed.png", "gradients.png" })
            Assert.True(new FileInfo(dir.File(f)).Length > 100, f);
        var report = File.ReadAllText(dir.File("report.md"));
        Assert.Contains("Mode: **test**", report);
        Assert.Contains("| d | RNN | LSTM | GRU | Transformer |", report);
        var json = JsonNode.Parse(File.ReadAllText(dir.File("results.json")))!;
        Assert.Equal("test", json["mode"]!.GetValue<string>());
        Assert.Equal(8, json["recall"]!.AsArray().Count);
        Assert.Equal(8, json["speed"]!.AsArray().Count);
    }

    [Fact]
    public void TheBottleneckExperimentTrainsTheThreeModelsAndScoresByWordLength()
    {
        CmuEntry E(string word, params string[] phonemes) => new(word, [phonemes]);
        var train = new List<CmuEntry>
        {
            E("cat", "K", "AE", "T"), E("bat", "B", "AE", "T"), E("tab", "T", "AE", "B"), E("act", "AE", "K", "T"),
            E("cabbage", "K", "AE", "B", "IH", "JH"), E("battle", "B", "AE", "T", "AH", "L"), E("tackle", "T", "AE", "K", "AH", "L"),
        };
        var test = new List<CmuEntry> { E("tat", "T", "AE", "T"), E("cattle", "K", "AE", "T", "AH", "L"), E("backtrack", "B", "AE", "K", "T", "R", "AE", "K") };
        var lines = new List<string>();
        var results = Bottleneck.Run(train, test, G2pVocabulary.ForCmuDict(keepStress: false), secondsPerModel: 1.5, seed: 2, lines.Add);
        Assert.Equal(["LSTM, no attention", "LSTM + attention", "Transformer"], results.Select(r => r.Model).ToArray());
        Assert.All(results, r =>
        {
            Assert.True(r.Steps > 0 && r.Parameters > 0);
            Assert.InRange(r.WordErrorRate, 0, 1);
            Assert.Equal(Bottleneck.Buckets.Length, r.ByLength.Count);
            Assert.Equal(test.Count, r.ByLength.Sum(b => b.Words));   // every test word in exactly one length range
            Assert.Equal(1, r.ByLength.Single(b => b.Lengths == "1–4").Words);
        });
        Assert.Equal(3, lines.Count);
        Assert.Throws<ArgumentException>(() => Bottleneck.Run(train, test, G2pVocabulary.ForCmuDict(false), 0, 1));
    }

    [Fact]
    public void TheCrossoverExperimentTrainsBothTaggersAtEveryPointAndReportsIt()
    {
        using var dir = new TempDirectory();
        var corpus = AttentionSharp.Tests.Training.TaskData.Corpus(dir.Path);
        var options = ComparisonOptions.Quick with
        {
            Mode = "test",
            CrossoverMinutes = [0.004, 0.008],
            CrossoverFractions = [0.25, 0.5, 1],
            CrossoverFractionMinutes = 0.008,
        };
        Assert.Equal(new[] { (0.004, 1.0), (0.008, 1.0), (0.008, 0.25), (0.008, 0.5) }, Crossover.Points(options));
        var lines = new List<string>();
        var results = Crossover.Run(options, corpus, cache: null, lines.Add);
        Assert.Equal(8, results.Count);
        Assert.Equal(8, lines.Count);
        Assert.All(results, r =>
        {
            Assert.True(r.Steps > 0, $"{r.Model} at {r.Minutes} min took no step");
            Assert.InRange(r.TestAccuracy, 0, 1);
            Assert.True(double.IsNaN(r.UnseenAccuracy) || r.UnseenAccuracy is >= 0 and <= 1);   // NaN: none unseen (as here)
        });
        // Each share's words: 4, 8 and all 16 training documents of 12 sentences, ten words each.
        var words = Crossover.DataCurve(results, "transformer", options).Select(r => r.TrainingWords);
        Assert.Equal(new long[] { 480, 960, 1920 }, words);
        Assert.Equal(2, Crossover.TimeCurve(results, "lstm", options).Count);

        var report = dir.File("report");
        ComparisonReport.Write(report, options, "test machine", [], [], [], crossover: results);
        var text = File.ReadAllText(Path.Combine(report, "report.md"));
        Assert.Contains("## Crossover: the POS tagger as training time and data grow", text);
        Assert.Contains("| 0.25 | 480 |", text);
        Assert.Contains("As the training time grows", text);
        Assert.Contains("As the training data grows", text);
        foreach (var png in new[] { "crossover-time.png", "crossover-data.png" })
            Assert.True(new FileInfo(Path.Combine(report, png)).Length > 100, png);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(report, "results.json")))!;
        Assert.Equal(8, json["crossover"]!.AsArray().Count);
    }

    [Fact]
    public void AReportIsRewrittenFromItsResultsAlone()
    {
        using var dir = new TempDirectory();
        var options = ComparisonOptions.Quick with { Seed = 5, Lengths = [64, 128] };
        var kinds = Comparison.Models;
        var recall = kinds.SelectMany((k, i) => options.Distances.Select(d =>
            new RecallResult(k, d, 0.125 + 0.1 * i, 150, 1.5, 69_000, 0.5f))).ToList();
        var speed = kinds.SelectMany((k, i) =>
            new[] { new SpeedResult(k, 64, 3.5 + i, 146_311.2 - i), new SpeedResult(k, 128, 8.25, 125_086) }).ToList();
        var gradients = kinds.Select(k =>
            new GradientResult(k, 128, [.. Enumerable.Range(0, 130).Select(j => Math.Pow(10, -j / 10.0))])).ToList();
        var buckets = Bottleneck.Buckets.Select((b, i) => i == 0   // a length range without words has no rates
            ? new LengthBucketResult(Bottleneck.BucketName(b), 0, double.NaN, double.NaN)
            : new LengthBucketResult(Bottleneck.BucketName(b), 100 + i, 0.3, 0.1)).ToList();
        List<BottleneckResult> bottleneck = [new("LSTM + attention", 1_797_930, 721, 47.2, 0.516, 0.134, buckets)];
        var gpu = new GpuSpeedResults("NVIDIA Test",
            [new SpeedResult(SequenceModelKind.Rnn, 256, 1.5, 1e6),
             new SpeedResult(SequenceModelKind.Transformer, 256, 0.5, 3e6)]);
        var crossover = Crossover.Points(options).SelectMany(p => Crossover.Models.Select((m, i) =>
            new CrossoverResult(m, p.Minutes, p.Fraction, (long)(929_728 * p.Fraction), 500, 60 * p.Minutes, 0.95 + 0.01 * i,
                i == 0 ? double.NaN : 0.85))).ToList();
        ComparisonReport.Write(dir.Path, options, "test machine", recall, speed, gradients, bottleneck, gpu, crossover);
        var report = File.ReadAllText(dir.File("report.md"));
        var results = File.ReadAllText(dir.File("results.json"));
        File.Delete(dir.File("report.md"));
        File.Delete(dir.File("crossover-time.png"));
        ComparisonReport.Rewrite(dir.Path);
        Assert.Equal(report, File.ReadAllText(dir.File("report.md")));
        Assert.Equal(results, File.ReadAllText(dir.File("results.json")));
        Assert.True(File.Exists(dir.File("crossover-time.png")));

        File.WriteAllText(dir.File("results.json"), results.Replace("\"quick\"", "\"test\"", StringComparison.Ordinal));
        var e = Assert.Throws<InvalidDataException>(() => ComparisonReport.Rewrite(dir.Path));
        Assert.Contains("only quick and full runs", e.Message);
        Assert.Throws<FileNotFoundException>(() => ComparisonReport.Rewrite(dir.File("nowhere")));
    }

    [Fact]
    public void TheCrossoverVerdictSaysWhereTheCurvesCrossOrThatTheyDoNot()
    {
        List<CrossoverResult> Curve(string model, params double[] accuracies) =>
            [.. accuracies.Select((a, i) => new CrossoverResult(model, 1 << i, 1, 100, 10, 60, a, a))];
        string Verdict(double[] t, double[] l) =>
            Crossover.Verdict(Curve("transformer", t), Curve("lstm", l), r => $"{r.Minutes} min", "Along");
        const string Gaps = " (gaps are the Transformer's accuracy minus the BiLSTM's)";
        Assert.Equal("Along, the curves cross: the BiLSTM leads from 1 min (-1.00 points) to 2 min (-1.00 points), the " +
                     "Transformer from 4 min (+1.00 points) to 8 min (+2.00 points)" + Gaps + ".",
            Verdict([0.90, 0.92, 0.95, 0.97], [0.91, 0.93, 0.94, 0.95]));
        Assert.Equal("Along, the curves cross: the Transformer leads from 1 min (+0.50 points) to 2 min (+0.20 points), the " +
                     "BiLSTM at 4 min (-0.10 points)" + Gaps + ".", Verdict([0.970, 0.977, 0.978], [0.965, 0.975, 0.979]));
        Assert.Equal("Along, the Transformer is ahead at every point, from 1 min (+1.00 points) to 4 min (+1.00 points)" +
                     Gaps + ": the curves do not cross here.", Verdict([0.91, 0.92, 0.93], [0.90, 0.91, 0.92]));
        Assert.Equal("Along, the BiLSTM is ahead at every point, from 1 min (-2.00 points) to 4 min (-1.00 points)" +
                     Gaps + ": the curves do not cross here.", Verdict([0.90, 0.91, 0.92], [0.92, 0.92, 0.93]));
        Assert.Equal("Along, the curves cross more than once: the Transformer leads at 2 min (+1.00 points), the BiLSTM " +
                     "at 4 min (-1.00 points)" + Gaps + ".", Verdict([0.90, 0.93, 0.92], [0.91, 0.92, 0.93]));
        Assert.Equal("Along: no point was measured for both models.", Verdict([], [0.5]));
    }

    [Fact]
    public void BadOptionsAreRefused()
    {
        var good = ComparisonOptions.Quick;
        Assert.Contains("gradient distance", Assert.Throws<ArgumentException>(() => new Comparison(good with { GradientDistance = 3 })).Message);
        Assert.Contains("Distances", Assert.Throws<ArgumentException>(() => new Comparison(good with { Distances = [] })).Message);
        Assert.Contains("StepsPerRun", Assert.Throws<ArgumentException>(() => new Comparison(good with { StepsPerRun = 0 })).Message);
        string Refused(ComparisonOptions bad) => Assert.Throws<ArgumentException>(() => new Comparison(bad)).Message;
        Assert.Contains("CrossoverMinutes", Refused(good with { CrossoverMinutes = [1, 0] }));
        Assert.Contains("CrossoverFractions", Refused(good with { CrossoverFractions = [1.5] }));
        Assert.Contains("CrossoverFractionMinutes", Refused(good with { CrossoverFractionMinutes = double.NaN }));
    }
}
