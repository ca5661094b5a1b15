using System.Diagnostics;
using AttentionSharp.Autograd;
using AttentionSharp.Gpu;
using AttentionSharp.Models;
using AttentionSharp.Training;

namespace AttentionSharp.Experiments;

/// <summary>
/// How big and how long the comparison runs: <see cref="Quick"/> took 10.5 minutes on 2 cores, <see cref="Full"/> 85.5.
/// </summary>
public sealed record ComparisonOptions
{
    /// <summary>The mode's name, written into the report.</summary>
    public required string Mode { get; init; }

    /// <summary>Gaps d of the recall task.</summary>
    public required int[] Distances { get; init; }

    /// <summary>Training steps per model and distance (every model gets the same), unless <see cref="SecondsPerRun"/> ends the run first.</summary>
    public required int StepsPerRun { get; init; }

    /// <summary>A cap on the training time per model and distance, in seconds, the same for every model.</summary>
    public required double SecondsPerRun { get; init; }

    /// <summary>Sequence lengths of the speed experiment.</summary>
    public required int[] Lengths { get; init; }

    /// <summary>Sequence lengths of the speed experiment on a GPU (<see cref="Comparison.SpeedOnGpu"/>), either mode.</summary>
    public int[] GpuLengths { get; init; } = [64, 128, 256, 512, 1024, 2048, 4096];

    /// <summary>The gap at which the trained models' gradients are measured (one of <see cref="Distances"/>).</summary>
    public required int GradientDistance { get; init; }

    /// <summary>Training time of each model of the bottleneck experiment (G2P), in seconds.</summary>
    public double BottleneckSeconds { get; init; } = 300;

    /// <summary>Every how many-th test word the bottleneck experiment scores (1: all of them).</summary>
    public int BottleneckTestStride { get; init; } = 1;

    /// <summary>
    /// The crossover experiment's time curve: the POS taggers' time limits in minutes, on all of the training documents
    /// (<see cref="Crossover"/>).
    /// </summary>
    public double[] CrossoverMinutes { get; init; } = [1, 2, 4, 8];

    /// <summary>
    /// The crossover experiment's data curve: the shares of the training documents, each trained for
    /// <see cref="CrossoverFractionMinutes"/>.
    /// </summary>
    public double[] CrossoverFractions { get; init; } = [0.125, 0.25, 0.5, 1];

    /// <summary>The time limit of the data curve's runs, in minutes.</summary>
    public double CrossoverFractionMinutes { get; init; } = 4;

    public int Embedding { get; init; } = 64;
    public int Batch { get; init; } = 32;
    public float LearningRate { get; init; } = 2e-3f;
    public int EvaluationExamples { get; init; } = 512;
    public ulong Seed { get; init; } = 1;

    public static ComparisonOptions Quick => new()
    {
        Mode = "quick", Distances = [8, 32, 128, 256], StepsPerRun = 150, SecondsPerRun = 30, Lengths = [64, 128, 256, 512, 1024], GradientDistance = 128,
        BottleneckSeconds = 60, BottleneckTestStride = 4,
        CrossoverMinutes = [1 / 12.0, 1 / 6.0, 1 / 3.0, 2 / 3.0], CrossoverFractionMinutes = 1 / 3.0,
    };

    public static ComparisonOptions Full => new()
    {
        Mode = "full", Distances = [8, 16, 32, 64, 128, 256, 512, 1024], StepsPerRun = 400, SecondsPerRun = 150,
        Lengths = [64, 128, 256, 512, 1024, 2048, 4096], GradientDistance = 128,
        CrossoverMinutes = [1, 2, 4, 8], CrossoverFractionMinutes = 4,
    };

