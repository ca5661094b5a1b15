using AttentionSharp.Autograd;
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>
/// Sequence-to-sequence models that decode as one: at every step each member reads the same tokens, and the ensemble's
/// next-token distribution is the mean of the members' distributions, log p(y) = log (1/M) Σ_m p_m(y), the way
/// translation systems ensemble their models. Greedy decoding and beam search run over it as over a single model (one
/// beam, scored by the mean distribution, not one beam per member). The members share padding, BOS and EOS ids and the
/// target vocabulary; they may differ in anything else (size, depth, Transformer or recurrent). As a module its
/// parameters are the members' under "member0.", "member1.", …, so one checkpoint holds the whole ensemble.
/// </summary>
public sealed class Seq2SeqEnsemble : Module, ISequenceToSequence
{
    readonly ISequenceToSequence[] _members;
    readonly int _vocab;
    readonly float _labelSmoothing;

    public Seq2SeqEnsemble(IEnumerable<ISequenceToSequence> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        _members = [.. members];
        if (_members.Length == 0) throw new ArgumentException("An ensemble needs at least one model.", nameof(members));
        for (int i = 0; i < _members.Length; i++)
        {
            var m = _members[i] ?? throw new ArgumentException($"Model {i} of the ensemble is null.", nameof(members));
            if (m is not IStepwiseSeq2Seq stepwise || m is not Module module)
                throw new ArgumentException(
                    $"Model {i} of the ensemble ({m.GetType().Name}) cannot decode step by step; use " +
                    $"{nameof(EncoderDecoder)} or {nameof(RecurrentSeq2Seq)} models.", nameof(members));
            if (i == 0) _vocab = stepwise.TargetVocabSize;
            else if (stepwise.TargetVocabSize != _vocab || m.PadId != PadId || m.BosId != BosId || m.EosId != EosId)
                throw new ArgumentException(
                    $"Model {i} of the ensemble has {stepwise.TargetVocabSize} target ids (padding {m.PadId}, BOS {m.BosId}, " +
                    $"EOS {m.EosId}) where model 0 has {_vocab} ({PadId}, {BosId}, {EosId}): an ensemble's models " +
                    "must share their target vocabulary.", nameof(members));
            RegisterModule($"member{i}", module);
        }
        var smoothing = _members.Select(m => ((IStepwiseSeq2Seq)m).LabelSmoothing).Distinct().ToArray();
        _labelSmoothing = smoothing.Length == 1 ? smoothing[0] : 0f;
    }

    /// <summary>
    /// The label smoothing of <see cref="Loss"/>: the members' own when they all train with the same, so that the
    /// ensemble's validation loss reads on the scale of theirs; 0 (plain negative log-likelihood) when they differ.
    /// </summary>
    public float LabelSmoothing => _labelSmoothing;

    /// <summary>The models, in the order given.</summary>
    public IReadOnlyList<ISequenceToSequence> Members => _members;

    public int PadId => _members[0].PadId;
    public int BosId => _members[0].BosId;
    public int EosId => _members[0].EosId;

    /// <summary>
    /// Teacher forcing without gradients: the log-probabilities (B, T, V) of the members' mean distribution, which serve
    /// as logits (their log-softmax is themselves).
    /// </summary>
    public Tensor Forward(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> target, int targetLength, int batch)
    {
        var each = new float[_members.Length][];
        using (new Inference(this))
            for (int m = 0; m < _members.Length; m++)
                using (TensorScope.Begin())
                    each[m] = _members[m].Forward(source, sourceLength, target, targetLength, batch).ToArray();
        return Tensor.FromArray(MeanLogProbabilities(each, _vocab), batch, targetLength, _vocab);
    }

    /// <summary>
    /// Cross-entropy of the targets (B, T) under <see cref="Forward"/>'s output, averaged over the non-padding targets
    /// and smoothed by <see cref="LabelSmoothing"/>, as each member's own loss is.
    /// </summary>
    public Tensor Loss(Tensor logits, ReadOnlySpan<int> targets) =>
        Tensor.CrossEntropy(logits, targets, ignoreIndex: PadId, labelSmoothing: _labelSmoothing);

