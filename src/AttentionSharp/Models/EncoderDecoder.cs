// Sources: Vaswani et al., "Attention Is All You Need" (2017), §3 and §5.4; Rush, "The Annotated Transformer" (2018).
using AttentionSharp.Autograd;
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>
/// The encoder's output for a batch of sources: the memory states (B, S, C) and which source positions are padding (B × S).
/// </summary>
public sealed record EncodedSource(Tensor States, bool[] Padding)
{
    public int Batch => States.Size(0);
    public int Length => States.Size(1);
}

/// <summary>
/// Greedy decoding's tokens per batch row (ending with EOS when it was produced) and, per step, the (B × V) logits it
/// chose from.
/// </summary>
public sealed record GreedyResult(int[][] Tokens, float[][] StepLogits);

/// <summary>
/// A finished beam: its tokens (ending with EOS unless the length limit cut it), log p(tokens | source), and the
/// length-penalised score.
/// </summary>
public sealed record BeamHypothesis(int[] Tokens, double LogProb, double Score);

/// <summary>
/// The original Transformer, read top to bottom: source and target embeddings scaled by √d_model (one table when
/// shared), positions, an encoder stack over the source, a decoder stack over the shifted target that attends causally
/// to itself and fully to the encoder's memory, and an output projection (the target embedding's transpose when tied).
/// Padding keys are masked in every attention; the loss is label-smoothed cross-entropy that skips padding targets.
/// Letters: B batch, S source length, T target length, C width, V target vocabulary.
/// </summary>
/// <remarks>
/// Parameter names: shared.weight (or src_embed.weight and tgt_embed.weight), encoder.… and decoder.… as
/// <see cref="TransformerEncoder"/> and <see cref="TransformerDecoder"/> name them (torch.nn.Transformer's, with the
/// feed-forward pair under "ffn."), output_projection.{weight, bias} when not tied.
/// Deviations from the paper: embeddings start as N(0, 1/d_model), so that after the √d_model scale they have unit
/// size (fairseq's choice; the paper does not say); decoding never emits the padding or BOS ids.
/// </remarks>
public sealed class EncoderDecoder : Module, ISequenceToSequence, IStepwiseSeq2Seq
{
    public EncoderDecoder(EncoderDecoderConfig config, Generator rng)
    {
        Config = config.Validate();
        float std = 1f / MathF.Sqrt(config.Width);
        if (config.ShareEmbeddings)
            SourceEmbedding = TargetEmbedding =
                RegisterModule("shared", new Embedding(config.SourceVocabSize, config.Width, rng, std));
        else
        {
            SourceEmbedding = RegisterModule("src_embed", new Embedding(config.SourceVocabSize, config.Width, rng, std));
            TargetEmbedding = RegisterModule("tgt_embed", new Embedding(config.TargetVocabSize, config.Width, rng, std));
        }
        Encoder = RegisterModule("encoder", new TransformerEncoder(config.EncoderStack, rng));
        Decoder = RegisterModule("decoder", new TransformerDecoder(config.DecoderStack, rng));
        if (!config.TieOutput)
            OutputProjection = RegisterModule("output_projection", new Linear(config.Width, config.TargetVocabSize, rng));
    }

    public EncoderDecoderConfig Config { get; }
    public Embedding SourceEmbedding { get; }
    public Embedding TargetEmbedding { get; }
    public TransformerEncoder Encoder { get; }
    public TransformerDecoder Decoder { get; }

    /// <summary>W_out (V, C) with a bias, or null when the output is tied to the target embedding.</summary>
    public Linear? OutputProjection { get; }

    /// <summary>
    /// Source ids (B, S) → the memory (B, S, C) and the source padding (ids equal to PadId). Right-padded sources are
    /// encoded packed (<see cref="SequencePacking"/>: the layers do no work on the padding, whose memory rows are zero
    /// and masked).
    /// </summary>
    public EncodedSource Encode(ReadOnlySpan<int> source, int batch, int length)
    {
        var (states, packing, padding) = EncodePacked(source, batch, length);
        return new EncodedSource(packing?.Unpack(states) ?? states, padding);                     // (B, S, C)
    }

    /// <summary>
    /// <see cref="Encode"/> before the unpacking: the states (B, S, C), or (1, N, C) with their packing where the
    /// sources are padded, and the padding.
    /// </summary>
    (Tensor States, SequencePacking? Packing, bool[] Padding) EncodePacked(ReadOnlySpan<int> source, int batch, int length)
    {
        CheckIds(source, batch, length, "source");
        var padding = PaddingOf(source);
        var x = SourceEmbedding.Forward(source, batch, length) * MathF.Sqrt(Config.Width);         // (B, S, C): E[x]·√d_model
        var packing = Packable(source, batch, length);
        var states = Encoder.Forward(x, packing is null ? new AttentionMask { KeyPadding = padding }
                                                        : new AttentionMask { Packing = packing }); // (B, S, C) or (1, N, C)
        return (states, packing, padding);
    }

