// Sources: Vaswani et al., "Attention Is All You Need" (2017), §3 and §5.4; Rush, "The Annotated Transformer" (2018);
// the length penalty of Wu et al., "Google's Neural Machine Translation System" (2016), §7.
using AttentionSharp.Autograd;
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>The encoder's output for a batch of sources: the memory states (B, S, C) and which source positions are padding (B × S).</summary>
public sealed record EncodedSource(Tensor States, bool[] Padding)
{
    public int Batch => States.Size(0);
    public int Length => States.Size(1);
}

/// <summary>Greedy decoding's tokens per batch row (ending with EOS when it was produced) and, per step, the (B × V) logits it chose from.</summary>
public sealed record GreedyResult(int[][] Tokens, float[][] StepLogits);

/// <summary>A finished beam: its tokens (ending with EOS unless the length limit cut it), log p(tokens | source), and the length-penalised score.</summary>
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
public sealed class EncoderDecoder : Module
{
    public EncoderDecoder(EncoderDecoderConfig config, Generator rng)
    {
        Config = config.Validate();
        float std = 1f / MathF.Sqrt(config.Width);
        if (config.ShareEmbeddings)
            SourceEmbedding = TargetEmbedding = RegisterModule("shared", new Embedding(config.SourceVocabSize, config.Width, rng, std));
        else
        {
            SourceEmbedding = RegisterModule("src_embed", new Embedding(config.SourceVocabSize, config.Width, rng, std));
            TargetEmbedding = RegisterModule("tgt_embed", new Embedding(config.TargetVocabSize, config.Width, rng, std));
        }
        Encoder = RegisterModule("encoder", new TransformerEncoder(config.EncoderStack, rng));
        Decoder = RegisterModule("decoder", new TransformerDecoder(config.DecoderStack, rng));
        if (!config.TieOutput) OutputProjection = RegisterModule("output_projection", new Linear(config.Width, config.TargetVocabSize, rng));
    }

    public EncoderDecoderConfig Config { get; }
    public Embedding SourceEmbedding { get; }
    public Embedding TargetEmbedding { get; }
    public TransformerEncoder Encoder { get; }
    public TransformerDecoder Decoder { get; }

    /// <summary>W_out (V, C) with a bias, or null when the output is tied to the target embedding.</summary>
    public Linear? OutputProjection { get; }

