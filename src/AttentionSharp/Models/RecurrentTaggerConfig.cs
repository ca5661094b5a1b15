using System.Text.Json.Nodes;
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>The shape of a <see cref="RecurrentTagger"/>.</summary>
public sealed record RecurrentTaggerConfig
{
    /// <summary>The recurrent cell: rnn (Elman, tanh), lstm or gru.</summary>
    public string Cell { get; init; } = "lstm";

    /// <summary>V: word ids, padding and unknown included.</summary>
    public int VocabSize { get; init; } = 1000;

    /// <summary>E: width of the word embeddings (the first layer's input size).</summary>
    public int EmbeddingSize { get; init; } = 128;

    /// <summary>H: units of each layer and direction; the tag layer reads 2·H.</summary>
    public int HiddenSize { get; init; } = 128;

    /// <summary>L: stacked bidirectional layers.</summary>
    public int Layers { get; init; } = 1;

    /// <summary>K: the number of tags.</summary>
    public int NumLabels { get; init; } = 12;

    /// <summary>Dropout on the embeddings, between layers and before the tag layer, during training.</summary>
    public float Dropout { get; init; }

    /// <summary>F: ids of the spelling-feature table (<c>WordFeatures</c>), embedded in E and added to the word's embedding; 0 for none.</summary>
    public int FeatureVocabSize { get; init; }

    /// <summary>S: spelling features per word (0 when <see cref="FeatureVocabSize"/> is 0).</summary>
    public int FeatureSlots { get; init; }

    /// <summary>Throws with the field, its value and the rule when the configuration cannot work.</summary>
    public RecurrentTaggerConfig Validate()
    {
        if (!RecurrentBase.CellNames.Contains(Cell)) throw new ArgumentException($"RecurrentTaggerConfig.Cell must be one of {string.Join(", ", RecurrentBase.CellNames)}; got '{Cell}'.");
        if (VocabSize <= 0) throw new ArgumentException($"RecurrentTaggerConfig.VocabSize must be positive; got {VocabSize}.");
        if (EmbeddingSize <= 0) throw new ArgumentException($"RecurrentTaggerConfig.EmbeddingSize must be positive; got {EmbeddingSize}.");
        if (HiddenSize <= 0) throw new ArgumentException($"RecurrentTaggerConfig.HiddenSize must be positive; got {HiddenSize}.");
        if (Layers <= 0) throw new ArgumentException($"RecurrentTaggerConfig.Layers must be positive; got {Layers}.");
        if (NumLabels <= 0) throw new ArgumentException($"RecurrentTaggerConfig.NumLabels must be positive; got {NumLabels}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"RecurrentTaggerConfig.Dropout must be in [0, 1); got {Dropout}.");
        if (FeatureVocabSize < 0 || FeatureSlots < 0 || (FeatureVocabSize > 0) != (FeatureSlots > 0))
            throw new ArgumentException($"RecurrentTaggerConfig.FeatureVocabSize ({FeatureVocabSize}) and FeatureSlots ({FeatureSlots}) must both be zero (no spelling features) or both positive.");
        return this;
    }

    public JsonObject ToJson() => new()
    {
        ["model_type"] = "recurrent_tagger",
        ["cell"] = Cell,
        ["vocab_size"] = VocabSize,
        ["embedding_size"] = EmbeddingSize,
        ["hidden_size"] = HiddenSize,
        ["num_layers"] = Layers,
        ["num_labels"] = NumLabels,
        ["dropout"] = Dropout,
        ["feature_vocab_size"] = FeatureVocabSize,
        ["feature_slots"] = FeatureSlots,
    };

    /// <summary>Reads <see cref="ToJson"/>'s output; a missing or mistyped field is named in the error.</summary>
    public static RecurrentTaggerConfig FromJson(JsonObject json)
    {
        var read = new ConfigJson(json, "recurrent_tagger");
        return new RecurrentTaggerConfig
        {
            Cell = json["cell"] is JsonValue v && v.TryGetValue<string>(out var cell) ? cell : throw new ArgumentException("The recurrent_tagger config has no string field \"cell\"."),
            VocabSize = read.Int("vocab_size"), EmbeddingSize = read.Int("embedding_size"), HiddenSize = read.Int("hidden_size"),
            Layers = read.Int("num_layers"), NumLabels = read.Int("num_labels"), Dropout = read.Float("dropout"),
            FeatureVocabSize = read.Int("feature_vocab_size", 0), FeatureSlots = read.Int("feature_slots", 0),
        }.Validate();
    }
}