    /// <summary>
    /// The packing of right-padded ids (<see cref="SequencePacking.OfPadded"/>), or null where packing gains nothing
    /// or cannot apply (linear attention skips no keys).
    /// </summary>
    SequencePacking? Packable(ReadOnlySpan<int> ids, int batch, int length) =>
        Config.Attention.Kind == AttentionKind.Linear ? null : SequencePacking.OfPadded(ids, batch, length, Config.PadId);

    /// <summary>
    /// Decoder input ids (B, T), BOS first → logits (B, T, V) for the next token at every position. Without a cache the
    /// target's padding keys are masked too (with right padding that only changes positions the loss skips). With a
    /// <see cref="KvCache"/> from <see cref="NewCache"/> the ids are only the new positions (run under GradMode.NoGrad);
    /// the memory's keys and values are computed on the first step and reused.
    /// </summary>
    public Tensor Decode(ReadOnlySpan<int> target, int batch, int length, EncodedSource memory, KvCache? cache = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        CheckIds(target, batch, length, "target", offset: cache?.Length ?? 0);
        if (memory.Batch != batch)
            throw new ArgumentException($"The memory holds {memory.Batch} sources but the target batch has {batch} rows.",
                nameof(memory));
        // Linear attention cannot skip keys; under the causal mask right padding only reaches positions the loss skips.
        bool maskPadding = cache is null && Config.Attention.Kind != AttentionKind.Linear;
        return Logits(target, batch, length, memory.States, new AttentionMask { KeyPadding = memory.Padding },
            maskPadding ? new AttentionMask { KeyPadding = PaddingOf(target) } : null, cache);    // (B, T, V)
    }

    /// <summary>
    /// The decoder from its input ids to the logits: E[y]·√d_model, the stack under <paramref name="selfMask"/> (with a
    /// packing, its positions packed: (1, N, V) out) over the memory under <paramref name="memoryMask"/> (its padding,
    /// or its packing), the output projection.
    /// </summary>
    Tensor Logits(ReadOnlySpan<int> target, int batch, int length, Tensor memory, AttentionMask memoryMask,
        AttentionMask? selfMask, KvCache? cache)
    {
        var y = TargetEmbedding.Forward(target, batch, length) * MathF.Sqrt(Config.Width);         // (B, T, C)
        y = Decoder.Forward(y, memory, selfMask, memoryMask, cache);
        return OutputProjection?.Forward(y) ?? Tensor.Linear(y, TargetEmbedding.Weight);            // (B, T, V) or (1, N, V)
    }

    /// <summary>Teacher forcing: source (B, S) and decoder input (B, T) → logits (B, T, V).</summary>
    public Tensor Forward(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> target, int targetLength, int batch) =>
        Decode(target, batch, targetLength, Encode(source, batch, sourceLength));

    /// <summary>
    /// Teacher forcing's loss, <see cref="Loss"/> of <see cref="Forward"/>'s logits, with the decoder run on the
    /// targets packed (<see cref="SequencePacking"/>): a right-padded row's padding positions, which the loss skips and
    /// the causal mask hides from every other position, take no work; padded sources stay packed too, so the memory's
    /// keys and values are projected from its real rows only. The same value and gradients as the padded form, up to
    /// the order of float sums.
    /// </summary>
    public Tensor TeacherForcingLoss(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> input,
        ReadOnlySpan<int> targets, int targetLength, int batch)
    {
        var (states, sourcePacking, sourcePadding) = EncodePacked(source, batch, sourceLength);
        if (targets.Length != batch * targetLength)
            throw new ArgumentException($"Expected {batch}×{targetLength} targets, got {targets.Length}.", nameof(targets));
        if (Packable(targets, batch, targetLength) is not { } packing)
            return Loss(Decode(input, batch, targetLength, new EncodedSource(sourcePacking?.Unpack(states) ?? states,
                sourcePadding)), targets);
        CheckIds(input, batch, targetLength, "target");
        var memoryMask = sourcePacking is null ? new AttentionMask { KeyPadding = sourcePadding }
                                               : new AttentionMask { KeyPacking = sourcePacking };
        var logits = Logits(input, batch, targetLength, states, memoryMask, new AttentionMask { Packing = packing },
            null);                                                                                  // (1, N, V)
        var packedTargets = new int[packing.Tokens];
        for (int i = 0; i < packedTargets.Length; i++) packedTargets[i] = targets[packing.PackedRows[i]];
        return Loss(logits, packedTargets);
    }

