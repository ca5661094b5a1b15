// Source: the length penalty of Wu et al., "Google's Neural Machine Translation System" (2016), §7.
using AttentionSharp.Autograd;
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>
/// What the sequence-to-sequence models share (<see cref="EncoderDecoder"/>, <see cref="RecurrentSeq2Seq"/>), so one
/// trainer and one evaluation serve both. Sources are (B, S) ids, decoder inputs (B, T) ids starting with BOS.
/// </summary>
public interface ISequenceToSequence
{
    /// <summary>The padding id (ignored by the loss), BOS and EOS.</summary>
    int PadId { get; }
    int BosId { get; }
    int EosId { get; }

    /// <summary>Teacher forcing: source (B, S) and decoder input (B, T) → logits (B, T, V).</summary>
    Tensor Forward(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> target, int targetLength, int batch);

    /// <summary>
    /// The training loss of <paramref name="logits"/> (B, T, V) against the targets (B, T), averaged over non-padding
    /// targets.
    /// </summary>
    Tensor Loss(Tensor logits, ReadOnlySpan<int> targets);

    /// <summary>
    /// Teacher forcing's loss from ids: source (B, S), decoder input and targets (B, T) → <see cref="Loss"/> of
    /// <see cref="Forward"/>'s logits. A model may skip the work of padding positions (the value is the same).
    /// </summary>
    Tensor TeacherForcingLoss(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> input, ReadOnlySpan<int> targets,
        int targetLength, int batch) =>
        Loss(Forward(source, sourceLength, input, targetLength, batch), targets);

    /// <summary>Greedy decoding of B sources of length S, at most <paramref name="maxLength"/> tokens each.</summary>
    GreedyResult Greedy(ReadOnlySpan<int> source, int batch, int sourceLength, int maxLength);

    /// <summary>
    /// Beam search for B sources of length S at once (the beams of all decoded as one batch); per source, the
    /// hypotheses, best first.
    /// </summary>
    IReadOnlyList<BeamHypothesis>[] BeamSearchBatch(ReadOnlySpan<int> source, int batch, int sourceLength, int beamWidth,
        int maxLength, double lengthPenalty = 0);

    /// <summary>log p(tokens | source) under teacher forcing, for one source.</summary>
    double LogProbability(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> tokens);
}

/// <summary>
/// A decoder between steps, for n rows: <see cref="Step"/> feeds each row's newest token and returns the next token's
/// logits (n × V); <see cref="Reorder"/> makes row i continue from old row rows[i] (rows may repeat or be dropped), as
/// beam search needs when it prunes and extends beams. Both run inside a scope of their own that ends with the call, so
/// whatever the state keeps between steps must be detached from it.
/// </summary>
internal abstract class DecodingState : IDisposable
{
    public abstract float[] Step(int[] tokens);

    public abstract void Reorder(int[] rows);

    public virtual void Dispose() { }
}

/// <summary>
/// A tensor a <see cref="DecodingState"/> keeps between steps (a recurrent state, the encoder's memory): each new value
/// outlives the step's scope and replaces the one before, which is released, so a search holds one copy however many
/// steps it takes. The first value is the caller's and is never released here.
/// </summary>
internal sealed class HeldTensor(Tensor initial)
{
    bool _owned;

    public Tensor Value { get; private set; } = initial;

    /// <summary>Keeps <paramref name="next"/> (detached from its scope) in place of the current value.</summary>
    public void Set(Tensor next)
    {
        next.DetachFromScope();
        Release();
        (Value, _owned) = (next, true);
    }

    /// <summary>Keeps the current value's slices <paramref name="rows"/> along <paramref name="dim"/>, in that order.</summary>
    public void Select(int dim, int[] rows) => Set(Value.IndexSelect(dim, rows));

    public void Release()
    {
        if (_owned) Value.Dispose();
        _owned = false;
    }
}

/// <summary>Greedy decoding and beam search over any <see cref="DecodingState"/>.</summary>
internal static class Decoding
{
    /// <summary>
    /// Greedy decoding of <paramref name="batch"/> rows: start from BOS and append the most probable allowed token until
    /// every row has produced EOS or <paramref name="maxLength"/> tokens. A finished row keeps being fed EOS so the batch
    /// stays rectangular.
    /// </summary>
    public static GreedyResult Greedy(DecodingState state, int batch, int maxLength, int vocab, int bosId, int eosId,
        Func<int, bool> allowed)
    {
        var tokens = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        var fed = Enumerable.Repeat(bosId, batch).ToArray();
        var finished = new bool[batch];
        var stepLogits = new List<float[]>();
        for (int step = 0; step < maxLength && !finished.All(f => f); step++)
        {
            float[] last;
            using (TensorScope.Begin()) last = state.Step(fed);                                      // (B, V)
            stepLogits.Add(last);
            for (int b = 0; b < batch; b++)
            {
                int next = finished[b] ? eosId : ArgMaxAllowed(last.AsSpan(b * vocab, vocab), allowed);
                if (!finished[b]) tokens[b].Add(next);
                finished[b] |= next == eosId;
                fed[b] = next;
            }
        }
        return new GreedyResult([.. tokens.Select(t => t.ToArray())], [.. stepLogits]);
    }

