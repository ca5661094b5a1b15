using System.Text.Json.Nodes;

namespace AttentionSharp.Training.Tasks;

/// <summary>
/// Batches epoch after epoch, each epoch in a new random order drawn from one generator, with a position that a
/// checkpoint can hold: the generator's state when the epoch began and the batches drawn since. Restoring replays the
/// epoch's order and skips those batches, so a resumed run draws exactly what an uninterrupted one would.
/// </summary>
public sealed class EpochStream<TBatch>
{
    readonly Func<Generator, IEnumerable<TBatch>> _epoch;
    readonly Generator _shuffle;
    ulong[] _epochStart;
    IEnumerator<TBatch>? _batches;
    int _drawn;

    /// <param name="epoch">One epoch's batches, in an order drawn from the generator it is given.</param>
    /// <param name="seed">The seed of the order.</param>
    public EpochStream(Func<Generator, IEnumerable<TBatch>> epoch, ulong seed)
    {
        _epoch = epoch;
        _shuffle = new Generator(seed);
        _epochStart = _shuffle.GetState();
    }

    /// <summary>The next batch, starting a new epoch when one ends.</summary>
    public TBatch Next()
    {
        if (_batches is null || !_batches.MoveNext())
        {
            _epochStart = _shuffle.GetState();
            _batches = _epoch(_shuffle).GetEnumerator();
            _drawn = 0;
            if (!_batches.MoveNext()) throw new InvalidOperationException("An epoch of the training data holds no batch.");
        }
        _drawn++;
        return _batches.Current;
    }

    public JsonObject Capture() => new()
    {
        ["epoch_rng"] = GeneratorState.ToJson(_epochStart),
        ["drawn"] = _batches is null ? 0 : _drawn,
    };

    public void Restore(JsonObject state)
    {
        _shuffle.SetState(GeneratorState.FromJson(state["epoch_rng"], "task.data.epoch_rng"));
        _epochStart = _shuffle.GetState();
        int drawn = state["drawn"] is JsonValue v && v.TryGetValue<int>(out var n) && n >= 0
            ? n : throw new IO.CheckpointException("The trainer state's 'task.data.drawn' is missing or not a count.");
        _batches = null;
        if (drawn == 0) return;
        _batches = _epoch(_shuffle).GetEnumerator();
        for (_drawn = 0; _drawn < drawn; _drawn++)
            if (!_batches.MoveNext()) throw new IO.CheckpointException($"The checkpoint's epoch position ({drawn} batches) is past the epoch's end.");
    }
}
