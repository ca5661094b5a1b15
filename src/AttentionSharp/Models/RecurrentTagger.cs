// Source: Huang, Xu and Yu, "Bidirectional LSTM-CRF Models for Sequence Tagging" (2015), the BI-LSTM tagger without the
// CRF, with spelling features in the manner of its §3.3 (there a feature vector; here embedded ids).
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>
/// A bidirectional recurrent tagger (Elman RNN, LSTM or GRU): word embedding (+ spelling-feature embeddings) → L
/// bidirectional layers → linear layer to tag logits. Each word's tag reads the whole sentence, left context through the
/// forward direction and right context through the backward one.
/// Letters: B batch, T time, E embedding, H hidden, K tags, S spelling features per word.
/// </summary>
/// <remarks>Parameter names: embedding.weight, feature_embedding.weight, {rnn|lstm|gru}.… as torch.nn's, classifier.</remarks>
public sealed class RecurrentTagger : Module
{
    readonly Generator _dropoutRng;

    public RecurrentTagger(RecurrentTaggerConfig config, Generator rng)
    {
        Config = config.Validate();
        _dropoutRng = RegisterGenerator("dropout", new Generator(rng.NextUInt64()));
        Embedding = RegisterModule("embedding", new Embedding(config.VocabSize, config.EmbeddingSize, rng));
        Recurrent = RegisterModule(config.Cell, RecurrentBase.Create(config.Cell, new RecurrentConfig
        {
            InputSize = config.EmbeddingSize, HiddenSize = config.HiddenSize, Layers = config.Layers,
            Bidirectional = true, BatchFirst = true, Dropout = config.Dropout,
        }, rng, _dropoutRng));
        Classifier = RegisterModule("classifier", new Linear(2 * config.HiddenSize, config.NumLabels, rng));
        if (config.FeatureVocabSize > 0) FeatureEmbedding = RegisterModule("feature_embedding", new Embedding(config.FeatureVocabSize, config.EmbeddingSize, rng));
    }

    public RecurrentTaggerConfig Config { get; }
    public Embedding Embedding { get; }

    /// <summary>The spelling-feature table (F, E), or null without features.</summary>
    public Embedding? FeatureEmbedding { get; }

    /// <summary>The bidirectional stack: <see cref="Rnn"/>, <see cref="Lstm"/> or <see cref="Gru"/>.</summary>
    public RecurrentBase Recurrent { get; }

    /// <summary>The tag layer (K, 2·H).</summary>
    public Linear Classifier { get; }

    /// <summary>Word ids (B, T) and, with spelling features, their ids (B, T, S) → tag logits (B, T, K).</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch, int time, ReadOnlySpan<int> features = default)
    {
        if (batch <= 0 || time <= 0 || ids.Length != batch * time)
            throw new ArgumentException($"Expected {batch}×{time} = {batch * time} word ids, got {ids.Length}.", nameof(ids));
        var x = Embedding.Forward(ids, batch, time);                                                    // (B, T, E)
        if (FeatureEmbedding is not null) x += Bert.WordFeatureSum(FeatureEmbedding, features, batch, time, Config.FeatureSlots);
        else if (!features.IsEmpty) throw new ArgumentException("This tagger has no spelling-feature table (FeatureVocabSize is 0), yet features were given.", nameof(features));
        var h = Recurrent.ForwardSequence(x.Dropout(Config.Dropout, Training, _dropoutRng));             // (B, T, 2H)
        return Classifier.Forward(h.Dropout(Config.Dropout, Training, _dropoutRng));                     // (B, T, K)
    }
}
