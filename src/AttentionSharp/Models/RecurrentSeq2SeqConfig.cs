using System.Text.Json.Nodes;
using AttentionSharp.Kernels;

namespace AttentionSharp.Models;

/// <summary>How the decoder of a <see cref="RecurrentSeq2Seq"/> looks at the encoder's states.</summary>
public enum Seq2SeqAttention
{
    /// <summary>No attention: the encoder's final state is all the decoder gets (Sutskever et al. 2014's fixed-size bottleneck).</summary>
    None,

    /// <summary>Luong et al. (2015) "dot": score(h_t, h̄_s) = h_tᵀ h̄_s.</summary>
    Dot,

    /// <summary>Luong et al. (2015) "general": score(h_t, h̄_s) = h_tᵀ W_a h̄_s.</summary>
    General,
}

/// <summary>The shape of a recurrent encoder–decoder (<see cref="RecurrentSeq2Seq"/>) and its special tokens.</summary>
public sealed record RecurrentSeq2SeqConfig
{
    /// <summary>Source ids, padding included.</summary>
    public int SourceVocabSize { get; init; } = 32;

    /// <summary>V: target ids, padding, BOS and EOS included.</summary>
    public int TargetVocabSize { get; init; } = 48;

    /// <summary>The recurrent cell of encoder and decoder: Lstm, Gru or Tanh (Elman RNN).</summary>
    public RecurrentCell Cell { get; init; } = RecurrentCell.Lstm;

    /// <summary>E: width of the source and target embeddings.</summary>
    public int EmbeddingSize { get; init; } = 128;

    /// <summary>H: the decoder's units per layer; a bidirectional encoder has H/2 per direction, so its outputs are H wide too.</summary>
    public int HiddenSize { get; init; } = 256;

    /// <summary>L: layers of the encoder and of the decoder; decoder layer l starts from encoder layer l's final state.</summary>
    public int Layers { get; init; } = 2;

    /// <summary>The encoder reads the source both ways (H/2 units each), its two final states concatenated per layer.</summary>
    public bool BidirectionalEncoder { get; init; } = true;

    /// <summary>The attention over the encoder's states, or none.</summary>
    public Seq2SeqAttention Attention { get; init; } = Seq2SeqAttention.General;

    /// <summary>Dropout on the embeddings, between recurrent layers and before the output layer, during training.</summary>
    public float Dropout { get; init; }

    /// <summary>ε_ls: label smoothing of the training loss.</summary>
    public float LabelSmoothing { get; init; }

    /// <summary>The padding id, in both vocabularies: ignored by the loss; sources may not contain it.</summary>
    public int PadId { get; init; }

    /// <summary>The target id every decoder input starts with.</summary>
    public int BosId { get; init; } = 1;

    /// <summary>The target id that ends a generated sequence.</summary>
    public int EosId { get; init; } = 2;

    /// <summary>Units per encoder direction: H/2 when bidirectional, else H.</summary>
    public int EncoderHiddenSize => BidirectionalEncoder ? HiddenSize / 2 : HiddenSize;