    /// <summary>Greedy decoding of B sources under the mean distribution (see <see cref="Decoding.Greedy"/>).</summary>
    public GreedyResult Greedy(ReadOnlySpan<int> source, int batch, int sourceLength, int maxLength)
    {
        using var inference = new Inference(this);
        using var scope = TensorScope.Begin();
        using var state = Start(source, batch, sourceLength, maxLength);
        return Decoding.Greedy(state, batch, maxLength, _vocab, BosId, EosId, Allowed);
    }

    /// <summary>Beam search for B sources under the mean distribution (see <see cref="Decoding.Beam"/>).</summary>
    public IReadOnlyList<BeamHypothesis>[] BeamSearchBatch(ReadOnlySpan<int> source, int batch, int sourceLength, int beamWidth,
        int maxLength, double lengthPenalty = 0)
    {
        using var inference = new Inference(this);
        using var scope = TensorScope.Begin();
        using var state = Start(source, batch, sourceLength, maxLength);
        return Decoding.Beam(state, batch, beamWidth, maxLength, lengthPenalty, _vocab, BosId, EosId, Allowed);
    }

    /// <summary>log p(tokens | source) under the mean distribution, Σ_t log (1/M) Σ_m p_m(y_t | y_&lt;t, x).</summary>
    public double LogProbability(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty) return 0;
        int[] input = [BosId, .. tokens[..^1]];
        using var scope = TensorScope.Begin();
        return Decoding.SumLogProb(Forward(source, sourceLength, input, input.Length, 1).ToArray(), tokens, _vocab);
    }

    /// <summary>
    /// Per row of V: log (1/M) Σ_m softmax(x_m), from each member's logits, in double and shifted by the largest term so
    /// that nothing overflows.
    /// </summary>
    internal static float[] MeanLogProbabilities(float[][] logits, int vocab)
    {
        int members = logits.Length, n = logits[0].Length;
        var result = new float[n];
        var logp = new double[members][];
        for (int row = 0; row < n; row += vocab)
        {
            for (int m = 0; m < members; m++) logp[m] = Decoding.LogSoftmax(logits[m].AsSpan(row, vocab));
            for (int v = 0; v < vocab; v++)
            {
                double max = double.NegativeInfinity;
                for (int m = 0; m < members; m++) max = Math.Max(max, logp[m][v]);
                double sum = 0;
                if (!double.IsNegativeInfinity(max))
                    for (int m = 0; m < members; m++) sum += Math.Exp(logp[m][v] - max);
                result[row + v] = (float)(double.IsNegativeInfinity(max) ? max : max + Math.Log(sum / members));
            }
        }
        return result;
    }

    DecodingState Start(ReadOnlySpan<int> source, int batch, int sourceLength, int maxLength)
    {
        var states = new List<DecodingState>(_members.Length);
        try
        {
            foreach (var m in _members) states.Add(((IStepwiseSeq2Seq)m).Start(source, batch, sourceLength, maxLength));
            return new EnsembleState([.. states], _vocab);
        }
        catch
        {
            foreach (var s in states) s.Dispose();
            throw;
        }
    }

    bool Allowed(int id) => id != PadId && id != BosId;

    /// <summary>Every member's decoder between steps, moved together.</summary>
    sealed class EnsembleState(DecodingState[] states, int vocab) : DecodingState
    {
        public override float[] Step(int[] tokens) => MeanLogProbabilities([.. states.Select(s => s.Step(tokens))], vocab);

        public override void Reorder(int[] rows)
        {
            foreach (var s in states) s.Reorder(rows);
        }

        public override void Dispose()
        {
            foreach (var s in states) s.Dispose();
        }
    }
}

/// <summary>A sequence-to-sequence model whose decoder can be run one step at a time (what an ensemble needs).</summary>
internal interface IStepwiseSeq2Seq
{
    int TargetVocabSize { get; }

    /// <summary>The ε of the model's label-smoothed training loss.</summary>
    float LabelSmoothing { get; }

    /// <summary>
    /// Encodes the sources and returns the decoder before its first step; the caller holds inference mode and a scope.
    /// </summary>
    DecodingState Start(ReadOnlySpan<int> source, int batch, int sourceLength, int maxLength);
}
