using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Models;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Tests.Training;

/// <summary>NaN and ±∞ in training: reported with the step and where, then the step is stopped at or skipped cleanly.</summary>
public class NonFiniteTests
{
    const string Text = "the cat sat on the mat. the dog sat on the log. ";
    const int Time = 8;

    static (Gpt Model, Trainer Trainer, Func<(int[], int[])> Next) NewRun(NonFiniteAction action, bool detectAnomaly = false)
    {
        var tokenizer = CharTokenizer.Train(Text);
        var tokens = tokenizer.Encode(string.Concat(Enumerable.Repeat(Text, 10)));
        var model = new Gpt(new GptConfig { VocabSize = tokenizer.VocabSize, ContextLength = Time, Layers = 2, Heads = 2, Width = 8 }, new Generator(4));
        var options = new TrainOptions { Steps = 10, Batch = 2, WarmupSteps = 0, EvalInterval = 0, OnNonFinite = action, DetectAnomaly = detectAnomaly };
        var batcher = new TokenBatcher(tokens, options.Batch, Time);
        var rng = new Generator(10);   // batches drawn outside the trainer
        var x = new int[options.Batch * Time]; var y = new int[x.Length];
        var trainer = new Trainer(model, model.ParameterGroups(), new LanguageModelBatches(model, batcher, new Generator(9)), options);
        return (model, trainer, () => { batcher.NextRandom(rng, x, y); return (x, y); });
    }

    [Fact]
    public void ANanLossStopsTrainingWithTheStepBeforeTheWeightsChange()
    {
        var (model, trainer, next) = NewRun(NonFiniteAction.Stop);
        trainer.TrainStep();
        var before = model.Parameters().Select(p => p.ToArray()).ToArray();
        model.LnF.Weight.Data.Fill(float.NaN);
        var e = Assert.Throws<NonFiniteException>(() => trainer.TrainStep());
        Assert.StartsWith("step 2: loss is NaN", e.Message);
        model.LnF.Weight.Data.Fill(1f);
        before[^2].AsSpan().Fill(1f); // ln_f.weight, the one poisoned and restored
        Assert.Equal(before, model.Parameters().Select(p => p.ToArray()).ToArray());
    }

    [Fact]
    public void AnInfiniteGradientIsNamedByParameter()
    {
        var (model, trainer, next) = NewRun(NonFiniteAction.Stop);
        trainer.TrainStep();
        var (x, y) = next();
        model.Loss(model.Forward(x, 2, Time), y).Backward();
        var grad = model.Blocks[1].Mlp.CFc.Weight.GradBuffer();
        grad[3] = float.PositiveInfinity;
        float norm = GradientClipping.ClipGradNorm(model.Parameters(), 1f);
        Assert.Equal("step 7: gradient of h.1.mlp.c_fc.weight is +Inf (at index 3)", NonFiniteCheck.Describe(7, 1.5f, norm, model));
        grad[3] = 0f;
        Assert.Null(NonFiniteCheck.Describe(7, 1.5f, GradientClipping.ClipGradNorm(model.Parameters(), 1f), model));
    }

    [Fact]
    public void SkippingDropsTheStepAndLeavesWeightsAndOptimizerUntouched()
    {
        var (model, trainer, next) = NewRun(NonFiniteAction.Skip);
        trainer.TrainStep();
        var weights = model.Parameters().Select(p => p.ToArray()).ToArray();
        var moments = Moments(model, trainer);
        var saved = model.Wte.Weight.ToArray();
        model.Wte.Weight.Data.Fill(float.PositiveInfinity);
        var (loss, _) = trainer.TrainStep();
        Assert.False(float.IsFinite(loss));
        Assert.StartsWith("step 2: loss is", trainer.LastSkipped);
        Assert.Equal(2, trainer.Step);
        saved.CopyTo(model.Wte.Weight.Data);
        Assert.Equal(weights, model.Parameters().Select(p => p.ToArray()).ToArray());
        Assert.Equal(moments, Moments(model, trainer));
        // Training goes on from there.
        var (after, _) = trainer.TrainStep();
        Assert.True(float.IsFinite(after));
        Assert.Null(trainer.LastSkipped);
        Assert.NotEqual(weights[0], model.Parameters().First().ToArray());
    }

    static float[][] Moments(Gpt model, Trainer trainer) =>
        trainer.Moments().SelectMany(m => new[] { m.M.ToArray(), m.V.ToArray() }).ToArray();

    [Fact]
    public void AnomalyModeNamesTheFirstOperationWithANonFiniteOutput()
    {
        var (model, trainer, next) = NewRun(NonFiniteAction.Stop, detectAnomaly: true);
        trainer.TrainStep();
        model.Blocks[1].Mlp.CFc.Bias!.Data[0] = float.NaN;
        var e = Assert.Throws<NonFiniteException>(() => trainer.TrainStep());
        // c_fc runs with ln_2 inside it (one op, LayerNormLinear): that op is the first whose output holds a NaN.
        Assert.Equal("LayerNormLinear", e.Message.Split(' ')[3]);
        Assert.StartsWith("step 2: operation LayerNormLinear produced NaN at index 0 of its output 2×8×32", e.Message);
    }

    [Fact]
    public void AnomalyModeIsScopedAndQuietOnFiniteValues()
    {
        Assert.False(GradMode.IsAnomalyDetectionEnabled);
        using (GradMode.DetectAnomaly())
        {
            Assert.True(GradMode.IsAnomalyDetectionEnabled);
            using var a = Tensor.FromArray([1f, 2f, 3f], 3);
            using var ok = a * a;
            using var inf = Tensor.FromArray([float.MaxValue, 1f, 1f], 3);
            var e = Assert.Throws<NonFiniteException>(() => inf * inf);
            Assert.Equal("Mul", e.Operation);
        }
        Assert.False(GradMode.IsAnomalyDetectionEnabled);
    }
}