    /// <summary>Throws with the field, its value and the rule when the configuration cannot work.</summary>
    public RecurrentSeq2SeqConfig Validate()
    {
        const string R = nameof(RecurrentSeq2SeqConfig);
        if (SourceVocabSize <= 0) throw new ArgumentException($"{R}.SourceVocabSize must be positive; got {SourceVocabSize}.");
        if (TargetVocabSize <= 0) throw new ArgumentException($"{R}.TargetVocabSize must be positive; got {TargetVocabSize}.");
        if (!Enum.IsDefined(Cell)) throw new ArgumentException($"{R}.Cell has the unknown value {(int)Cell}.");
        if (EmbeddingSize <= 0) throw new ArgumentException($"{R}.EmbeddingSize must be positive; got {EmbeddingSize}.");
        if (HiddenSize <= 0) throw new ArgumentException($"{R}.HiddenSize must be positive; got {HiddenSize}.");
        if (BidirectionalEncoder && HiddenSize % 2 != 0)
            throw new ArgumentException($"{R}.HiddenSize ({HiddenSize}) must be even with a bidirectional encoder, which has HiddenSize/2 units per direction.");
        if (Layers <= 0) throw new ArgumentException($"{R}.Layers must be positive; got {Layers}.");
        if (!Enum.IsDefined(Attention)) throw new ArgumentException($"{R}.Attention has the unknown value {(int)Attention}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"{R}.Dropout must be in [0, 1); got {Dropout}.");
        if (!(LabelSmoothing >= 0 && LabelSmoothing < 1)) throw new ArgumentException($"{R}.LabelSmoothing must be in [0, 1); got {LabelSmoothing}.");
        SpecialIds.Validate(R, PadId, BosId, EosId, SourceVocabSize, TargetVocabSize);
        return this;
    }

    public JsonObject ToJson() => new()
    {
        ["model_type"] = "recurrent_seq2seq",
        ["source_vocab_size"] = SourceVocabSize,
        ["target_vocab_size"] = TargetVocabSize,
        ["cell"] = Cell.ToString(),
        ["embedding_size"] = EmbeddingSize,
        ["hidden_size"] = HiddenSize,
        ["num_layers"] = Layers,
        ["bidirectional_encoder"] = BidirectionalEncoder,
        ["attention"] = Attention.ToString(),
        ["dropout"] = Dropout,
        ["label_smoothing"] = LabelSmoothing,
        ["pad_id"] = PadId,
        ["bos_id"] = BosId,
        ["eos_id"] = EosId,
    };

    /// <summary>Reads <see cref="ToJson"/>'s output; a missing or mistyped field is named in the error.</summary>
    public static RecurrentSeq2SeqConfig FromJson(JsonObject json)
    {
        var read = new ConfigJson(json, "recurrent_seq2seq");
        var d = new RecurrentSeq2SeqConfig();
        return new RecurrentSeq2SeqConfig
        {
            SourceVocabSize = read.Int("source_vocab_size"), TargetVocabSize = read.Int("target_vocab_size"),
            Cell = read.Enum("cell", d.Cell), EmbeddingSize = read.Int("embedding_size"), HiddenSize = read.Int("hidden_size"),
            Layers = read.Int("num_layers"), BidirectionalEncoder = read.Bool("bidirectional_encoder", d.BidirectionalEncoder),
            Attention = read.Enum("attention", d.Attention), Dropout = read.Float("dropout", d.Dropout),
            LabelSmoothing = read.Float("label_smoothing", d.LabelSmoothing),
            PadId = read.Int("pad_id", d.PadId), BosId = read.Int("bos_id", d.BosId), EosId = read.Int("eos_id", d.EosId),
        }.Validate();
    }
}

/// <summary>The rules every sequence-to-sequence configuration's padding, BOS and EOS ids follow.</summary>
internal static class SpecialIds
{
    /// <summary>All three are target ids, padding is a source id too, and the three differ; errors name <paramref name="record"/>'s fields.</summary>
    public static void Validate(string record, int padId, int bosId, int eosId, int sourceVocabSize, int targetVocabSize)
    {
        foreach (var (name, id) in new[] { ("PadId", padId), ("BosId", bosId), ("EosId", eosId) })
            if ((uint)id >= (uint)targetVocabSize)
                throw new ArgumentException($"{record}.{name} ({id}) must be a target id in [0, {targetVocabSize}) (TargetVocabSize = {targetVocabSize}).");
        if ((uint)padId >= (uint)sourceVocabSize)
            throw new ArgumentException($"{record}.PadId ({padId}) must also be a source id in [0, {sourceVocabSize}) (SourceVocabSize = {sourceVocabSize}).");
        if (padId == bosId || padId == eosId || bosId == eosId)
            throw new ArgumentException($"{record}.PadId ({padId}), BosId ({bosId}) and EosId ({eosId}) must be three different ids.");
    }
}
