using System.Text.Json.Nodes;
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>The shape of a BERT encoder (post-LN layers, GELU, learned positions, segment embeddings) and its heads.</summary>
public sealed record BertConfig
{
    /// <summary>V: the number of token ids.</summary>
    public int VocabSize { get; init; } = 30522;

    /// <summary>The longest sequence the model reads (the rows of the position table; HF's max_position_embeddings).</summary>
    public int MaxPositions { get; init; } = 512;

    /// <summary>The number of segment (token type) ids: sentence A and sentence B.</summary>
    public int TypeVocabSize { get; init; } = 2;

    /// <summary>L: the number of encoder layers.</summary>
    public int Layers { get; init; } = 12;

    /// <summary>NH: attention heads per layer; HS = C / NH.</summary>
    public int Heads { get; init; } = 12;

    /// <summary>C (hidden_size): the width of the residual stream.</summary>
    public int Width { get; init; } = 768;

    /// <summary>d_ff (intermediate_size): the hidden width of the feed-forward blocks.</summary>
    public int IntermediateSize { get; init; } = 3072;

    /// <summary>Dropout on the embeddings, the residual branches and the tagging head's input (hidden_dropout_prob).</summary>
    public float Dropout { get; init; } = 0.1f;

    /// <summary>Dropout on the attention weights (attention_probs_dropout_prob).</summary>
    public float AttentionDropout { get; init; } = 0.1f;

    /// <summary>The ε inside LayerNorm's square root (BERT: 1e-12).</summary>
    public float LayerNormEps { get; init; } = 1e-12f;

    /// <summary>The padding token: keys holding it are masked out of attention.</summary>
    public int PadTokenId { get; init; }

    /// <summary>Labels of the token-classification (tagging) head; 0 leaves the head out.</summary>
    public int NumLabels { get; init; }

    /// <summary>
    /// F: ids of the spelling-feature table (suffixes and word shape, <c>WordFeatures</c>), whose embeddings are
    /// added to each word's; 0 for none (BERT's own layout). Not a Hugging Face field.
    /// </summary>
    public int FeatureVocabSize { get; init; }

    /// <summary>S: spelling features per word, each an id into the feature table (0 when <see cref="FeatureVocabSize"/> is 0).</summary>
    public int FeatureSlots { get; init; }

    /// <summary>
    /// How positions enter: BERT's learned table (position_embeddings), sinusoids added to the embeddings, rotary q/k or
    /// ALiBi biases inside attention (the symmetric −m·|i − j| form), or none. Only Learned is a Hugging Face BERT.
    /// </summary>
    public PositionalEncodingKind PositionalEncoding { get; init; } = PositionalEncodingKind.Learned;

    /// <summary>What each layer's (bidirectional) self-attention computes: full (BERT), a sliding window with global tokens, or linear.</summary>
    public AttentionPattern Attention { get; init; } = AttentionPattern.Full;

    /// <summary>Each layer's attention: bidirectional self-attention of NH heads with these positions and this pattern.</summary>
    public MultiHeadAttentionConfig AttentionConfig => new()
    {
        Width = Width, Heads = Heads, Dropout = AttentionDropout,
        PositionalEncoding = PositionalEncoding, Attention = Attention,
    };

    /// <summary>BERT-base (Devlin et al. 2019): L = 12, C = 768, NH = 12, 110M parameters.</summary>
    public static BertConfig Base => new();

    /// <summary>A small model for a small vocabulary that trains on two CPU cores in minutes.</summary>
    public static BertConfig Small(int vocabSize) => new()
    {
        VocabSize = vocabSize, MaxPositions = 128, Layers = 4, Heads = 4, Width = 128, IntermediateSize = 512,
    };

    /// <summary>HS = C / NH.</summary>
    public int HeadSize => Width / Heads;

