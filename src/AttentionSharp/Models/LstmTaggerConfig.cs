using System.Text.Json.Nodes;

namespace AttentionSharp.Models;

/// <summary>The shape of a <see cref="LstmTagger"/>.</summary>
public sealed record LstmTaggerConfig
{
    /// <summary>V: word ids, padding and unknown included.</summary>
    public int VocabSize { get; init; } = 1000;

    /// <summary>E: width of the word embeddings (the LSTM's input size).</summary>
    public int EmbeddingSize { get; init; } = 128;

    /// <summary>H: units of each LSTM layer and direction; the tag layer reads 2·H.</summary>
    public int HiddenSize { get; init; } = 128;

    /// <summary>L: stacked bidirectional LSTM layers.</summary>
    public int Layers { get; init; } = 1;

    /// <summary>K: the number of tags.</summary>
    public int NumLabels { get; init; } = 12;

    /// <summary>Dropout on the embeddings, between LSTM layers and before the tag layer, during training.</summary>
    public float Dropout { get; init; }

    /// <summary>Throws with the field, its value and the rule when the configuration cannot work.</summary>
    public LstmTaggerConfig Validate()
    {
        if (VocabSize <= 0) throw new ArgumentException($"LstmTaggerConfig.VocabSize must be positive; got {VocabSize}.");
        if (EmbeddingSize <= 0) throw new ArgumentException($"LstmTaggerConfig.EmbeddingSize must be positive; got {EmbeddingSize}.");
        if (HiddenSize <= 0) throw new ArgumentException($"LstmTaggerConfig.HiddenSize must be positive; got {HiddenSize}.");
        if (Layers <= 0) throw new ArgumentException($"LstmTaggerConfig.Layers must be positive; got {Layers}.");
        if (NumLabels <= 0) throw new ArgumentException($"LstmTaggerConfig.NumLabels must be positive; got {NumLabels}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"LstmTaggerConfig.Dropout must be in [0, 1); got {Dropout}.");
        return this;
    }

    public JsonObject ToJson() => new()
    {
        ["model_type"] = "lstm_tagger",
        ["vocab_size"] = VocabSize,
        ["embedding_size"] = EmbeddingSize,
        ["hidden_size"] = HiddenSize,
        ["num_layers"] = Layers,
        ["num_labels"] = NumLabels,
        ["dropout"] = Dropout,
    };

    /// <summary>Reads <see cref="ToJson"/>'s output; a missing or mistyped field is named in the error.</summary>
    public static LstmTaggerConfig FromJson(JsonObject json)
    {
        var read = new ConfigJson(json, "lstm_tagger");
        return new LstmTaggerConfig
        {
            VocabSize = read.Int("vocab_size"), EmbeddingSize = read.Int("embedding_size"), HiddenSize = read.Int("hidden_size"),
            Layers = read.Int("num_layers"), NumLabels = read.Int("num_labels"), Dropout = read.Float("dropout"),
        }.Validate();
    }
}