    public ComparisonOptions Validate()
    {
        if (Distances.Length == 0 || Distances.Any(d => d < 1)) throw new ArgumentException("Distances must be a non-empty list of positive gaps.");
        if (!Distances.Contains(GradientDistance)) throw new ArgumentException($"The gradient distance {GradientDistance} must be one of the distances trained.");
        if (Lengths.Length == 0 || Lengths.Any(t => t < 2)) throw new ArgumentException("Lengths must be a non-empty list of lengths ≥ 2.");
        if (GpuLengths.Length == 0 || GpuLengths.Any(t => t < 2))
            throw new ArgumentException("GpuLengths must be a non-empty list of lengths ≥ 2.");
        if (BottleneckSeconds <= 0 || BottleneckTestStride <= 0) throw new ArgumentException("BottleneckSeconds and BottleneckTestStride must be positive.");
        if (CrossoverMinutes.Length == 0 || CrossoverMinutes.Any(m => !(m > 0 && double.IsFinite(m))))
            throw new ArgumentException("CrossoverMinutes must be a non-empty list of positive times.");
        if (CrossoverFractions.Length == 0 || CrossoverFractions.Any(f => !(f > 0 && f <= 1)))
            throw new ArgumentException("CrossoverFractions must be a non-empty list of shares in (0, 1].");
        if (!(CrossoverFractionMinutes > 0 && double.IsFinite(CrossoverFractionMinutes)))
            throw new ArgumentException($"CrossoverFractionMinutes must be positive; got {CrossoverFractionMinutes}.");
        if (StepsPerRun <= 0) throw new ArgumentException($"StepsPerRun must be positive; got {StepsPerRun}.");
        if (SecondsPerRun <= 0) throw new ArgumentException($"SecondsPerRun must be positive; got {SecondsPerRun}.");
        return this;
    }
}

/// <summary>One model trained on the recall task at one distance.</summary>
public sealed record RecallResult(SequenceModelKind Model, int Distance, double Accuracy, int Steps, double Seconds, long Parameters, float FinalLoss);

/// <summary>Training speed of one model at one sequence length (forward, backward and an AdamW step).</summary>
public sealed record SpeedResult(SequenceModelKind Model, int Length, double MillisecondsPerStep, double TokensPerSecond);

/// <summary>The speed experiment on a GPU: the device's name as the driver reports it, and the results.</summary>
public sealed record GpuSpeedResults(string Device, IReadOnlyList<SpeedResult> Results);

/// <summary>‖∂loss/∂x_t‖ (mean over a batch) for the input embedding at each distance from the output.</summary>
public sealed record GradientResult(SequenceModelKind Model, int Distance, double[] NormByDistance);

/// <summary>
/// The explainers' claims about attention and recurrence, measured: long-range recall accuracy against the gap, training
/// speed against the sequence length, and how the gradient reaching each input decays with its distance from the output.
/// Every model has about the same number of parameters and the same training time.
/// </summary>
public sealed class Comparison(ComparisonOptions options, Action<string>? log = null)
{
    readonly ComparisonOptions _options = options.Validate();
    readonly Action<string> _log = log ?? (_ => { });
    readonly Dictionary<SequenceModelKind, SequenceClassifier> _gradientModels = [];

    public static readonly SequenceModelKind[] Models = [SequenceModelKind.Rnn, SequenceModelKind.Lstm, SequenceModelKind.Gru, SequenceModelKind.Transformer];

    int MaxLength => Math.Max(RecallTask.Length(_options.Distances.Max()), _options.Lengths.Max());

    SequenceClassifier NewModel(SequenceModelKind kind, Generator rng) =>
        SequenceClassifier.Create(kind, RecallTask.VocabSize, RecallTask.Keys, _options.Embedding, MaxLength, rng);

