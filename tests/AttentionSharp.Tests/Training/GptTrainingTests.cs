using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.Generation;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Tests.Training;

/// <summary>The main job's library path on a tiny model: learning, checkpoints, exact resume, reproducible sampling.</summary>
public class GptTrainingTests
{
    const string Text = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat by a log. ";
    static readonly GptConfig Shape = new() { ContextLength = 16, Layers = 2, Heads = 2, Width = 16 };
    static readonly TrainOptions Options = new() { Steps = 40, Batch = 4, LearningRate = 1e-2f, WarmupSteps = 5, EvalInterval = 0, Seed = 3 };

    sealed record Run(Gpt Model, Trainer Trainer, Generator DataRng, CharTokenizer Tokenizer);

    static Run NewRun(float dropout = 0f)
    {
        var tokenizer = CharTokenizer.Train(Text);
        var tokens = tokenizer.Encode(string.Concat(Enumerable.Repeat(Text, 20)));
        var model = new Gpt(Shape with { VocabSize = tokenizer.VocabSize, Dropout = dropout }, new Generator(Options.Seed));
        var dataRng = new Generator(99);
        var batches = new LanguageModelBatches(model, new TokenBatcher(tokens, Options.Batch, Shape.ContextLength), dataRng);
        return new Run(model, new Trainer(model, model.ParameterGroups(), batches, Options), dataRng, tokenizer);
    }

    static float Step(Run run) => run.Trainer.TrainStep().Loss;

    [Fact]
    public void AFewStepsLowerTheLoss()
    {
        var run = NewRun();
        var losses = Enumerable.Range(0, 30).Select(_ => Step(run)).ToArray();
        Assert.True(losses[^5..].Average() < losses[..5].Average() - 0.3, $"loss did not fall: {string.Join(", ", losses.Select(l => l.ToString("F3")))}");
    }

    [Fact]
    public void ResumingFromACheckpointContinuesBitForBit()
    {
        // 2N uninterrupted steps (with dropout, so the dropout generator's state matters too) …
        var straight = NewRun(dropout: 0.1f);
        var expected = Enumerable.Range(0, 12).Select(_ => Step(straight)).ToArray();

        // … against N steps, a checkpoint, a fresh process-like rebuild from it, and N more.
        using var dir = new TempDirectory();
        var first = NewRun(dropout: 0.1f);
        var losses = Enumerable.Range(0, 6).Select(_ => Step(first)).ToList();
        var path = Path.Combine(dir.Path, "ckpt");
        Checkpoint.Save(path, first.Model, new Checkpoint.Contents(first.Model.Config.ToJson(), first.Tokenizer.ToJson(),
            TrainingState.Capture(first.Trainer, first.Model, new JsonObject { ["data_rng"] = GeneratorState.ToJson(first.DataRng) },
                double.PositiveInfinity, Options), first.Trainer.Moments()));

        // Read for use, a checkpoint leaves the optimizer file alone; read for resuming, it gives the moments.
        Assert.Null(Checkpoint.ReadContents(path).OptimizerMoments);
        var contents = Checkpoint.ReadContents(path, optimizer: true);
        var second = NewRun(dropout: 0.1f);
        second.DataRng.Reseed(12345); // whatever it held is replaced by the checkpoint's state
        Checkpoint.LoadWeights(path, second.Model);
        var (_, taskState) = TrainingState.Restore(contents, second.Trainer, second.Model);
        second.DataRng.SetState(GeneratorState.FromJson(taskState["data_rng"], "data_rng"));
        losses.AddRange(Enumerable.Range(0, 6).Select(_ => Step(second)));

        Assert.Equal(expected, losses.ToArray());
    }