    /// <summary>Throws with the field, its value and the rule when the configuration cannot work.</summary>
    public BertConfig Validate()
    {
        if (VocabSize <= 0) throw new ArgumentException($"BertConfig.VocabSize must be positive; got {VocabSize}.");
        if (MaxPositions <= 0) throw new ArgumentException($"BertConfig.MaxPositions must be positive; got {MaxPositions}.");
        if (TypeVocabSize <= 0) throw new ArgumentException($"BertConfig.TypeVocabSize must be positive; got {TypeVocabSize}.");
        if (Layers <= 0) throw new ArgumentException($"BertConfig.Layers must be positive; got {Layers}.");
        if (Heads <= 0) throw new ArgumentException($"BertConfig.Heads must be positive; got {Heads}.");
        if (Width <= 0 || Width % Heads != 0)
            throw new ArgumentException($"BertConfig.Width ({Width}) must be a positive multiple of BertConfig.Heads ({Heads}) so that every head gets Width / Heads dimensions.");
        if (IntermediateSize <= 0) throw new ArgumentException($"BertConfig.IntermediateSize must be positive; got {IntermediateSize}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"BertConfig.Dropout must be in [0, 1); got {Dropout}.");
        if (!(AttentionDropout >= 0 && AttentionDropout < 1)) throw new ArgumentException($"BertConfig.AttentionDropout must be in [0, 1); got {AttentionDropout}.");
        if (!(LayerNormEps > 0)) throw new ArgumentException($"BertConfig.LayerNormEps must be positive; got {LayerNormEps}.");
        if (PadTokenId < 0 || PadTokenId >= VocabSize)
            throw new ArgumentException($"BertConfig.PadTokenId ({PadTokenId}) must be a token id in [0, {VocabSize}) (VocabSize = {VocabSize}).");
        if (NumLabels < 0) throw new ArgumentException($"BertConfig.NumLabels must be zero (no tagging head) or positive; got {NumLabels}.");
        if (FeatureVocabSize < 0 || FeatureSlots < 0 || (FeatureVocabSize > 0) != (FeatureSlots > 0))
            throw new ArgumentException($"BertConfig.FeatureVocabSize ({FeatureVocabSize}) and FeatureSlots ({FeatureSlots}) must both be zero (no spelling features) or both positive.");
        MultiHeadAttentionConfig.ValidateShape(nameof(BertConfig), Width, Heads, null, PositionalEncoding, 10000f);
        Attention.Validate(nameof(BertConfig), MaxPositions);
        if (Attention.Kind == AttentionKind.Linear && PositionalEncoding == PositionalEncodingKind.Alibi)
            throw new ArgumentException("BertConfig: linear attention forms no scores for ALiBi to bias; " +
                                        "use learned, sinusoidal, rotary or no positions with it.");
        return this;
    }

    /// <summary>The configuration with Hugging Face BertConfig field names.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["model_type"] = "bert",
            ["vocab_size"] = VocabSize,
            ["max_position_embeddings"] = MaxPositions,
            ["type_vocab_size"] = TypeVocabSize,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["hidden_size"] = Width,
            ["intermediate_size"] = IntermediateSize,
            ["hidden_dropout_prob"] = Dropout,
            ["attention_probs_dropout_prob"] = AttentionDropout,
            ["layer_norm_eps"] = LayerNormEps,
            ["pad_token_id"] = PadTokenId,
            ["num_labels"] = NumLabels,
        };
        if (FeatureVocabSize > 0) { json["feature_vocab_size"] = FeatureVocabSize; json["feature_slots"] = FeatureSlots; }
        // Written only when they differ from BERT's, so a BERT's JSON stays Hugging Face's.
        if (PositionalEncoding != PositionalEncodingKind.Learned) json["position_embedding_type"] = PositionalEncoding.ToString().ToLowerInvariant();
        if (Attention.Kind != AttentionKind.Full) Attention.WriteJson(json);
        return json;
    }

    /// <summary>Reads <see cref="ToJson"/>'s output; a missing or mistyped field is named in the error.</summary>
    public static BertConfig FromJson(JsonObject json)
    {
        var read = new ConfigJson(json, "bert");
        return new BertConfig
        {
            VocabSize = read.Int("vocab_size"), MaxPositions = read.Int("max_position_embeddings"),
            TypeVocabSize = read.Int("type_vocab_size"), Layers = read.Int("num_hidden_layers"),
            Heads = read.Int("num_attention_heads"), Width = read.Int("hidden_size"),
            IntermediateSize = read.Int("intermediate_size"), Dropout = read.Float("hidden_dropout_prob"),
            AttentionDropout = read.Float("attention_probs_dropout_prob"), LayerNormEps = read.Float("layer_norm_eps"),
            PadTokenId = read.Int("pad_token_id"), NumLabels = read.Int("num_labels", 0),
            FeatureVocabSize = read.Int("feature_vocab_size", 0), FeatureSlots = read.Int("feature_slots", 0),
            PositionalEncoding = ReadPositions(json), Attention = AttentionPattern.ReadJson(json, "bert"),
        }.Validate();
    }

    /// <summary>position_embedding_type: absent or Hugging Face's "absolute" is the learned table, else a kind's name.</summary>
    static PositionalEncodingKind ReadPositions(JsonObject json)
    {
        if (json["position_embedding_type"] is null) return PositionalEncodingKind.Learned;
        if (json["position_embedding_type"] is JsonValue v && v.TryGetValue<string>(out var name))
        {
            if (name == "absolute") return PositionalEncodingKind.Learned;
            if (Enum.TryParse<PositionalEncodingKind>(name, ignoreCase: true, out var kind) && Enum.IsDefined(kind)) return kind;
        }
        throw new ArgumentException($"The bert configuration's 'position_embedding_type' is {json["position_embedding_type"]}; " +
            $"expected \"absolute\" or one of {string.Join(", ", Enum.GetNames<PositionalEncodingKind>())}.");
    }
}