    /// <summary>Each model trained for the same time at each gap, then its accuracy on fresh examples.</summary>
    public List<RecallResult> LongRange(CancellationToken cancel = default)
    {
        var results = new List<RecallResult>();
        foreach (int d in _options.Distances)
            foreach (var kind in Models)
            {
                cancel.ThrowIfCancellationRequested();
                var rng = new Generator(_options.Seed * 7919 + (ulong)d * 31 + (ulong)kind);
                var model = NewModel(kind, rng);
                var (steps, seconds, loss) = Train(model, d, rng, cancel);
                double accuracy = Accuracy(model, d, new Generator(_options.Seed + 1000 + (ulong)d));
                results.Add(new RecallResult(kind, d, accuracy, steps, seconds, model.ParameterCount(), loss));
                _log($"recall d={d,4} {kind,-11} accuracy {accuracy:P1} after {steps} steps in {seconds:F1} s");
                if (d == _options.GradientDistance) _gradientModels[kind] = model;
            }
        return results;
    }

    /// <summary>
    /// AdamW (warmup, then constant), clipping at 1, batches of fresh examples, for the step budget — or less, when the
    /// time cap is reached or the model has been perfect on 20 batches in a row.
    /// </summary>
    (int Steps, double Seconds, float Loss) Train(SequenceClassifier model, int distance, Generator rng, CancellationToken cancel)
    {
        int b = _options.Batch, t = RecallTask.Length(distance);
        var ids = new int[b * t]; var labels = new int[b];
        var optimizer = new AdamW(model.Parameters().Select(p => (p, p.Rank >= 2)), _options.LearningRate, weightDecay: 0.01f);
        var clock = Stopwatch.StartNew();
        int step = 0, perfect = 0;
        float loss = float.NaN;
        model.Train();
        while (step < _options.StepsPerRun && clock.Elapsed.TotalSeconds < _options.SecondsPerRun && perfect < 20)
        {
            cancel.ThrowIfCancellationRequested();
            RecallTask.Sample(rng, b, distance, ids, labels);
            optimizer.ZeroGrad();
            using (TensorScope.Begin())
            {
                var logits = model.Forward(ids, b, t);
                var lossTensor = Tensor.CrossEntropy(logits, labels);
                lossTensor.Backward();
                loss = lossTensor.Item();
                perfect = Correct(logits, labels) == b ? perfect + 1 : 0;   // 20 perfect batches in a row: it has learned the task
            }
            GradientClipping.ClipGradNorm(model.Parameters(), 1f);
            optimizer.LearningRate = _options.LearningRate * Math.Min(1f, (step + 1) / 20f);
            optimizer.Step();
            step++;
        }
        return (step, clock.Elapsed.TotalSeconds, loss);
    }

    double Accuracy(SequenceClassifier model, int distance, Generator rng)
    {
        int b = _options.Batch, t = RecallTask.Length(distance), correct = 0, seen = 0;
        var ids = new int[b * t]; var labels = new int[b];
        model.Eval();
        using (GradMode.NoGrad())
            while (seen < _options.EvaluationExamples)
            {
                RecallTask.Sample(rng, b, distance, ids, labels);
                using var scope = TensorScope.Begin();
                correct += Correct(model.Forward(ids, b, t), labels);
                seen += b;
            }
        model.Train();
        return correct / (double)seen;
    }

