// Source: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding" (2019), §3
// and appendix A.1; layout and parameter names of Hugging Face's modeling_bert.py.
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>
/// An encoder-only Transformer in BERT's layout, read top to bottom: token + position + segment embeddings, LayerNorm
/// and dropout; L post-LN layers with exact (erf) GELU; then a masked-language-model head tied to the token embedding,
/// and an optional token-classification (tagging) head. Attention never looks at padding keys.
/// Letters: B batch, T time, C width, NH heads, HS head size, V vocabulary.
/// </summary>
/// <remarks>
/// Parameter names are Hugging Face BertForMaskedLM's without its "bert." prefix, so a checkpoint maps by dropping it:
/// embeddings.{word_embeddings, position_embeddings, token_type_embeddings, LayerNorm};
/// encoder.layer.N.attention.self.{query, key, value}, encoder.layer.N.attention.output.{dense, LayerNorm},
/// encoder.layer.N.intermediate.dense, encoder.layer.N.output.{dense, LayerNorm};
/// cls.predictions.transform.{dense, LayerNorm}, cls.predictions.bias (cls.predictions.decoder.weight is
/// embeddings.word_embeddings.weight, tied); classifier (BertForTokenClassification's head) when NumLabels &gt; 0.
/// BERT keeps separate query, key and value projections, so its layer is written here rather than built from
/// <see cref="MultiHeadAttention"/>, whose fused in_proj_weight is torch's layout. HF excludes the padding row of the
/// token table from training (padding_idx); here it is an ordinary row, which only matters if padding is ever a target.
/// </remarks>
public sealed class Bert : Module
{
    readonly Generator _dropoutRng;

    public Bert(BertConfig config, Generator rng)
    {
        Config = config.Validate();
        _dropoutRng = RegisterGenerator("dropout", new Generator(rng.NextUInt64()));
        int c = config.Width;
        // Initialisation as BERT: N(0, 0.02) weights and embeddings, zero biases, LayerNorm gains 1.
        var embeddings = RegisterModule("embeddings", new ModuleGroup());
        WordEmbeddings = embeddings.Add("word_embeddings", new Embedding(config.VocabSize, c, rng, std: 0.02f));
        // Positions: BERT's learned table, or sinusoids added here, or RoPE / ALiBi inside attention, or nothing.
        if (config.PositionalEncoding == PositionalEncodingKind.Learned)
            PositionEmbeddings = embeddings.Add("position_embeddings", new Embedding(config.MaxPositions, c, rng, std: 0.02f));
        else if (config.PositionalEncoding == PositionalEncodingKind.Sinusoidal) _sinusoids = new SinusoidalPositionalEncoding(c);
        TokenTypeEmbeddings = embeddings.Add("token_type_embeddings", new Embedding(config.TypeVocabSize, c, rng, std: 0.02f));
        EmbeddingNorm = embeddings.Add("LayerNorm", new LayerNorm(c, config.LayerNormEps));

        var layers = RegisterModule("encoder", new ModuleGroup()).Add("layer", new ModuleList());
        for (int i = 0; i < config.Layers; i++) Layers.Add(layers.Add(new BertLayer(config, rng, _dropoutRng)));

        var predictions = RegisterModule("cls", new ModuleGroup()).Add("predictions", new ModuleGroup());
        var transform = predictions.Add("transform", new ModuleGroup());
        MlmDense = transform.Add("dense", Dense(c, c, rng));
        MlmNorm = transform.Add("LayerNorm", new LayerNorm(c, config.LayerNormEps));
        MlmBias = predictions.AddParameter("bias", Tensor.Zeros(config.VocabSize));

        if (config.NumLabels > 0) Classifier = RegisterModule("classifier", Dense(c, config.NumLabels, rng));
        // Drawn last, so a model without features initialises exactly as before.
        if (config.FeatureVocabSize > 0)
            FeatureEmbeddings = embeddings.Add("feature_embeddings", new Embedding(config.FeatureVocabSize, c, rng, std: 0.02f));
    }

    public BertConfig Config { get; }

    /// <summary>The generator dropout draws from.</summary>
    public Generator DropoutGenerator => _dropoutRng;

    public Embedding WordEmbeddings { get; }
    /// <summary>The learned position table; null unless <see cref="BertConfig.PositionalEncoding"/> is Learned.</summary>
    public Embedding? PositionEmbeddings { get; }

    readonly SinusoidalPositionalEncoding? _sinusoids;
    public Embedding TokenTypeEmbeddings { get; }
    public LayerNorm EmbeddingNorm { get; }

    /// <summary>The spelling-feature table (F, C), or null when <see cref="BertConfig.FeatureVocabSize"/> is 0.</summary>
    public Embedding? FeatureEmbeddings { get; }
    public List<BertLayer> Layers { get; } = [];

    /// <summary>The MLM head's transform: dense (C, C), then GELU and <see cref="MlmNorm"/>.</summary>
    public Linear MlmDense { get; }
    public LayerNorm MlmNorm { get; }