    /// <summary>
    /// Label-smoothed cross-entropy, averaged over the non-padding targets (B, T): the target distribution is
    /// (1 − ε_ls)·one-hot + ε_ls/V (Szegedy et al. 2016, as torch's label_smoothing).
    /// </summary>
    public Tensor Loss(Tensor logits, ReadOnlySpan<int> targets) =>
        Tensor.CrossEntropy(logits, targets, ignoreIndex: Config.PadId, labelSmoothing: Config.LabelSmoothing);

    /// <summary>An empty K/V cache for <see cref="Decode"/>, one entry per decoder layer.</summary>
    public KvCache NewCache() => Decoder.NewCache();

    /// <summary>
    /// Greedy decoding of B sources: start from BOS and append the most probable token until every row has produced
    /// EOS or <paramref name="maxLength"/> tokens. With <paramref name="useCache"/> each step feeds one token and reuses
    /// the cached keys and values; without, each step re-decodes the whole prefix (the same tokens, slower). A finished
    /// row keeps being fed EOS so the batch stays rectangular. Decoding runs without dropout, in either mode.
    /// </summary>
    public GreedyResult Greedy(ReadOnlySpan<int> source, int batch, int sourceLength, int maxLength, bool useCache = true)
    {
        CheckMaxLength(maxLength);
        using var inference = new Inference(this);
        using var scope = TensorScope.Begin();
        using var state = NewState(Encode(source, batch, sourceLength), useCache);
        return Decoding.Greedy(state, batch, maxLength, Config.TargetVocabSize, Config.BosId, Config.EosId, Allowed);
    }

    GreedyResult ISequenceToSequence.Greedy(ReadOnlySpan<int> source, int batch, int sourceLength, int maxLength) =>
        Greedy(source, batch, sourceLength, maxLength);

    /// <summary>
    /// Beam search for one source (see <see cref="Decoding.Beam"/>: the best (width − finished) extensions by
    /// log-probability each step, finished hypotheses ranked by log p / ((5 + |Y|)/6)^α, α = <paramref name="lengthPenalty"/>).
    /// With <paramref name="useCache"/> each step feeds the live beams' newest tokens and the K/V cache is reordered
    /// (index-selected on the batch axis) to follow the beams kept; without, each step re-decodes the live prefixes.
    /// Both give the same hypotheses. Returns them, best first.
    /// </summary>
    public IReadOnlyList<BeamHypothesis> BeamSearch(ReadOnlySpan<int> source, int sourceLength, int beamWidth, int maxLength,
        double lengthPenalty = 0, bool useCache = true) =>
        BeamSearchBatch(source, 1, sourceLength, beamWidth, maxLength, lengthPenalty, useCache)[0];

    /// <summary>
    /// Beam search for B sources of length S at once, their live beams decoded as one batch; per source, as
    /// <see cref="BeamSearch"/>.
    /// </summary>
    public IReadOnlyList<BeamHypothesis>[] BeamSearchBatch(ReadOnlySpan<int> source, int batch, int sourceLength, int beamWidth,
        int maxLength, double lengthPenalty = 0, bool useCache = true)
    {
        CheckMaxLength(maxLength);
        using var inference = new Inference(this);
        using var scope = TensorScope.Begin();
        using var state = NewState(Encode(source, batch, sourceLength), useCache);
        return Decoding.Beam(state, batch, beamWidth, maxLength, lengthPenalty, Config.TargetVocabSize, Config.BosId,
            Config.EosId, Allowed);
    }

    IReadOnlyList<BeamHypothesis>[] ISequenceToSequence.BeamSearchBatch(ReadOnlySpan<int> source, int batch, int sourceLength,
        int beamWidth, int maxLength, double lengthPenalty) =>
        BeamSearchBatch(source, batch, sourceLength, beamWidth, maxLength, lengthPenalty);

