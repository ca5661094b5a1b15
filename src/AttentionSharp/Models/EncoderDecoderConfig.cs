using System.Text.Json.Nodes;
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>The shape of an encoder–decoder Transformer (Vaswani et al. 2017) and its special tokens.</summary>
public sealed record EncoderDecoderConfig
{
    /// <summary>The number of source token ids.</summary>
    public int SourceVocabSize { get; init; } = 37000;

    /// <summary>V: the number of target token ids.</summary>
    public int TargetVocabSize { get; init; } = 37000;

    /// <summary>N for the encoder: its number of layers.</summary>
    public int EncoderLayers { get; init; } = 6;

    /// <summary>N for the decoder: its number of layers.</summary>
    public int DecoderLayers { get; init; } = 6;

    /// <summary>C (d_model): the width of both stacks.</summary>
    public int Width { get; init; } = 512;

    /// <summary>NH (h): attention heads; HS = d_k = C / NH.</summary>
    public int Heads { get; init; } = 8;

    /// <summary>d_ff: the hidden width of the feed-forward blocks.</summary>
    public int FeedForwardWidth { get; init; } = 2048;

    /// <summary>The feed-forward non-linearity (the paper: ReLU).</summary>
    public FeedForwardActivation Activation { get; init; } = FeedForwardActivation.Relu;

    /// <summary>
    /// P_drop: dropout on the embedding sums, residual branches and feed-forward hidden units, and on the attention
    /// weights unless <see cref="AttentionDropout"/> is set.
    /// </summary>
    public float Dropout { get; init; } = 0.1f;

    /// <summary>Dropout on the attention weights alone; null means <see cref="Dropout"/>'s (the paper's one P_drop).</summary>
    public float? AttentionDropout { get; init; }

    /// <summary>Pre-LN layers with a final LayerNorm per stack when true; the paper's post-LN when false.</summary>
    public bool NormFirst { get; init; }

    /// <summary>The ε inside LayerNorm's square root.</summary>
    public float LayerNormEps { get; init; } = 1e-5f;

    /// <summary>How positions are encoded (the paper: sinusoidal, added to the scaled embeddings).</summary>
    public PositionalEncodingKind PositionalEncoding { get; init; } = PositionalEncodingKind.Sinusoidal;

    /// <summary>
    /// What the encoder's (bidirectional) and the decoder's (causal) self-attention compute: full (the paper), a sliding
    /// window with global tokens, or linear. Cross-attention stays full. Linear attention cannot skip padding keys, so
    /// it needs sources of one length.
    /// </summary>
    public AttentionPattern Attention { get; init; } = AttentionPattern.Full;

    /// <summary>The longest source or target sequence a learned position table holds (unused by the other kinds).</summary>
    public int MaxLength { get; init; } = 512;

    /// <summary>
    /// One embedding table for source and target (the paper, with a shared vocabulary); needs equal vocabulary sizes.
    /// </summary>
    public bool ShareEmbeddings { get; init; } = true;

    /// <summary>
    /// The output projection is the target embedding's transpose (the paper, §3.4) rather than its own Linear layer.
    /// </summary>
    public bool TieOutput { get; init; } = true;

    /// <summary>ε_ls: the weight of the uniform distribution mixed into the targets (the paper: 0.1).</summary>
    public float LabelSmoothing { get; init; } = 0.1f;

    /// <summary>The padding id, in both vocabularies: masked as a key and ignored by the loss.</summary>
    public int PadId { get; init; }

    /// <summary>The target id every decoder input starts with.</summary>
    public int BosId { get; init; } = 1;

    /// <summary>The target id that ends a generated sequence.</summary>
    public int EosId { get; init; } = 2;

    /// <summary>The base model of Vaswani et al. (2017), Table 3, with its shared 37 000-token vocabulary.</summary>
    public static EncoderDecoderConfig Base => new();

    /// <summary>A small model over one shared vocabulary that trains on two CPU cores in minutes.</summary>
    public static EncoderDecoderConfig Small(int vocabSize) => new()
    {
        SourceVocabSize = vocabSize, TargetVocabSize = vocabSize, EncoderLayers = 2, DecoderLayers = 2,
        Width = 64, Heads = 4, FeedForwardWidth = 256, Dropout = 0f,
    };

    /// <summary>The configuration of the encoder stack.</summary>
    public TransformerConfig EncoderStack => Stack(EncoderLayers);

    /// <summary>The configuration of the decoder stack.</summary>
    public TransformerConfig DecoderStack => Stack(DecoderLayers);

    TransformerConfig Stack(int layers) => new()
    {
        Layers = layers, Width = Width, Heads = Heads, FeedForwardWidth = FeedForwardWidth, Activation = Activation,
        Dropout = Dropout, AttentionDropout = AttentionDropout, NormFirst = NormFirst, FinalNorm = NormFirst,
        LayerNormEps = LayerNormEps,
        PositionalEncoding = PositionalEncoding, MaxLength = MaxLength, AttentionPattern = Attention,
    };

