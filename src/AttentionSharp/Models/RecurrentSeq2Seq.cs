// Sources: Sutskever, Vinyals and Le, "Sequence to Sequence Learning with Neural Networks" (2014); Luong, Pham and
// Manning, "Effective Approaches to Attention-based Neural Machine Translation" (2015), §3.1 global attention.
using AttentionSharp.Nn;
using RecurrentCell = AttentionSharp.Kernels.RecurrentCell;

namespace AttentionSharp.Models;

/// <summary>
/// The encoder's output for a batch of sources: the states h̄_s (B, S, H), their attention keys (W_a h̄_s for "general",
/// h̄_s for "dot", null without attention) and the decoder's initial states (L, B, H) (c only for the LSTM).
/// </summary>
public sealed record RecurrentMemory(Tensor States, Tensor? Keys, Tensor H0, Tensor? C0)
{
    public int Batch => States.Size(0);
}

/// <summary>
/// The recurrent encoder–decoder the Transformer replaced, read top to bottom: source embedding → L recurrent layers
/// (bidirectional, H/2 units a direction, by default) → the final states, concatenated per layer, start an L-layer
/// decoder over the target embeddings. Without attention those final states are the fixed-size bottleneck through which
/// the whole source must pass (Sutskever et al. 2014). With attention (Luong et al. 2015, global, without input feeding)
/// each decoder state h_t also reads the encoder's states:
///   a_t = softmax_s(score(h_t, h̄_s)),  c_t = Σ_s a_t(s) h̄_s,
///   h̃_t = tanh(W_c [c_t; h_t] + b_c),  p(y_t) = softmax(W_s h̃_t + b_s).
/// Letters: B batch, S source length, T target length, E embedding, H hidden, L layers, V target vocabulary.
/// </summary>
/// <remarks>
/// Without input feeding the decoder's recurrence does not depend on attention, so teacher forcing runs each decoder
/// layer as one fused op over the whole target and attention as one batched product. Sources must hold no padding (batch
/// sources of equal length): a recurrent encoder's final state would otherwise come after the padding.
/// Parameter names: src_embed.weight, tgt_embed.weight, encoder.… and decoder.… as torch.nn.LSTM/GRU/RNN name them,
/// attn.linear_in.weight ("general" only), attn.linear_out.{weight, bias} (with attention), output_projection.{weight, bias}.
/// </remarks>
public sealed class RecurrentSeq2Seq : Module, ISequenceToSequence, IStepwiseSeq2Seq
{
    readonly Generator _dropoutRng;
    readonly RecurrentBase _encoder, _decoder;

    public RecurrentSeq2Seq(RecurrentSeq2SeqConfig config, Generator rng)
    {
        Config = config.Validate();
        _dropoutRng = RegisterGenerator("dropout", new Generator(rng.NextUInt64()));
        SourceEmbedding = RegisterModule("src_embed", new Embedding(config.SourceVocabSize, config.EmbeddingSize, rng));
        TargetEmbedding = RegisterModule("tgt_embed", new Embedding(config.TargetVocabSize, config.EmbeddingSize, rng));
        _encoder = RegisterModule("encoder", NewRecurrent(new RecurrentConfig
        {
            InputSize = config.EmbeddingSize, HiddenSize = config.EncoderHiddenSize, Layers = config.Layers,
            Bidirectional = config.BidirectionalEncoder, Dropout = config.Dropout,
        }, rng));
        _decoder = RegisterModule("decoder", NewRecurrent(new RecurrentConfig
        {
            InputSize = config.EmbeddingSize, HiddenSize = config.HiddenSize, Layers = config.Layers, Dropout = config.Dropout,
        }, rng));
        if (config.Attention != Seq2SeqAttention.None)
        {
            var attn = RegisterModule("attn", new ModuleGroup());
            if (config.Attention == Seq2SeqAttention.General)
                AttentionIn = attn.Add("linear_in", new Linear(config.HiddenSize, config.HiddenSize, rng, bias: false));
            AttentionOut = attn.Add("linear_out", new Linear(2 * config.HiddenSize, config.HiddenSize, rng));
        }
        OutputProjection = RegisterModule("output_projection", new Linear(config.HiddenSize, config.TargetVocabSize, rng));
    }

    public RecurrentSeq2SeqConfig Config { get; }
    public Embedding SourceEmbedding { get; }
    public Embedding TargetEmbedding { get; }

    /// <summary>W_a (H, H) of the "general" score, else null.</summary>
    public Linear? AttentionIn { get; }

    /// <summary>W_c (H, 2H) and b_c, with attention; else null.</summary>
    public Linear? AttentionOut { get; }

    /// <summary>W_s (V, H) and b_s.</summary>
    public Linear OutputProjection { get; }

    public int PadId => Config.PadId;
    public int BosId => Config.BosId;
    public int EosId => Config.EosId;