    /// <summary>log p(tokens | source) under teacher forcing: Σ_t log p(y_t | y_&lt;t, x), for one source.</summary>
    public double LogProbability(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty) return 0;
        using var inference = new Inference(this);
        using var scope = TensorScope.Begin();
        var memory = Encode(source, 1, sourceLength);
        int[] input = [Config.BosId, .. tokens[..^1]];
        var logits = Decode(input, 1, input.Length, memory).ToArray();                             // (1, T, V)
        return Decoding.SumLogProb(logits, tokens, Config.TargetVocabSize);
    }

    int ISequenceToSequence.PadId => Config.PadId;
    int ISequenceToSequence.BosId => Config.BosId;
    int ISequenceToSequence.EosId => Config.EosId;

    int IStepwiseSeq2Seq.TargetVocabSize => Config.TargetVocabSize;

    float IStepwiseSeq2Seq.LabelSmoothing => Config.LabelSmoothing;

    DecodingState IStepwiseSeq2Seq.Start(ReadOnlySpan<int> source, int batch, int sourceLength, int maxLength)
    {
        CheckMaxLength(maxLength);
        return NewState(Encode(source, batch, sourceLength), useCache: true);
    }

    DecodingState NewState(EncodedSource memory, bool useCache) =>
        useCache ? new CachedState(this, memory) : new PrefixState(this, memory);

    /// <summary>The encoder's memory as a decoding state keeps it, its rows following the beams.</summary>
    sealed class BeamMemory(EncodedSource memory)
    {
        readonly HeldTensor _states = new(memory.States);
        bool[] _padding = memory.Padding;

        public EncodedSource Current => new(_states.Value, _padding);

        /// <summary>Keeps the memory rows <paramref name="rows"/>, in that order.</summary>
        public void Reorder(int[] rows)
        {
            int length = _states.Value.Size(1);
            var padding = new bool[rows.Length * length];
            for (int i = 0; i < rows.Length; i++) Array.Copy(_padding, rows[i] * length, padding, i * length, length);
            _states.Select(0, rows);
            _padding = padding;
        }

        public void Release() => _states.Release();
    }

    /// <summary>Incremental decoding: each step feeds one token per row and appends its keys and values to the cache.</summary>
    sealed class CachedState(EncoderDecoder model, EncodedSource memory) : DecodingState
    {
        readonly KvCache _cache = model.NewCache();
        readonly BeamMemory _memory = new(memory);

        public override float[] Step(int[] tokens) =>
            model.Decode(tokens, tokens.Length, 1, _memory.Current, _cache).Select(1, -1).ToArray(); // (n, V): the newest token

        public override void Reorder(int[] rows)
        {
            _cache.Reorder(rows);
            _memory.Reorder(rows);
        }

        public override void Dispose()
        {
            _cache.Dispose();
            _memory.Release();
        }
    }

    /// <summary>Decoding without a cache: each step re-decodes every row's whole prefix.</summary>
    sealed class PrefixState(EncoderDecoder model, EncodedSource memory) : DecodingState
    {
        List<int>[] _prefixes = [.. Enumerable.Range(0, memory.Batch).Select(_ => new List<int>())];
        readonly BeamMemory _memory = new(memory);

        public override float[] Step(int[] tokens)
        {
            for (int i = 0; i < tokens.Length; i++) _prefixes[i].Add(tokens[i]);
            int length = _prefixes[0].Count;
            var ids = _prefixes.SelectMany(p => p).ToArray();                                           // (n, length)
            return model.Decode(ids, _prefixes.Length, length, _memory.Current).Select(1, -1).ToArray(); // (n, V)
        }

        public override void Reorder(int[] rows)
        {
            _prefixes = [.. rows.Select(r => new List<int>(_prefixes[r]))];
            _memory.Reorder(rows);
        }

        public override void Dispose() => _memory.Release();
    }

    /// <summary>Decoding may produce any id but padding and BOS.</summary>
    bool Allowed(int id) => id != Config.PadId && id != Config.BosId;

    bool[] PaddingOf(ReadOnlySpan<int> ids)
    {
        var padding = new bool[ids.Length];
        for (int i = 0; i < ids.Length; i++) padding[i] = ids[i] == Config.PadId;
        return padding;
    }

    void CheckIds(ReadOnlySpan<int> ids, int batch, int length, string what, int offset = 0)
    {
        if (batch <= 0 || length <= 0 || ids.Length != batch * length)
            throw new ArgumentException($"Expected {batch}×{length} = {batch * length} {what} ids, got {ids.Length}.", what);
        if (Config.PositionalEncoding == PositionalEncodingKind.Learned && offset + length > Config.MaxLength)
            throw new ArgumentException($"The {what} reaches {offset + length} tokens but the learned position table has " +
                                        $"EncoderDecoderConfig.MaxLength = {Config.MaxLength} rows.", what);
    }

    void CheckMaxLength(int maxLength)
    {
        if (maxLength <= 0)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "The longest output must be at least one token.");
        if (Config.PositionalEncoding == PositionalEncodingKind.Learned && maxLength > Config.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"Decoding {maxLength} tokens needs that many " +
                                                  $"positions, but EncoderDecoderConfig.MaxLength is {Config.MaxLength}.");
    }
}