    /// <summary>The MLM decoder's bias (V); its weight is the token embedding.</summary>
    public Tensor MlmBias { get; }

    /// <summary>The tagging head (NumLabels, C), or null when <see cref="BertConfig.NumLabels"/> is 0.</summary>
    public Linear? Classifier { get; }

    /// <summary>
    /// Token ids (B, T) and segment ids (B, T; empty means all segment 0) → hidden states (B, T, C). Keys holding
    /// <see cref="BertConfig.PadTokenId"/> are masked out of every attention (HF's attention_mask = ids ≠ pad).
    /// With spelling features (<see cref="BertConfig.FeatureVocabSize"/> &gt; 0), <paramref name="features"/> holds S ids per
    /// token (B, T, S) and the sum of their embeddings joins the token's.
    /// </summary>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch, int time, ReadOnlySpan<int> segments = default,
        ReadOnlySpan<int> features = default)
    {
        if (time > Config.MaxPositions && Config.PositionalEncoding == PositionalEncodingKind.Learned)
            throw new ArgumentException(
                $"The sequence has {time} tokens but the position table has " +
                $"BertConfig.MaxPositions = {Config.MaxPositions} rows.",
                nameof(ids));
        if (batch <= 0 || time <= 0 || ids.Length != batch * time)
            throw new ArgumentException($"Expected {batch}×{time} = {batch * time} token ids, got {ids.Length}.", nameof(ids));
        var segmentIds = segments.IsEmpty ? new int[ids.Length] : segments.ToArray();
        if (segmentIds.Length != ids.Length)
            throw new ArgumentException($"Expected {batch}×{time} = {batch * time} segment ids, got {segmentIds.Length}.",
                nameof(segments));
        for (int i = 0; i < segmentIds.Length; i++)
            if ((uint)segmentIds[i] >= (uint)Config.TypeVocabSize)
                throw new ArgumentException($"Segment id {segmentIds[i]} at index {i} is out of range: " +
                    $"BertConfig.TypeVocabSize = {Config.TypeVocabSize} allows ids 0 … {Config.TypeVocabSize - 1}.",
                    nameof(segments));
        var padding = new bool[ids.Length];
        for (int i = 0; i < ids.Length; i++) padding[i] = ids[i] == Config.PadTokenId;
        var mask = new AttentionMask { KeyPadding = padding };

        // E = E_token + E_position + E_segment (Devlin et al. 2019, figure 2), then LayerNorm and dropout
        var x = WordEmbeddings.Forward(ids, batch, time);                                                 // (B, T, C)
        if (PositionEmbeddings is not null)
        {
            var positions = new int[time];
            for (int t = 0; t < time; t++) positions[t] = t;
            x = x + PositionEmbeddings.Forward(positions, time);                                          // + (T, C)
        }
        else if (_sinusoids is not null) x = _sinusoids.Forward(x);                                       // + PE (T, C)
        x = x + TokenTypeEmbeddings.Forward(segmentIds, batch, time);                                     // + (B, T, C)
        if (FeatureEmbeddings is not null)
            x += WordFeatureSum(FeatureEmbeddings, features, batch, time, Config.FeatureSlots);          // + (B, T, C)
        else if (!features.IsEmpty)
            throw new ArgumentException(
                "This BERT has no spelling-feature table (BertConfig.FeatureVocabSize is 0), yet features were given.",
                nameof(features));
        x = EmbeddingNorm.Forward(x).Dropout(Config.Dropout, Training, _dropoutRng);
        foreach (var layer in Layers) x = layer.Forward(x, mask);                                         // (B, T, C)
        return x;
    }

    /// <summary>
    /// Hidden states (B, T, C) → MLM logits (B, T, V): LayerNorm(GELU(dense(h)))·Eᵀ + b with E the token embedding.
    /// </summary>
    public Tensor MlmLogits(Tensor hidden)
    {
        var h = MlmNorm.Forward(MlmDense.Forward(hidden).Gelu());                                         // (B, T, C)
        return Tensor.Linear(h, WordEmbeddings.Weight, MlmBias);                                          // (B, T, V), tied
    }

    /// <summary>Mean cross-entropy over the masked positions: labels hold the original id there and −100 elsewhere.</summary>
    public Tensor MlmLoss(Tensor logits, ReadOnlySpan<int> labels) =>
        Tensor.CrossEntropy(logits, labels, ignoreIndex: IgnoreIndex);

    /// <summary>Hidden states (B, T, C) → tag logits (B, T, NumLabels): classifier(Dropout(h)).</summary>
    public Tensor TagLogits(Tensor hidden)
    {
        if (Classifier is null)
            throw new InvalidOperationException(
                "This BERT has no tagging head: BertConfig.NumLabels is 0; set it to the number of tags.");
        return Classifier.Forward(hidden.Dropout(Config.Dropout, Training, _dropoutRng));
    }

    /// <summary>
    /// Mean cross-entropy of the tag logits; positions labelled −100 (padding, continuation pieces) are skipped.
    /// </summary>
    public Tensor TagLoss(Tensor logits, ReadOnlySpan<int> labels) =>
        Tensor.CrossEntropy(logits, labels, ignoreIndex: IgnoreIndex);

    /// <summary>
    /// Σ_s E_feature[f_{b,t,s}]: the summed embeddings of S feature ids per word, (B, T, S) ids → (B, T, C). Shared by the
    /// taggers that read spelling features.
    /// </summary>
    public static Tensor WordFeatureSum(Embedding table, ReadOnlySpan<int> features, int batch, int time, int slots)
    {
        if (features.Length != batch * time * slots)
            throw new ArgumentException($"Expected {batch}×{time}×{slots} = {batch * time * slots} spelling-feature ids " +
                $"(S = {slots} per word), got {features.Length}.", nameof(features));
        return Tensor.Embedding(table.Weight, features, batch, time, slots).Sum(2);       // (B, T, S, C) → (B, T, C)
    }

    /// <summary>The label of positions that no loss counts (PyTorch's and Hugging Face's convention).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>A Linear layer initialised as BERT's (and GPT-2's): weight ~ N(0, 0.02²), bias 0.</summary>
    internal static Linear Dense(int inFeatures, int outFeatures, Generator rng) =>
        GptInit.Linear(inFeatures, outFeatures, rng, bias: true, std: 0.02f);
}

