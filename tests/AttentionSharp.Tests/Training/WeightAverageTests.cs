using AttentionSharp.Training;

namespace AttentionSharp.Tests.Training;

/// <summary>
/// The moving average of the weights against a plain loop (every tail length of the vector kernel), its swap in and out
/// of the model, and its restore from a checkpoint written with the average in the model.
/// </summary>
public class WeightAverageTests
{
    static Tensor[] Parameters(int seed, params int[] sizes)
    {
        var rng = new Random(seed);
        return [.. sizes.Select(n =>
            Tensor.FromArray([.. Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f)], [n]))];
    }

    [Fact]
    public void TheAverageFollowsAPlainLoopWithTheWarmedUpDecay()
    {
        int[] sizes = [1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100];
        var parameters = Parameters(1, sizes);
        var reference = parameters.Select(p => p.ToArray().Select(x => (double)x).ToArray()).ToArray();
        var average = new WeightAverage(parameters, 0.9f);
        var rng = new Random(2);
        for (int n = 1; n <= 40; n++)
        {
            foreach (var p in parameters)   // a "step": every weight moves
                for (int j = 0; j < p.Count; j++) p.Data[j] += (float)rng.NextDouble() - 0.5f;
            average.Update();
            double d = Math.Min(0.9, (1.0 + n) / (10.0 + n));
            Assert.Equal((float)d, average.DecayAt(n), 6);
            for (int i = 0; i < parameters.Length; i++)
                for (int j = 0; j < sizes[i]; j++)
                    reference[i][j] = d * reference[i][j] + (1 - d) * parameters[i].Data[j];
        }
        Assert.Equal(40, average.Updates);
        for (int i = 0; i < parameters.Length; i++)
            for (int j = 0; j < sizes[i]; j++)
                Assert.True(Math.Abs(average.Values(i)[j] - reference[i][j]) < 1e-5,
                    $"parameter {i}[{j}]: {average.Values(i)[j]} vs {reference[i][j]}");
        Assert.Equal(0.9f, average.DecayAt(1000));   // the warm-up ends at the decay asked for
    }

    [Fact]
    public void SwappingPutsTheAverageInTheModelAndBack()
    {
        var parameters = Parameters(3, 5, 9);
        var average = new WeightAverage(parameters, 0.5f);
        var start = parameters.Select(p => p.ToArray()).ToArray();
        foreach (var p in parameters) p.Data.Fill(1f);
        average.Update();                                   // d = 2/11 at the first update
        var trained = parameters.Select(p => p.ToArray()).ToArray();
        var averaged = Enumerable.Range(0, 2).Select(i => average.Values(i).ToArray()).ToArray();
        Assert.Equal(start[0][0] * (2f / 11) + 9f / 11, averaged[0][0], 5);
        using (average.SwappedIn())
        {
            Assert.True(average.Swapped);
            Assert.Equal(averaged[1], parameters[1].ToArray());
            Assert.Equal(trained[1], average.Values(1));
            Assert.Throws<InvalidOperationException>(average.Update);   // the trained weights are out of the model
        }
        Assert.False(average.Swapped);
        Assert.Equal(trained[0], parameters[0].ToArray());
        Assert.Equal(averaged[0], average.Values(0));
    }

    [Fact]
    public void ACheckpointWrittenWithTheAverageInTheModelRestoresBothInTheirPlaces()
    {
        var parameters = Parameters(4, 6);
        var average = new WeightAverage(parameters, 0.9f);
        foreach (var p in parameters) p.Data.Fill(2f);
        average.Update();
        var trained = parameters[0].ToArray();
        var averaged = average.Values(0).ToArray();
        float[] savedWeights, savedAverage;
        using (average.SwappedIn()) (savedWeights, savedAverage) = (parameters[0].ToArray(), average.Values(0).ToArray());

        // A new process: the checkpoint's weights (the average) in the model, then its "average" (the trained weights).
        var restoredParameters = Parameters(5, 6);
        savedWeights.CopyTo(restoredParameters[0].Data);
        var restored = new WeightAverage(restoredParameters, 0.9f);
        restored.Restore([savedAverage], updates: 1, inWeights: true);
        Assert.Equal(trained, restoredParameters[0].ToArray());
        Assert.Equal(averaged, restored.Values(0));
        Assert.Equal(1, restored.Updates);
        Assert.False(restored.Swapped);
        Assert.Throws<ArgumentException>(() => restored.Restore([savedAverage, savedAverage], 1, false));
        Assert.Throws<ArgumentException>(() => restored.Restore([new float[5]], 1, false));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WeightAverage(parameters, 1f));
    }
}
