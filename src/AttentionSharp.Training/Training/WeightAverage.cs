using System.Numerics.Tensors;

namespace AttentionSharp.Training;

/// <summary>
/// An exponential moving average of a model's weights (Polyak averaging, as timm's ModelEmaV2 and TensorFlow's
/// ExponentialMovingAverage keep it): after every optimizer step, a ← d·a + (1 − d)·w, with the decay warmed up as
/// d = min(decay, (1 + n) / (10 + n)) at the n-th update so that a short run's average is not dominated by its random
/// start. Validation, the best checkpoint and the closing figures read the average (<see cref="Swap"/> puts it in the
/// model and takes the trained weights out); training reads the trained weights.
/// </summary>
public sealed class WeightAverage
{
    readonly Tensor[] _parameters;
    readonly float[][] _average;

    /// <param name="parameters">The weights to average, each starting as the average.</param>
    /// <param name="decay">The decay d in [0, 1); 0.999 averages over about the last thousand steps.</param>
    public WeightAverage(IEnumerable<Tensor> parameters, float decay)
    {
        if (!(decay >= 0 && decay < 1))
            throw new ArgumentOutOfRangeException(nameof(decay), decay, "The decay must be in [0, 1).");
        Decay = decay;
        _parameters = [.. parameters];
        _average = [.. _parameters.Select(p => p.Data.ToArray())];
    }

    /// <summary>The decay the warmed-up rate approaches.</summary>
    public float Decay { get; }

    /// <summary>Updates so far (checkpoints keep it, so the warm-up continues where it was).</summary>
    public int Updates { get; set; }

    /// <summary>True while <see cref="Swap"/> has put the average in the model.</summary>
    public bool Swapped { get; private set; }

    /// <summary>The decay of update <paramref name="n"/> (1-based).</summary>
    public float DecayAt(int n) => Math.Min(Decay, (1f + n) / (10f + n));

    /// <summary>Folds the model's current weights into the average (after an optimizer step).</summary>
    public void Update()
    {
        if (Swapped) throw new InvalidOperationException("The average is in the model; swap it back before updating it.");
        float d = DecayAt(++Updates);
        Kernels.Parallel.ForEachTensor(_parameters.Length, i => _average[i].Length,
            i => TensorPrimitives.Lerp(_average[i], _parameters[i].Data, 1 - d, _average[i]));   // a + (w − a)(1 − d)
    }

    /// <summary>Exchanges the model's weights and the average (a second call undoes the first).</summary>
    public void Swap()
    {
        Exchange();
        Swapped = !Swapped;
    }

    /// <summary>
    /// Restores a checkpoint's average (<see cref="Values"/> of each parameter, in order) and update count, after the
    /// model's weights were loaded from the same checkpoint; <paramref name="inWeights"/>: the checkpoint was saved
    /// while the average was in the model (a best checkpoint), so its weights and average are exchanged back.
    /// </summary>
    public void Restore(IReadOnlyList<float[]> values, int updates, bool inWeights)
    {
        if (values.Count != _average.Length)
            throw new ArgumentException(
                $"The saved average has {values.Count} tensors; the model has {_average.Length} parameters.");
        for (int i = 0; i < values.Count; i++)
        {
            if (values[i].Length != _average[i].Length)
                throw new ArgumentException(
                    $"The saved average of parameter {i} has {values[i].Length} values, not {_average[i].Length}.");
            values[i].CopyTo(_average[i], 0);
        }
        Updates = updates;
        Swapped = false;
        if (inWeights) Exchange();
    }

    void Exchange()
    {
        for (int i = 0; i < _parameters.Length; i++)
        {
            var weights = _parameters[i].Data;
            var average = _average[i].AsSpan();
            for (int j = 0; j < average.Length; j++) (weights[j], average[j]) = (average[j], weights[j]);
        }
    }

    /// <summary>The average in the model until the returned scope is disposed.</summary>
    public IDisposable SwappedIn()
    {
        Swap();
        return new Undo(this);
    }

    /// <summary>Parameter <paramref name="i"/>'s average (its trained weights while <see cref="Swapped"/>).</summary>
    public float[] Values(int i) => _average[i];

    sealed class Undo(WeightAverage average) : IDisposable
    {
        bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            average.Swap();
        }
    }
}