/// <summary>
/// One post-LN BERT layer: x = LN(x + Dropout(Attention(x)·W^O)), then x = LN(x + Dropout(W₂·GELU(W₁·x))).
/// Query, key and value have separate projections, as in the checkpoints.
/// </summary>
public sealed class BertLayer : Module
{
    readonly BertConfig _config;
    readonly Generator _dropoutRng;
    readonly AttentionCore _core;

    public BertLayer(BertConfig config, Generator rng, Generator dropoutRng)
    {
        _config = config;
        _dropoutRng = RegisterGenerator("dropout", dropoutRng);
        _core = new AttentionCore(config.AttentionConfig, dropoutRng);
        int c = config.Width, ff = config.IntermediateSize;
        var attention = RegisterModule("attention", new ModuleGroup());
        var self = attention.Add("self", new ModuleGroup());
        Query = self.Add("query", Bert.Dense(c, c, rng));
        Key = self.Add("key", Bert.Dense(c, c, rng));
        Value = self.Add("value", Bert.Dense(c, c, rng));
        var attentionOutput = attention.Add("output", new ModuleGroup());
        AttentionOut = attentionOutput.Add("dense", Bert.Dense(c, c, rng));
        AttentionNorm = attentionOutput.Add("LayerNorm", new LayerNorm(c, config.LayerNormEps));
        Intermediate = RegisterModule("intermediate", new ModuleGroup()).Add("dense", Bert.Dense(c, ff, rng));
        var output = RegisterModule("output", new ModuleGroup());
        Output = output.Add("dense", Bert.Dense(ff, c, rng));
        OutputNorm = output.Add("LayerNorm", new LayerNorm(c, config.LayerNormEps));
    }

    /// <summary>W^Q, W^K, W^V: (C, C) each.</summary>
    public Linear Query { get; }
    public Linear Key { get; }
    public Linear Value { get; }

    /// <summary>W^O (C, C) and the LayerNorm after the attention branch.</summary>
    public Linear AttentionOut { get; }
    public LayerNorm AttentionNorm { get; }

    /// <summary>W₁ (d_ff, C), W₂ (C, d_ff) and the LayerNorm after the feed-forward branch.</summary>
    public Linear Intermediate { get; }
    public Linear Output { get; }
    public LayerNorm OutputNorm { get; }

    /// <summary>(B, T, C) → (B, T, C); <paramref name="mask"/> carries the key padding.</summary>
    public Tensor Forward(Tensor x, AttentionMask mask)
    {
        x = AttentionNorm.Forward(x + Drop(AttentionOut.Forward(SelfAttention(x, mask))));   // LN(x + Dropout(MultiHead(x)))
        return OutputNorm.Forward(x + Drop(Output.Forward(Intermediate.Forward(x).Gelu())));         // LN(x + Dropout(FFN(x)))
    }

    /// <summary>
    /// Concat(head_1, …, head_h) with head_i = softmax(Q_i·K_iᵀ/√d_k + M)·V_i, M = −∞ at padding keys (or the
    /// configured pattern and positions, see <see cref="AttentionCore"/>): (B, T, C).
    /// </summary>
    Tensor SelfAttention(Tensor x, AttentionMask mask)
    {
        // One product forms Q, K and V: the three weights stacked by rows, [W^Q; W^K; W^V] (3C, C), as a fused
        // projection, whose heads the attention then reads in place.
        var weight = Tensor.Cat([Query.Weight, Key.Weight, Value.Weight], 0);
        var bias = Tensor.Cat([Query.Bias!, Key.Bias!, Value.Bias!], 0);
        return _core.SelfAttention(Tensor.Linear(x, weight, bias), mask, default, Training);   // (B, T, C)
    }

    Tensor Drop(Tensor t) => t.Dropout(_config.Dropout, Training, _dropoutRng);
}