    RecurrentBase NewRecurrent(RecurrentConfig config, Generator rng) => Config.Cell switch
    {
        RecurrentCell.Lstm => new Lstm(config, rng, _dropoutRng),
        RecurrentCell.Gru => new Gru(config, rng, _dropoutRng),
        _ => new Rnn(config, rng, _dropoutRng),
    };

    static (Tensor Output, Tensor HN, Tensor? CN) Run(RecurrentBase layers, Tensor x, Tensor? h0, Tensor? c0)
    {
        switch (layers)
        {
            case Lstm lstm: { var (o, h, c) = lstm.Forward(x, h0, c0); return (o, h, c); }
            case Gru gru: { var (o, h) = gru.Forward(x, h0); return (o, h, null); }
            default: { var (o, h) = ((Rnn)layers).Forward(x, h0); return (o, h, null); }
        }
    }

    /// <summary>Source ids (B, S), no padding → the encoder states, attention keys and the decoder's initial states.</summary>
    public RecurrentMemory Encode(ReadOnlySpan<int> source, int batch, int length)
    {
        CheckIds(source, batch, length, "source");
        if (source.Contains(Config.PadId))
            throw new ArgumentException($"The source holds the padding id {Config.PadId}; a recurrent encoder reads sources " +
                                        "without padding (batch sources of equal length).", nameof(source));
        var x = SourceEmbedding.Forward(source, batch, length).Dropout(Config.Dropout, Training, _dropoutRng);   // (B, S, E)
        var (states, hn, cn) = Run(_encoder, x, null, null);                                         // (B, S, H), (L·D, B, H/D)
        var keys = Config.Attention switch
        {
            Seq2SeqAttention.General => AttentionIn!.Forward(states),                                // (B, S, H): W_a h̄_s
            Seq2SeqAttention.Dot => states,
            _ => null,
        };
        return new RecurrentMemory(states, keys, Bridge(hn, batch), cn is null ? null : Bridge(cn, batch));
    }

    /// <summary>(L·D, B, H/D) final encoder states → (L, B, H): per layer, the forward and backward states together.</summary>
    Tensor Bridge(Tensor final, int batch)
    {
        if (!Config.BidirectionalEncoder) return final;
        int l = Config.Layers, half = Config.EncoderHiddenSize;
        return final.Reshape(l, 2, batch, half).Permute(0, 2, 1, 3).Contiguous().Reshape(l, batch, 2 * half);
    }

    /// <summary>
    /// Decoder inputs (B, T) → logits (B, T, V), starting from <paramref name="h0"/>, <paramref name="c0"/> (L, B, H);
    /// also returns the decoder's final states, for decoding step by step.
    /// </summary>
    (Tensor Logits, Tensor HN, Tensor? CN) DecodeFrom(ReadOnlySpan<int> target, int batch, int length, RecurrentMemory memory,
        Tensor h0, Tensor? c0)
    {
        var y = TargetEmbedding.Forward(target, batch, length).Dropout(Config.Dropout, Training, _dropoutRng);  // (B, T, E)
        var (h, hn, cn) = Run(_decoder, y, h0, c0);                                                  // (B, T, H)
        if (memory.Keys is { } keys)
        {
            // c_t = softmax_s(h_t · k_s)·h̄_s for all t at once, as one attention head with scale 1 (Luong's scores are
            // unscaled).
            var context = Tensor.ScaledDotProductAttention(h.Unsqueeze(1), keys.Unsqueeze(1), memory.States.Unsqueeze(1),
                new AttentionOptions { Scale = 1f }).Squeeze(1);                                     // (B, T, H)
            h = AttentionOut!.Forward(Tensor.Cat([context, h], 2)).Tanh();   // h̃_t = tanh(W_c [c_t; h_t] + b_c)
        }
        var logits = OutputProjection.Forward(h.Dropout(Config.Dropout, Training, _dropoutRng));     // (B, T, V)
        return (logits, hn, cn);
    }

    /// <summary>
    /// Decoder input ids (B, T), BOS first → logits (B, T, V), the decoder starting from the encoder's final states.
    /// </summary>
    public Tensor Decode(ReadOnlySpan<int> target, int batch, int length, RecurrentMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        CheckIds(target, batch, length, "target");
        if (memory.Batch != batch)
            throw new ArgumentException($"The memory holds {memory.Batch} sources but the target batch has {batch} rows.",
                nameof(memory));
        return DecodeFrom(target, batch, length, memory, memory.H0, memory.C0).Logits;
    }

    /// <summary>Teacher forcing: source (B, S) and decoder input (B, T) → logits (B, T, V).</summary>
    public Tensor Forward(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> target, int targetLength, int batch) =>
        Decode(target, batch, targetLength, Encode(source, batch, sourceLength));