    /// <summary>
    /// Beam search for each of <paramref name="sources"/> sources at once (the state starts with one row per source):
    /// per source, keep the <paramref name="beamWidth"/> most probable prefixes; each step extends every live beam by
    /// every allowed token and keeps the best (beam width − finished) candidates by log-probability; a candidate ending in
    /// EOS is finished. Finished hypotheses are ranked by log p / lp with lp = ((5 + |Y|)/6)^α (Wu et al. 2016),
    /// α = <paramref name="lengthPenalty"/>; beams still open at <paramref name="maxLength"/> count as finished. Width 1
    /// is greedy decoding. The live beams of all sources are decoded as one batch, each source's beams in consecutive rows.
    /// Returns each source's hypotheses, best first.
    /// </summary>
    /// <remarks>
    /// Beam search is a heuristic: a wider beam usually finds a more probable sequence than greedy decoding, but nothing
    /// guarantees it, because the greedy prefix can be pruned on the way.
    /// </remarks>
    public static IReadOnlyList<BeamHypothesis>[] Beam(DecodingState state, int sources, int beamWidth, int maxLength,
        double lengthPenalty, int vocab, int bosId, int eosId, Func<int, bool> allowed)
    {
        if (beamWidth <= 0)
            throw new ArgumentOutOfRangeException(nameof(beamWidth), beamWidth, "The beam width must be positive.");
        if (!(lengthPenalty >= 0))
            throw new ArgumentOutOfRangeException(nameof(lengthPenalty), lengthPenalty,
                "The length penalty α must be non-negative.");
        var live = Enumerable.Range(0, sources).Select(_ => new List<(int[] Tokens, double LogProb)> { ([], 0.0) }).ToArray();
        var finished = Enumerable.Range(0, sources).Select(_ => new List<BeamHypothesis>()).ToArray();
        BeamHypothesis Finish(int[] tokens, double logProb) =>
            new(tokens, logProb, logProb / Math.Pow((5.0 + tokens.Length) / 6.0, lengthPenalty));    // log p / lp(|Y|)

        for (int step = 0; step < maxLength && live.Any(l => l.Count > 0); step++)
        {
            float[] logits;
            var fed = live.SelectMany(l => l.Select(beam => beam.Tokens.Length == 0 ? bosId : beam.Tokens[^1])).ToArray();
            using (TensorScope.Begin()) logits = state.Step(fed);                                    // (Σ live, V)
            var parents = new List<int>();
            int first = 0;                                                                           // the source's first row
            for (int s = 0; s < sources; s++)
            {
                var candidates = new List<(int Beam, int Token, double LogProb)>();
                for (int i = 0; i < live[s].Count; i++)
                {
                    var logp = LogSoftmax(logits.AsSpan((first + i) * vocab, vocab));
                    for (int v = 0; v < vocab; v++)
                        if (allowed(v)) candidates.Add((i, v, live[s][i].LogProb + logp[v]));
                }
                var next = new List<(int[] Tokens, double LogProb)>();
                // OrderByDescending is stable: ties keep (beam, token) order, as greedy's first-maximum argmax.
                var kept = candidates.OrderByDescending(c => c.LogProb).Take(beamWidth - finished[s].Count);
                foreach (var (beam, token, logProb) in kept)
                {
                    int[] tokens = [.. live[s][beam].Tokens, token];
                    if (token == eosId) finished[s].Add(Finish(tokens, logProb));
                    else { next.Add((tokens, logProb)); parents.Add(first + beam); }
                }
                first += live[s].Count;
                live[s] = next;
            }
            if (parents.Count > 0 && step + 1 < maxLength)
                using (TensorScope.Begin()) state.Reorder([.. parents]);                             // keeps only the state
        }
        return [.. Enumerable.Range(0, sources).Select(s =>
            (IReadOnlyList<BeamHypothesis>)[.. finished[s].Concat(live[s].Select(beam => Finish(beam.Tokens, beam.LogProb)))
                .OrderByDescending(h => h.Score)])];
    }

    /// <summary>log softmax in double: x_v − log Σ exp(x − max) − max.</summary>
    public static double[] LogSoftmax(ReadOnlySpan<float> x)
    {
        double max = double.NegativeInfinity;
        foreach (var v in x) max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in x) sum += Math.Exp(v - max);
        double lse = max + Math.Log(sum);
        var result = new double[x.Length];
        for (int i = 0; i < x.Length; i++) result[i] = x[i] - lse;
        return result;
    }

    /// <summary>log p(tokens | source) from teacher-forced logits (1, T, V) for the decoder input BOS + tokens[..^1].</summary>
    public static double SumLogProb(float[] logits, ReadOnlySpan<int> tokens, int vocab)
    {
        double total = 0;
        for (int t = 0; t < tokens.Length; t++) total += LogSoftmax(logits.AsSpan(t * vocab, vocab))[tokens[t]];
        return total;
    }

    static int ArgMaxAllowed(ReadOnlySpan<float> logits, Func<int, bool> allowed)
    {
        int best = -1;
        for (int v = 0; v < logits.Length; v++)
            if (allowed(v) && (best < 0 || logits[v] > logits[best])) best = v;
        return best;
    }
}

/// <summary>Decoding runs as inference: no autograd history and no dropout; the model's mode is restored afterwards.</summary>
internal readonly struct Inference : IDisposable
{
    readonly Module _model;
    readonly bool _wasTraining;
    readonly GradMode.Scope _noGrad;

    public Inference(Module model)
    {
        _model = model;
        _wasTraining = model.Training;
        model.Eval();
        _noGrad = GradMode.NoGrad();
    }

    public void Dispose()
    {
        _noGrad.Dispose();
        _model.Train(_wasTraining);
    }
}