    /// <summary>Source ids (B, S) → the memory (B, S, C) and the source padding (ids equal to PadId).</summary>
    public EncodedSource Encode(ReadOnlySpan<int> source, int batch, int length)
    {
        CheckIds(source, batch, length, "source");
        var padding = PaddingOf(source);
        var x = SourceEmbedding.Forward(source, batch, length) * MathF.Sqrt(Config.Width);         // (B, S, C): E[x]·√d_model
        var states = Encoder.Forward(x, new AttentionMask { KeyPadding = padding });                // (B, S, C)
        return new EncodedSource(states, padding);
    }

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
            throw new ArgumentException($"The memory holds {memory.Batch} sources but the target batch has {batch} rows.", nameof(memory));
        var selfMask = cache is null ? new AttentionMask { KeyPadding = PaddingOf(target) } : null;
        var y = TargetEmbedding.Forward(target, batch, length) * MathF.Sqrt(Config.Width);         // (B, T, C)
        y = Decoder.Forward(y, memory.States, selfMask, new AttentionMask { KeyPadding = memory.Padding }, cache);
        return OutputProjection?.Forward(y) ?? Tensor.Linear(y, TargetEmbedding.Weight);            // (B, T, V)
    }

    /// <summary>Teacher forcing: source (B, S) and decoder input (B, T) → logits (B, T, V).</summary>
    public Tensor Forward(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> target, int targetLength, int batch) =>
        Decode(target, batch, targetLength, Encode(source, batch, sourceLength));

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
        var memory = Encode(source, batch, sourceLength);
        using var cache = useCache ? NewCache() : null;
        var tokens = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        var fed = Enumerable.Range(0, batch).Select(_ => new List<int> { Config.BosId }).ToArray();   // decoder inputs so far
        var finished = new bool[batch];
        var stepLogits = new List<float[]>();
        int vocab = Config.TargetVocabSize;
        for (int step = 0; step < maxLength && !finished.All(f => f); step++)
        {
            using var stepScope = TensorScope.Begin();
            var logits = useCache
                ? Decode(fed.Select(f => f[^1]).ToArray(), batch, 1, memory, cache)                  // (B, 1, V): the newest token only
                : Decode(fed.SelectMany(f => f).ToArray(), batch, step + 1, memory);                 // (B, step + 1, V)
            var last = logits.Select(1, -1).ToArray();                                               // (B, V): the next token's logits
            stepLogits.Add(last);
            for (int b = 0; b < batch; b++)
            {
                int next = finished[b] ? Config.EosId : ArgMaxAllowed(last.AsSpan(b * vocab, vocab));
                if (!finished[b]) tokens[b].Add(next);
                finished[b] |= next == Config.EosId;
                fed[b].Add(next);
            }
        }
        return new GreedyResult([.. tokens.Select(t => t.ToArray())], [.. stepLogits]);
    }

    /// <summary>
    /// Beam search for one source: keep the <paramref name="beamWidth"/> most probable prefixes; each step extends every
    /// live beam by every token and keeps the best (beam width − finished) candidates by log-probability; a candidate
    /// ending in EOS is finished. Finished hypotheses are ranked by log p / lp with lp = ((5 + |Y|)/6)^α (Wu et al. 2016),
    /// α = <paramref name="lengthPenalty"/>; beams still open at <paramref name="maxLength"/> count as finished.
    /// Width 1 is greedy decoding. Each step re-decodes the live prefixes as one batch (no K/V cache, which would need
    /// reordering as beams are pruned). Returns the hypotheses, best first.
    /// </summary>
    /// <remarks>
    /// Beam search is a heuristic: a wider beam usually finds a more probable sequence than greedy decoding, but nothing
    /// guarantees it, because the greedy prefix can be pruned on the way.
    /// </remarks>
    public IReadOnlyList<BeamHypothesis> BeamSearch(ReadOnlySpan<int> source, int sourceLength, int beamWidth, int maxLength, double lengthPenalty = 0)
    {
        if (beamWidth <= 0) throw new ArgumentOutOfRangeException(nameof(beamWidth), beamWidth, "The beam width must be positive.");
        if (!(lengthPenalty >= 0)) throw new ArgumentOutOfRangeException(nameof(lengthPenalty), lengthPenalty, "The length penalty α must be non-negative.");
        CheckMaxLength(maxLength);
        using var inference = new Inference(this);
        using var scope = TensorScope.Begin();
        var memory = Encode(source, 1, sourceLength);
        var live = new List<(int[] Tokens, double LogProb)> { ([], 0.0) };
        var finished = new List<BeamHypothesis>();
        BeamHypothesis Finish(int[] tokens, double logProb) =>
            new(tokens, logProb, logProb / Math.Pow((5.0 + tokens.Length) / 6.0, lengthPenalty));    // log p / lp(|Y|)

        for (int step = 0; step < maxLength && live.Count > 0; step++)
        {
            using var stepScope = TensorScope.Begin();
            int n = live.Count, vocab = Config.TargetVocabSize;
            var ids = live.SelectMany(beam => beam.Tokens.Prepend(Config.BosId)).ToArray();        // (n, step + 1)
            var logits = Decode(ids, n, step + 1, Repeat(memory, n)).Select(1, -1).ToArray();      // (n, V)
            var candidates = new List<(int Beam, int Token, double LogProb)>();
            for (int i = 0; i < n; i++)
            {
                var logp = LogSoftmax(logits.AsSpan(i * vocab, vocab));
                for (int v = 0; v < vocab; v++)
                    if (Allowed(v)) candidates.Add((i, v, live[i].LogProb + logp[v]));
            }
            var next = new List<(int[] Tokens, double LogProb)>();
            // OrderByDescending is stable: ties keep (beam, token) order, as greedy's first-maximum argmax.
            foreach (var (beam, token, logProb) in candidates.OrderByDescending(c => c.LogProb).Take(beamWidth - finished.Count))
            {
                int[] tokens = [.. live[beam].Tokens, token];
                if (token == Config.EosId) finished.Add(Finish(tokens, logProb));
                else next.Add((tokens, logProb));
            }
            live = next;
        }
        finished.AddRange(live.Select(beam => Finish(beam.Tokens, beam.LogProb)));
        return [.. finished.OrderByDescending(h => h.Score)];
    }

    /// <summary>log p(tokens | source) under teacher forcing: Σ_t log p(y_t | y_&lt;t, x), for one source.</summary>
    public double LogProbability(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty) return 0;
        using var inference = new Inference(this);
        using var scope = TensorScope.Begin();
        var memory = Encode(source, 1, sourceLength);
        int[] input = [Config.BosId, .. tokens[..^1]];
        var logits = Decode(input, 1, input.Length, memory).ToArray();                             // (1, T, V)
        int vocab = Config.TargetVocabSize;
        double total = 0;
        for (int t = 0; t < tokens.Length; t++) total += LogSoftmax(logits.AsSpan(t * vocab, vocab))[tokens[t]];
        return total;
    }

    /// <summary>Decoding runs as inference: no autograd history and no dropout; the model's mode is restored afterwards.</summary>
    readonly struct Inference : IDisposable
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

    /// <summary>The memory of one source repeated for n beams.</summary>
    static EncodedSource Repeat(EncodedSource memory, int n) => n == 1 ? memory :
        new(Tensor.Cat([.. Enumerable.Repeat(memory.States, n)], 0), [.. Enumerable.Repeat(memory.Padding, n).SelectMany(p => p)]);

    /// <summary>log softmax in double: x_v − log Σ exp(x − max) − max.</summary>
    static double[] LogSoftmax(ReadOnlySpan<float> x)
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

    /// <summary>Decoding may produce any id but padding and BOS.</summary>
    bool Allowed(int id) => id != Config.PadId && id != Config.BosId;

    int ArgMaxAllowed(ReadOnlySpan<float> logits)
    {
        int best = -1;
        for (int v = 0; v < logits.Length; v++)
            if (Allowed(v) && (best < 0 || logits[v] > logits[best])) best = v;
        return best;
    }

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
            throw new ArgumentException($"The {what} reaches {offset + length} tokens but the learned position table has EncoderDecoderConfig.MaxLength = {Config.MaxLength} rows.", what);
    }

    void CheckMaxLength(int maxLength)
    {
        if (maxLength <= 0) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "The longest output must be at least one token.");
        if (Config.PositionalEncoding == PositionalEncodingKind.Learned && maxLength > Config.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"Decoding {maxLength} tokens needs that many positions, but EncoderDecoderConfig.MaxLength is {Config.MaxLength}.");
    }
}