    static int Correct(Tensor logits, int[] labels)
    {
        var l = logits.ToArray();
        int k = logits.Size(1), correct = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            int best = 0;
            for (int j = 1; j < k; j++) if (l[i * k + j] > l[i * k + best]) best = j;
            if (best == labels[i]) correct++;
        }
        return correct;
    }

    /// <summary>The batch of the speed experiment, on either device.</summary>
    public const int SpeedBatch = 8;

    /// <summary>
    /// Milliseconds per training step (forward, backward, AdamW) and tokens per second at each length, batch 8, the
    /// median of a few steps after warming up; a length is skipped for a model once a step takes over 20 s.
    /// </summary>
    public List<SpeedResult> Speed(CancellationToken cancel = default) => Sweep(_options.Lengths, "CPU", model =>
    {
        var optimizer = new AdamW(model.Parameters(), 1e-4f);
        return ((ids, labels, t) =>
        {
            optimizer.ZeroGrad();
            using (TensorScope.Begin()) Tensor.CrossEntropy(model.Forward(ids, SpeedBatch, t), labels).Backward();
            optimizer.Step();
        }, null);
    }, cancel);

    /// <summary>
    /// <see cref="Speed"/> on <paramref name="device"/> at <see cref="ComparisonOptions.GpuLengths"/>: each step runs the
    /// same work on the device — forward with the loss read back, backward, an AdamW step over the device's flat
    /// buffers — timed until the device has finished it. The recurrent models are the CPU models uploaded
    /// (<see cref="GpuRecurrentClassifier"/>); the Transformer is <see cref="GpuGpt"/> in <see cref="GpuTransformer"/>'s
    /// configuration (<see cref="GpuTransformerDifferences"/> says how it differs from the CPU's).
    /// </summary>
    public List<SpeedResult> SpeedOnGpu(GpuDevice device, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        int updates = 0;
        return Sweep(_options.GpuLengths, "GPU", model =>
        {
            if (model.Kind == SequenceModelKind.Transformer)
            {
                var gpt = GpuGpt.From(device, new Gpt(GpuTransformer(_options.Embedding, _options.GpuLengths.Max()),
                    new Generator(_options.Seed + 78)));
                return ((ids, _, t) =>
                {
                    gpt.ZeroGrad();
                    gpt.Forward(ids, ids, SpeedBatch, t);   // the tokens themselves as targets: only the time counts
                    gpt.Backward();
                    gpt.AdamWStep(1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, ++updates);
                    device.Synchronize();
                }, gpt);
            }
            var recurrent = GpuRecurrentClassifier.From(device, model.Embedding, model.Recurrent!, model.Head);
            return ((ids, labels, t) =>
            {
                recurrent.ZeroGrad();
                recurrent.Forward(ids, labels, SpeedBatch, t);
                recurrent.Backward();
                recurrent.AdamWStep(1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, ++updates);
                device.Synchronize();
            }, recurrent);
        }, cancel);
    }

    /// <summary>
    /// The Transformer of the GPU speed experiment: <see cref="GpuGpt"/> with the CPU Transformer's depth (2 pre-LN
    /// layers), width (the embedding), 4 heads, biases, no dropout, the recall task's vocabulary, and a context of the
    /// longest length measured.
    /// </summary>
    public static GptConfig GpuTransformer(int embedding, int context) => new()
    {
        Layers = 2, Width = embedding, Heads = 4, ContextLength = context, VocabSize = RecallTask.VocabSize, Bias = true,
        Dropout = 0f,
    };

    /// <summary>How <see cref="GpuTransformer"/>'s step differs from the CPU Transformer's, in one sentence.</summary>
    public const string GpuTransformerDifferences =
        "The GPU Transformer is the GPU GPT of the same depth, width and heads, so it differs from the CPU's in four " +
        "ways, each adding work rather than removing it: learned positions instead of sinusoidal ones, a feed-forward " +
        "width of 4·E instead of 2·E, GELU in its tanh form, and a head tied to the embedding that scores every " +
        "position over the vocabulary instead of a linear head on the last position.";

    /// <summary>One training step of a model at length T (ids B·T batch-major, labels B), finished when it returns.</summary>
    delegate void SpeedStep(int[] ids, int[] labels, int time);

    /// <summary>
    /// The speed experiment's loop on one device: per model (the same seeded models on every device), per length, the
    /// median step time of <see cref="MedianMilliseconds"/>; a model's longer lengths are skipped once a step takes
    /// over 20 s. <paramref name="prepare"/> gives a model's step and what to dispose after it.
    /// </summary>
    List<SpeedResult> Sweep(int[] lengths, string where, Func<SequenceClassifier, (SpeedStep Step, IDisposable? Owner)> prepare,
        CancellationToken cancel)
    {
        var results = new List<SpeedResult>();
        foreach (var kind in Models)
        {
            var rng = new Generator(_options.Seed + 77);
            var (step, owner) = prepare(NewModel(kind, rng));
            using var _ = owner;
            foreach (int t in lengths)
            {
                cancel.ThrowIfCancellationRequested();
                var ids = new int[SpeedBatch * t]; var labels = new int[SpeedBatch];
                for (int i = 0; i < ids.Length; i++) ids[i] = (int)(rng.NextUInt64() % RecallTask.VocabSize);
                double ms = MedianMilliseconds(() => step(ids, labels, t));
                double tokensPerSecond = SpeedBatch * t / (ms / 1000);
                results.Add(new SpeedResult(kind, t, ms, tokensPerSecond));
                _log($"speed {where} T={t,5} {kind,-11} {ms,9:F1} ms/step, {tokensPerSecond,10:N0} tokens/s");
                if (ms > 20_000) break;
            }
        }
        return results;
    }

    /// <summary>
    /// The median milliseconds of a few runs of <paramref name="step"/>: 5, or fewer when slow, after warming up for half
    /// a second (at most 20 runs, at least one). A fresh process runs unoptimised code until the JIT's second tier has
    /// compiled the hot methods in the background; one warm-up run was not enough (`--parallelism-only` measured the
    /// first lengths 2 to 10 times too slow).
    /// </summary>
    static double MedianMilliseconds(Action step)
    {
        double Time()
        {
            var clock = Stopwatch.StartNew();
            step();
            return clock.Elapsed.TotalMilliseconds;
        }
        var warming = Stopwatch.StartNew();
        double last;
        int runs = 0;
        do { last = Time(); runs++; } while (warming.Elapsed.TotalSeconds < 0.5 && runs < 20);
        int repeats = last > 2000 ? 1 : last > 500 ? 3 : 5;
        var times = Enumerable.Range(0, repeats).Select(_ => Time()).Order().ToArray();
        return times[times.Length / 2];
    }

    /// <summary>
    /// For each model trained at <see cref="ComparisonOptions.GradientDistance"/> (run <see cref="LongRange"/> first):
    /// the mean over a batch of ‖∂loss/∂x_t‖, the gradient of the loss at the output with respect to the input embedding
    /// at position t, by distance T − 1 − t from the output.
    /// </summary>
    public List<GradientResult> Gradients()
    {
        if (_gradientModels.Count == 0) throw new InvalidOperationException("Train the models first: the gradients are measured on the models LongRange trained.");
        int d = _options.GradientDistance, b = 64, t = RecallTask.Length(d);
        var ids = new int[b * t]; var labels = new int[b];
        RecallTask.Sample(new Generator(_options.Seed + 5), b, d, ids, labels);
        var results = new List<GradientResult>();
        foreach (var kind in Models)
        {
            var model = _gradientModels[kind];
            using var scope = TensorScope.Begin();
            Tensor embedded;
            using (GradMode.NoGrad()) embedded = model.Embed(ids, b, t);
            embedded.RequiresGrad = true;                                         // a leaf: its gradient is ∂loss/∂x
            Tensor.CrossEntropy(model.Forward(embedded), labels).Backward();
            var g = embedded.Grad!.ToArray();
            int e = embedded.Size(2);
            var byDistance = new double[t];
            for (int bi = 0; bi < b; bi++)
                for (int ti = 0; ti < t; ti++)
                {
                    double sq = 0;
                    for (int k = 0; k < e; k++) { double v = g[(bi * t + ti) * e + k]; sq += v * v; }
                    byDistance[t - 1 - ti] += Math.Sqrt(sq) / b;
                }
            model.ZeroGrad();
            results.Add(new GradientResult(kind, d, byDistance));
            _log($"gradient {kind,-11} ‖∂L/∂x‖ at the output {byDistance[0]:E2}, at the key ({t - 1} back) {byDistance[t - 1]:E2}");
        }
        return results;
    }
}
