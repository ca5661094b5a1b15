using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Training.Tasks;

/// <summary>
/// A part-of-speech tagging network — a BERT encoder or a bidirectional recurrent tagger, both reading each word's id
/// and its spelling — with its batch → logits (B, T, K) function, the config.json that rebuilds it, and a description.
/// </summary>
public sealed record TaggerNetwork(Module Model, Func<TaggingBatch, Tensor> Logits, JsonObject Config, string Description)
{
    /// <summary>The longest piece of a sentence the models read; longer sentences (a few in Brown) are cut.</summary>
    public const int MaxLength = 128;

    /// <summary>The network <paramref name="o"/> describes, for <paramref name="vocabulary"/>.</summary>
    public static TaggerNetwork Create(TrainOptions o, WordVocabulary vocabulary, Generator rng) => o.Model switch
    {
        "transformer" => Bert(new BertConfig
        {
            VocabSize = vocabulary.Count, MaxPositions = MaxLength, TypeVocabSize = 1, Layers = o.Layers ?? 4, Heads = o.Heads ?? 4,
            Width = o.Width ?? 128, IntermediateSize = 4 * (o.Width ?? 128), Dropout = o.Dropout ?? 0f,
            AttentionDropout = o.Dropout ?? 0f, PadTokenId = WordVocabulary.Pad, NumLabels = UniversalTags.Count,
            FeatureVocabSize = vocabulary.Features.Count, FeatureSlots = vocabulary.Features.Slots,
            PositionalEncoding = o.Positions ?? PositionalEncodingKind.Learned, Attention = o.Attention ?? AttentionPattern.Full,
        }, rng),
        _ => Recurrent(new RecurrentTaggerConfig
        {
            Cell = o.Model, VocabSize = vocabulary.Count, EmbeddingSize = o.Width ?? 128, HiddenSize = o.Width ?? 128,
            Layers = o.Layers ?? 2, NumLabels = UniversalTags.Count, Dropout = o.Dropout ?? 0f,
            FeatureVocabSize = vocabulary.Features.Count, FeatureSlots = vocabulary.Features.Slots,
        }, rng),
    };

    /// <summary>The tagger on an mlm checkpoint's encoder: its shape, with a tag layer and spelling features added.</summary>
#pragma warning disable format
    public static TaggerNetwork FromMlm(BertConfig mlm, float dropout, WordVocabulary vocabulary, Generator rng) => Bert(mlm with
    {
        NumLabels = UniversalTags.Count, FeatureVocabSize = vocabulary.Features.Count, FeatureSlots = vocabulary.Features.Slots,
        Dropout = dropout, AttentionDropout = dropout,
    }, rng);
#pragma warning restore format

    /// <summary>
    /// The network a pos checkpoint's config.json describes (weights not loaded), for the checkpoint's own
    /// <paramref name="vocabulary"/>: a vocabulary whose spelling features do not fit the network's table is refused.
    /// </summary>
    public static TaggerNetwork FromConfig(JsonObject config, WordVocabulary vocabulary, string checkpointDir)
    {
        if (config["network"] is not JsonObject network)
            throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' has no \"network\" object.");
        int size = network["feature_vocab_size"]?.GetValue<int>() ?? 0, slots = network["feature_slots"]?.GetValue<int>() ?? 0;
        if (size != vocabulary.Features.Count || slots != vocabulary.Features.Slots)
            throw new CheckpointException(
                $"Checkpoint '{checkpointDir}': its network reads {slots} spelling features a word from a table of {size}, " +
                $"but its vocabulary has {vocabulary.Features.Slots} ({string.Join(", ", vocabulary.Features.Kinds)}) from " +
                $"{vocabulary.Features.Count}; config.json and tokenizer.json come from different runs.");
        var rng = new Generator(0);
        return config["model"]?.GetValue<string>() switch
        {
            "transformer" => Bert(BertConfig.FromJson(network), rng),
            var cell when cell is not null && RecurrentBase.CellNames.Contains(cell) => Recurrent(RecurrentTaggerConfig.FromJson(network), rng),
            var other => throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' names the model '{other}'; " +
                                                       $"expected one of {string.Join(", ", TaskPresets.ModelsOf("pos"))}."),
        };
    }

    /// <summary>The network and vocabulary of a pos checkpoint (or run directory), weights loaded.</summary>
    public static (TaggerNetwork Network, WordVocabulary Vocabulary) Load(string checkpointDir)
    {
        var contents = Checkpoint.ReadContents(checkpointDir);
        var vocabulary = WordVocabulary.FromJson(contents.TokenizerJson, $"the vocabulary of checkpoint '{checkpointDir}'");
        var network = FromConfig(contents.Config, vocabulary, checkpointDir);
        Checkpoint.LoadWeights(checkpointDir, network.Model);
        return (network, vocabulary);
    }

    static TaggerNetwork Bert(BertConfig config, Generator rng)
    {
        var model = new Bert(config.Validate(), rng);
        return new TaggerNetwork(model, b => model.TagLogits(model.Forward(b.Ids, b.Batch, b.Time, features: b.Features)),
            Wrap("transformer", config.ToJson()),
            $"BERT encoder, {config.Layers} layers, {config.Heads} heads, width {config.Width}, " +
            $"{config.PositionalEncoding.ToString().ToLowerInvariant()} positions, with spelling features");
    }

    static TaggerNetwork Recurrent(RecurrentTaggerConfig config, Generator rng)
    {
        var model = new RecurrentTagger(config, rng);
        return new TaggerNetwork(model, b => model.Forward(b.Ids, b.Batch, b.Time, b.Features), Wrap(config.Cell, config.ToJson()),
            $"bidirectional {config.Cell.ToUpperInvariant()}, {config.Layers} layers, embedding {config.EmbeddingSize}, " +
            $"hidden {config.HiddenSize} per direction, with spelling features");
    }

    static JsonObject Wrap(string model, JsonObject network) => new()
    {
        ["task"] = "pos", ["model"] = model, ["max_length"] = MaxLength,
        ["tags"] = new JsonArray([.. UniversalTags.Names.Select(n => (JsonNode)JsonValue.Create(n))]),
        ["network"] = network,
    };
}
