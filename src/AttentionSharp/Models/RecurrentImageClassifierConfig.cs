using System.Text.Json.Nodes;
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>The shape of a <see cref="RecurrentImageClassifier"/>.</summary>
public sealed record RecurrentImageClassifierConfig
{
    /// <summary>The recurrent cell: rnn (Elman, tanh), lstm or gru.</summary>
    public string Cell { get; init; } = "lstm";

    /// <summary>H = W: the side of the square images; the sequence has H steps of Ch·W values.</summary>
    public int ImageSize { get; init; } = 28;

    /// <summary>Ch: channels of each image.</summary>
    public int Channels { get; init; } = 1;

    /// <summary>The number of classes.</summary>
    public int Classes { get; init; } = 10;

    /// <summary>Units of each layer and direction.</summary>
    public int HiddenSize { get; init; } = 128;

    /// <summary>Stacked layers.</summary>
    public int Layers { get; init; } = 2;

    /// <summary>Whether each layer also reads the rows bottom to top.</summary>
    public bool Bidirectional { get; init; } = true;

    /// <summary>Dropout between layers and before the classifier, during training.</summary>
    public float Dropout { get; init; }

    public int Directions => Bidirectional ? 2 : 1;

    /// <summary>Throws with the field, its value and the rule when the configuration cannot work.</summary>
    public RecurrentImageClassifierConfig Validate()
    {
        if (!RecurrentBase.CellNames.Contains(Cell)) throw new ArgumentException($"RecurrentImageClassifierConfig.Cell must be one of {string.Join(", ", RecurrentBase.CellNames)}; got '{Cell}'.");
        if (ImageSize <= 0) throw new ArgumentException($"RecurrentImageClassifierConfig.ImageSize must be positive; got {ImageSize}.");
        if (Channels <= 0) throw new ArgumentException($"RecurrentImageClassifierConfig.Channels must be positive; got {Channels}.");
        if (Classes <= 1) throw new ArgumentException($"RecurrentImageClassifierConfig.Classes must be at least 2; got {Classes}.");
        if (HiddenSize <= 0) throw new ArgumentException($"RecurrentImageClassifierConfig.HiddenSize must be positive; got {HiddenSize}.");
        if (Layers <= 0) throw new ArgumentException($"RecurrentImageClassifierConfig.Layers must be positive; got {Layers}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"RecurrentImageClassifierConfig.Dropout must be in [0, 1); got {Dropout}.");
        return this;
    }

    public JsonObject ToJson() => new()
    {
        ["model_type"] = "recurrent_image_classifier",
        ["cell"] = Cell,
        ["image_size"] = ImageSize,
        ["num_channels"] = Channels,
        ["num_labels"] = Classes,
        ["hidden_size"] = HiddenSize,
        ["num_layers"] = Layers,
        ["bidirectional"] = Bidirectional,
        ["dropout"] = Dropout,
    };

    /// <summary>Reads <see cref="ToJson"/>'s output; a missing or mistyped field is named in the error.</summary>
    public static RecurrentImageClassifierConfig FromJson(JsonObject json)
    {
        var read = new ConfigJson(json, "recurrent_image_classifier");
        return new RecurrentImageClassifierConfig
        {
            Cell = json["cell"] is JsonValue v && v.TryGetValue<string>(out var cell) ? cell : throw new ArgumentException("The recurrent_image_classifier config has no string field \"cell\"."),
            ImageSize = read.Int("image_size"), Channels = read.Int("num_channels"), Classes = read.Int("num_labels"),
            HiddenSize = read.Int("hidden_size"), Layers = read.Int("num_layers"), Bidirectional = read.Bool("bidirectional", true), Dropout = read.Float("dropout"),
        }.Validate();
    }
}
