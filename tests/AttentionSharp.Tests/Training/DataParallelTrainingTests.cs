using AttentionSharp.Data;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Tests.Training;

/// <summary>
/// N ranks × batch b train like one process × batch N·b: same losses, gradient norms, validation losses and weights,
/// up to float rounding. The ranks here are threads (the MPI tests run real processes under mpirun).
/// </summary>
public class DataParallelTrainingTests
{
    const string Text = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat by a log. ";
    const int Time = 16, RankBatch = 2, Steps = 5;
    // Sums over 2·b rows split in two and added in another order: float rounding, amplified a little by AdamW's steps.
    const double Atol = 2e-5, Rtol = 2e-5;

    sealed record Result(float[] Losses, float[] Norms, float Validation, float[] Weights);

    static Result Train(int ranks, int batch, AttentionSharp.Distributed.ICommunicator? communicator, float dropout)
    {
        var tokenizer = CharTokenizer.Train(Text);
        var tokens = tokenizer.Encode(string.Concat(Enumerable.Repeat(Text, 20)));
        var model = new Gpt(new GptConfig { ContextLength = Time, Layers = 2, Heads = 2, Width = 16, VocabSize = tokenizer.VocabSize, Dropout = dropout }, new Generator(5));
        var batches = new LanguageModelBatches(model, new TokenBatcher(tokens, batch * ranks, Time), new Generator(9));
        var options = new TrainOptions { Steps = Steps, Batch = batch, LearningRate = 1e-2f, WarmupSteps = 2, Seed = 5 };
        var trainer = new Trainer(model, model.ParameterGroups(), batches, options, communicator);
        var losses = new float[Steps]; var norms = new float[Steps];
        for (int s = 0; s < Steps; s++)
            (losses[s], norms[s]) = trainer.TrainStep();
        // 7 windows in batches of 4 rows: the last has 3, so one rank scores 1 row of it.
        var valid = new TokenBatcher(tokens[..(7 * Time + 1)], batch * ranks, Time).Sequential().Select(b => (b.X, b.Y));
        float validation = LanguageModelTask.MeanLoss(model, valid, Time, communicator);
        return new Result(losses, norms, validation, [.. model.Parameters().SelectMany(p => p.Data.ToArray())]);
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)] // each rank's dropout masks are the global batch's masks at its rows
    public void TwoRanksOfBatchTwoTrainAsOneProcessOfBatchFour(float dropout)
    {
        var single = Train(1, 2 * RankBatch, null, dropout);
        var ranks = ThreadGroupCommunicator.Run(2, comm => Train(2, RankBatch, comm, dropout));
        foreach (var (r, result) in ranks.Index())
        {
            TensorAssert.Close(single.Losses, result.Losses, Atol, Rtol, $"losses on rank {r}");
            TensorAssert.Close(single.Norms, result.Norms, Atol, Rtol, $"gradient norms on rank {r}");
            TensorAssert.Close([single.Validation], [result.Validation], Atol, Rtol, $"validation loss on rank {r}");
            TensorAssert.Close(single.Weights, result.Weights, Atol, Rtol, $"weights after {Steps} steps on rank {r}");
        }
        Assert.Equal(ranks[0].Weights, ranks[1].Weights); // identical updates from identical averaged gradients
    }
}