    /// <summary>Cross-entropy (label-smoothed when configured), averaged over the non-padding targets (B, T).</summary>
    public Tensor Loss(Tensor logits, ReadOnlySpan<int> targets) =>
        Tensor.CrossEntropy(logits, targets, ignoreIndex: Config.PadId, labelSmoothing: Config.LabelSmoothing);

    /// <summary>Greedy decoding of B sources, one token per step, carrying the decoder's (h, c) between steps.</summary>
    public GreedyResult Greedy(ReadOnlySpan<int> source, int batch, int sourceLength, int maxLength)
    {
        CheckMaxLength(maxLength);
        using var inference = new Inference(this);
        using var scope = TensorScope.Begin();
        using var state = new StepState(this, Encode(source, batch, sourceLength));
        return Decoding.Greedy(state, batch, maxLength, Config.TargetVocabSize, Config.BosId, Config.EosId, Allowed);
    }

    /// <summary>Beam search for one source (see <see cref="Decoding.Beam"/>); the decoder states follow the beams kept.</summary>
    public IReadOnlyList<BeamHypothesis> BeamSearch(ReadOnlySpan<int> source, int sourceLength, int beamWidth, int maxLength,
        double lengthPenalty = 0) =>
        BeamSearchBatch(source, 1, sourceLength, beamWidth, maxLength, lengthPenalty)[0];

    /// <summary>
    /// Beam search for B sources of length S at once, their live beams decoded as one batch; per source, as
    /// <see cref="BeamSearch"/>.
    /// </summary>
    public IReadOnlyList<BeamHypothesis>[] BeamSearchBatch(ReadOnlySpan<int> source, int batch, int sourceLength, int beamWidth,
        int maxLength, double lengthPenalty = 0)
    {
        CheckMaxLength(maxLength);
        using var inference = new Inference(this);
        using var scope = TensorScope.Begin();
        using var state = new StepState(this, Encode(source, batch, sourceLength));
        return Decoding.Beam(state, batch, beamWidth, maxLength, lengthPenalty, Config.TargetVocabSize, Config.BosId,
            Config.EosId, Allowed);
    }

    /// <summary>log p(tokens | source) under teacher forcing, for one source.</summary>
    public double LogProbability(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty) return 0;
        using var inference = new Inference(this);
        using var scope = TensorScope.Begin();
        int[] input = [Config.BosId, .. tokens[..^1]];
        var logits = Decode(input, 1, input.Length, Encode(source, 1, sourceLength)).ToArray();    // (1, T, V)
        return Decoding.SumLogProb(logits, tokens, Config.TargetVocabSize);
    }

    int IStepwiseSeq2Seq.TargetVocabSize => Config.TargetVocabSize;

    float IStepwiseSeq2Seq.LabelSmoothing => Config.LabelSmoothing;

    DecodingState IStepwiseSeq2Seq.Start(ReadOnlySpan<int> source, int batch, int sourceLength, int maxLength)
    {
        CheckMaxLength(maxLength);
        return new StepState(this, Encode(source, batch, sourceLength));
    }

    /// <summary>The decoder between steps: its states (L, n, H) and the memory, both following the rows kept.</summary>
    sealed class StepState(RecurrentSeq2Seq model, RecurrentMemory memory) : DecodingState
    {
        readonly HeldTensor _h = new(memory.H0), _states = new(memory.States);
        readonly HeldTensor? _c = memory.C0 is { } c ? new(c) : null, _keys = memory.Keys is { } k ? new(k) : null;

        public override float[] Step(int[] tokens)
        {
            var memory = new RecurrentMemory(_states.Value, _keys?.Value, _h.Value, _c?.Value);
            var (logits, hn, cn) = model.DecodeFrom(tokens, tokens.Length, 1, memory, _h.Value, _c?.Value);
            _h.Set(hn.Copy());
            if (cn is not null) _c!.Set(cn.Copy());
            return logits.ToArray();                                                                 // (n, 1, V)
        }

        public override void Reorder(int[] rows)
        {
            _h.Select(1, rows); _c?.Select(1, rows);
            _states.Select(0, rows); _keys?.Select(0, rows);
        }

        public override void Dispose()
        {
            foreach (var held in new[] { _h, _c, _states, _keys }) held?.Release();
        }
    }

    /// <summary>Decoding may produce any id but padding and BOS.</summary>
    bool Allowed(int id) => id != Config.PadId && id != Config.BosId;

    static void CheckIds(ReadOnlySpan<int> ids, int batch, int length, string what)
    {
        if (batch <= 0 || length <= 0 || ids.Length != batch * length)
            throw new ArgumentException($"Expected {batch}×{length} = {batch * length} {what} ids, got {ids.Length}.", what);
    }

    static void CheckMaxLength(int maxLength)
    {
        if (maxLength <= 0)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "The longest output must be at least one token.");
    }
}