    [Fact]
    public void ACheckpointLoadsToIdenticalLogits()
    {
        var run = NewRun();
        for (int i = 0; i < 3; i++) Step(run);
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "ckpt");
        Checkpoint.Save(path, run.Model, new Checkpoint.Contents(run.Model.Config.ToJson(), run.Tokenizer.ToJson(), new JsonObject(), null));
        var contents = Checkpoint.ReadContents(path);
        var loaded = new Gpt(GptConfig.FromJson(contents.Config), new Generator(1234));
        Checkpoint.LoadWeights(path, loaded);
        var tokenizer = ITokenizer.FromJson(contents.TokenizerJson);
        var ids = tokenizer.Encode("the cat sat on a");
        run.Model.Eval(); loaded.Eval();
        Assert.Equal(run.Model.Forward(ids, 1, ids.Length).ToArray(), loaded.Forward(ids, 1, ids.Length).ToArray());
    }

    [Fact]
    public void AReplaceCutShortBetweenItsTwoRenamesIsRecovered()
    {
        var run = NewRun();
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "run", Checkpoint.LatestSubdirectory);
        Checkpoint.Save(path, run.Model, new Checkpoint.Contents(run.Model.Config.ToJson(), run.Tokenizer.ToJson(), new JsonObject { ["step"] = 5 }, null));
        // A kill after the old checkpoint was moved aside and before the new one was moved in leaves only the old one, aside.
        Directory.Move(path, path + ".old-0123");
        Assert.Equal(5, Checkpoint.ReadContents(Path.Combine(dir.Path, "run"), preferBest: false).State["step"]!.GetValue<int>());
        Assert.True(Directory.Exists(path));
    }

    [Fact]
    public void ACheckpointThatIsIncompleteOrForAnotherModelIsRefused()
    {
        var run = NewRun();
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "ckpt");
        Checkpoint.Save(path, run.Model, new Checkpoint.Contents(run.Model.Config.ToJson(), run.Tokenizer.ToJson(), new JsonObject(), null));
        var bigger = new Gpt(run.Model.Config with { Width = 32 }, new Generator(1));
        Assert.Contains("does not fit this model", Assert.Throws<CheckpointException>(() => Checkpoint.LoadWeights(path, bigger)).Message);
        File.Delete(Path.Combine(path, Checkpoint.TokenizerFile));
        Assert.Contains("tokenizer.json is missing", Assert.Throws<CheckpointException>(() => Checkpoint.ReadContents(path)).Message);
        Assert.Contains("does not exist", Assert.Throws<CheckpointException>(() => Checkpoint.ReadContents(Path.Combine(dir.Path, "nothing"))).Message);
    }

    [Fact]
    public void SamplingIsReproducibleFromASeed()
    {
        var run = NewRun();
        for (int i = 0; i < 10; i++) Step(run);
        var prompt = run.Tokenizer.Encode("the ");
        var options = new SamplingOptions { Temperature = 0.9f, TopK = 5, TopP = 0.9f };
        var a = TextGenerator.Generate(run.Model, prompt, 20, options, new Generator(7));
        var b = TextGenerator.Generate(run.Model, prompt, 20, options, new Generator(7));
        var c = TextGenerator.Generate(run.Model, prompt, 20, options, new Generator(8));
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.Equal(prompt.Length + 20, a.Length);
        var greedy = TextGenerator.Generate(run.Model, prompt, 40, new SamplingOptions { Temperature = 0 }, new Generator(1));
        Assert.Equal(greedy, TextGenerator.Generate(run.Model, prompt, 40, new SamplingOptions { Temperature = 0 }, new Generator(2)));
    }

    [Fact]
    public void CachedGreedyDecodingEqualsRecomputingEveryStep()
    {
        var run = NewRun();
        for (int i = 0; i < 10; i++) Step(run);
        var prompt = run.Tokenizer.Encode("the c");
        int steps = Shape.ContextLength - prompt.Length; // stay within one context, where the two must agree exactly
        var cached = TextGenerator.Generate(run.Model, prompt, steps, new SamplingOptions { Temperature = 0 }, new Generator(1));

        // Reference: the whole sequence through the model at every step, no cache.
        var tokens = prompt.ToList();
        int vocab = run.Model.Config.VocabSize;
        using (AttentionSharp.Autograd.GradMode.NoGrad())
        {
            using var cache = new AttentionSharp.Nn.KvCache(Shape.Layers);
            var stepLogits = run.Model.Forward(prompt, 1, prompt.Length, cache).ToArray()[^vocab..];
            for (int i = 0; i < steps; i++)
            {
                var full = run.Model.Forward(tokens.ToArray(), 1, tokens.Count).ToArray()[^vocab..];
                TensorAssert.Close(full, stepLogits, 1e-4, 0, $"logits at step {i}");
                int next = Array.IndexOf(full, full.Max());
                tokens.Add(next);
                if (i < steps - 1) stepLogits = run.Model.Forward([next], 1, 1, cache).ToArray();
            }
        }
        Assert.Equal(tokens.ToArray(), cached);
        // Past the context the generator keeps going (the cache is rebuilt from the last half-context).
        Assert.Equal(prompt.Length + 40, TextGenerator.Generate(run.Model, prompt, 40, new SamplingOptions { Temperature = 0 }, new Generator(1)).Length);
    }

    [Theory]
    [InlineData(AttentionSharp.Nn.PositionalEncodingKind.Learned)]
    [InlineData(AttentionSharp.Nn.PositionalEncodingKind.Sinusoidal)]
    [InlineData(AttentionSharp.Nn.PositionalEncodingKind.Rotary)]
    [InlineData(AttentionSharp.Nn.PositionalEncodingKind.Alibi)]
    [InlineData(AttentionSharp.Nn.PositionalEncodingKind.None)]
    public void EveryPositionalEncodingTrainsAndDecodesWithTheCacheAsWithout(AttentionSharp.Nn.PositionalEncodingKind kind)
    {
        var config = Shape with { VocabSize = 12, PositionalEncoding = kind };
        var model = new Gpt(config, new Generator(5));
        Assert.Equal(kind == AttentionSharp.Nn.PositionalEncodingKind.Learned, model.StateDict().ContainsKey("wpe.weight"));
        int[] ids = [1, 4, 2, 7, 3, 3, 9, 0];
        var optimizer = new AdamW(model.ParameterGroups(), lr: 1e-2f);
        float first = 0, last = 0;
        for (int step = 0; step < 15; step++)
        {
            optimizer.ZeroGrad();
            var loss = model.Loss(model.Forward(ids[..^1], 1, 7), ids[1..]);
            loss.Backward();
            optimizer.Step();
            if (step == 0) first = loss.Item(); else last = loss.Item();
        }
        Assert.True(last < first, $"{kind}: the loss did not fall ({first} → {last})");
        Assert.Equal(kind, GptConfig.FromJson(config.ToJson()).PositionalEncoding);

        using (AttentionSharp.Autograd.GradMode.NoGrad())
        {
            model.Eval();
            var full = model.Forward(ids, 1, ids.Length).ToArray();
            using var cache = new AttentionSharp.Nn.KvCache(config.Layers);
            var stepwise = new List<float>(model.Forward(ids[..3], 1, 3, cache).ToArray());
            for (int t = 3; t < ids.Length; t++) stepwise.AddRange(model.Forward([ids[t]], 1, 1, cache).ToArray());
            TensorAssert.Close(full, stepwise.ToArray(), 1e-4, 0, $"{kind}: cached logits");
        }
    }

    [Fact]
    public void SamplerHonoursTopKAndTopP()
    {
        float[] logits = [0f, 3f, 2f, 1f, -1f];
        var rng = new Generator(4);
        for (int i = 0; i < 200; i++)
        {
            Assert.Contains(Sampler.Sample(logits, new SamplingOptions { TopK = 2 }, rng), new[] { 1, 2 });
            Assert.Equal(1, Sampler.Sample(logits, new SamplingOptions { TopP = 0.5f }, rng));
        }
        Assert.Equal(1, Sampler.Sample(logits, new SamplingOptions { Temperature = 0 }, rng));
        Assert.Throws<ArgumentException>(() => new SamplingOptions { TopP = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new SamplingOptions { Temperature = -1 }.Validate());
    }

    [Fact]
    public void ScheduleWarmsUpThenDecays()
    {
        var s = new CosineSchedule(1f, 10, 110, 0.1f);
        Assert.Equal(0.1f, s.RateAt(0), 6);
        Assert.Equal(1f, s.RateAt(9), 6);
        Assert.Equal(0.55f, s.RateAt(60), 3);
        Assert.Equal(0.1f, s.RateAt(110), 6);
        Assert.True(s.RateAt(30) > s.RateAt(80));
    }

    [Fact]
    public void BadConfigurationsNameTheField()
    {
        Assert.Contains("Heads", Assert.Throws<ArgumentException>(() => new GptConfig { Width = 30, Heads = 4 }.Validate()).Message);
        Assert.Contains("--batch", Assert.Throws<ArgumentException>(() => new TrainOptions { Batch = 0 }.Validate()).Message);
        var model = new Gpt(Shape with { VocabSize = 10 }, new Generator(1));
        Assert.Contains("context", Assert.Throws<ArgumentException>(() => model.Forward(new int[17], 1, 17)).Message);
    }
}