    /// <summary>Throws with the field, its value and the rule when the configuration cannot work.</summary>
    public EncoderDecoderConfig Validate()
    {
        const string R = nameof(EncoderDecoderConfig);
        if (SourceVocabSize <= 0) throw new ArgumentException($"{R}.SourceVocabSize must be positive; got {SourceVocabSize}.");
        if (TargetVocabSize <= 0) throw new ArgumentException($"{R}.TargetVocabSize must be positive; got {TargetVocabSize}.");
        if (EncoderLayers <= 0) throw new ArgumentException($"{R}.EncoderLayers must be positive; got {EncoderLayers}.");
        if (DecoderLayers <= 0) throw new ArgumentException($"{R}.DecoderLayers must be positive; got {DecoderLayers}.");
        MultiHeadAttentionConfig.ValidateShape(R, Width, Heads, null, PositionalEncoding, 10000f);
        if (FeedForwardWidth <= 0) throw new ArgumentException($"{R}.FeedForwardWidth must be positive; got {FeedForwardWidth}.");
        if (!Enum.IsDefined(Activation)) throw new ArgumentException($"{R}.Activation has the unknown value {(int)Activation}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"{R}.Dropout must be in [0, 1); got {Dropout}.");
        if (AttentionDropout is { } a && !(a >= 0 && a < 1))
            throw new ArgumentException($"{R}.AttentionDropout must be in [0, 1); got {a}.");
        if (!(LayerNormEps > 0)) throw new ArgumentException($"{R}.LayerNormEps must be positive; got {LayerNormEps}.");
        if (MaxLength <= 0) throw new ArgumentException($"{R}.MaxLength must be positive; got {MaxLength}.");
        TransformerConfig.ValidatePattern(R, Attention, PositionalEncoding, MaxLength);
        if (ShareEmbeddings && SourceVocabSize != TargetVocabSize)
            throw new ArgumentException($"{R}.ShareEmbeddings needs one vocabulary, but SourceVocabSize = " +
                                        $"{SourceVocabSize} and TargetVocabSize = {TargetVocabSize}.");
        if (!(LabelSmoothing >= 0 && LabelSmoothing < 1))
            throw new ArgumentException($"{R}.LabelSmoothing must be in [0, 1); got {LabelSmoothing}.");
        SpecialIds.Validate(R, PadId, BosId, EosId, SourceVocabSize, TargetVocabSize);
        return this;
    }

    /// <summary>The configuration as JSON (fairseq-like field names).</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["model_type"] = "encoder_decoder",
            ["source_vocab_size"] = SourceVocabSize,
            ["target_vocab_size"] = TargetVocabSize,
            ["encoder_layers"] = EncoderLayers,
            ["decoder_layers"] = DecoderLayers,
            ["d_model"] = Width,
            ["heads"] = Heads,
            ["d_ff"] = FeedForwardWidth,
            ["activation"] = Activation.ToString(),
            ["dropout"] = Dropout,
            ["norm_first"] = NormFirst,
            ["layer_norm_eps"] = LayerNormEps,
            ["positional_encoding"] = PositionalEncoding.ToString(),
            ["max_length"] = MaxLength,
            ["share_embeddings"] = ShareEmbeddings,
            ["tie_output"] = TieOutput,
            ["label_smoothing"] = LabelSmoothing,
            ["pad_id"] = PadId,
            ["bos_id"] = BosId,
            ["eos_id"] = EosId,
        };
        if (AttentionDropout is { } attentionDropout) json["attention_dropout"] = attentionDropout;  // absent: dropout's
        if (Attention.Kind != AttentionKind.Full) Attention.WriteJson(json);   // absent: full, as before the field existed
        return json;
    }

    /// <summary>Reads <see cref="ToJson"/>'s output; a missing or mistyped field is named in the error.</summary>
    public static EncoderDecoderConfig FromJson(JsonObject json)
    {
        var read = new ConfigJson(json, "encoder_decoder");
        var d = new EncoderDecoderConfig();
        return new EncoderDecoderConfig
        {
            SourceVocabSize = read.Int("source_vocab_size"), TargetVocabSize = read.Int("target_vocab_size"),
            EncoderLayers = read.Int("encoder_layers"), DecoderLayers = read.Int("decoder_layers"),
            Width = read.Int("d_model"), Heads = read.Int("heads"), FeedForwardWidth = read.Int("d_ff"),
            Activation = read.Enum("activation", d.Activation), Dropout = read.Float("dropout", d.Dropout),
            AttentionDropout = json["attention_dropout"] is null ? null : read.Float("attention_dropout"),
            NormFirst = read.Bool("norm_first", d.NormFirst), LayerNormEps = read.Float("layer_norm_eps", d.LayerNormEps),
            PositionalEncoding = read.Enum("positional_encoding", d.PositionalEncoding),
            MaxLength = read.Int("max_length", d.MaxLength),
            ShareEmbeddings = read.Bool("share_embeddings", d.ShareEmbeddings), TieOutput = read.Bool("tie_output", d.TieOutput),
            LabelSmoothing = read.Float("label_smoothing", d.LabelSmoothing),
            PadId = read.Int("pad_id", d.PadId), BosId = read.Int("bos_id", d.BosId), EosId = read.Int("eos_id", d.EosId),
            Attention = AttentionPattern.ReadJson(json, "encoder_decoder"),
        }.Validate();
    }
}
