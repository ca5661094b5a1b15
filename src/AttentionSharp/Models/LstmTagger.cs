// Source: Huang, Xu and Yu, "Bidirectional LSTM-CRF Models for Sequence Tagging" (2015), the BI-LSTM tagger without the CRF.
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>
/// A bidirectional LSTM tagger: word embedding → L bidirectional LSTM layers → linear layer to tag logits. Each word's
/// tag reads the whole sentence, left context through the forward direction and right context through the backward one.
/// Letters: B batch, T time, E embedding, H hidden, K tags.
/// </summary>
public sealed class LstmTagger : Module
{
    readonly Generator _dropoutRng;

    public LstmTagger(LstmTaggerConfig config, Generator rng)
    {
        Config = config.Validate();
        _dropoutRng = new Generator(rng.NextUInt64());
        Embedding = RegisterModule("embedding", new Embedding(config.VocabSize, config.EmbeddingSize, rng));
        Lstm = RegisterModule("lstm", new Lstm(new RecurrentConfig
        {
            InputSize = config.EmbeddingSize, HiddenSize = config.HiddenSize, Layers = config.Layers,
            Bidirectional = true, BatchFirst = true, Dropout = config.Dropout,
        }, rng, _dropoutRng));
        Classifier = RegisterModule("classifier", new Linear(2 * config.HiddenSize, config.NumLabels, rng));
    }

    public LstmTaggerConfig Config { get; }
    public Embedding Embedding { get; }
    public Lstm Lstm { get; }

    /// <summary>The tag layer (K, 2·H).</summary>
    public Linear Classifier { get; }

    /// <summary>Word ids (B, T) → tag logits (B, T, K).</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch, int time)
    {
        if (batch <= 0 || time <= 0 || ids.Length != batch * time)
            throw new ArgumentException($"Expected {batch}×{time} = {batch * time} word ids, got {ids.Length}.", nameof(ids));
        var x = Embedding.Forward(ids, batch, time).Dropout(Config.Dropout, Training, _dropoutRng);      // (B, T, E)
        var (h, _, _) = Lstm.Forward(x);                                                                 // (B, T, 2H)
        return Classifier.Forward(h.Dropout(Config.Dropout, Training, _dropoutRng));                     // (B, T, K)
    }
}
