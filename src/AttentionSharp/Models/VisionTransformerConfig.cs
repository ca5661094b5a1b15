using System.Text.Json.Nodes;
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>The shape of a Vision Transformer (Dosovitskiy et al. 2021): square images cut into square patches.</summary>
public sealed record VisionTransformerConfig
{
    /// <summary>The side of the (square) input images in pixels.</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary>P: the side of each square patch; it must divide <see cref="ImageSize"/>.</summary>
    public int PatchSize { get; init; } = 16;

    /// <summary>The colour channels of the input (3 for RGB, 1 for greyscale).</summary>
    public int Channels { get; init; } = 3;

    /// <summary>The number of classes the head scores.</summary>
    public int Classes { get; init; } = 1000;

    /// <summary>L: the number of encoder layers.</summary>
    public int Layers { get; init; } = 12;

    /// <summary>NH: attention heads per layer.</summary>
    public int Heads { get; init; } = 12;

    /// <summary>C (D in the paper): the width of the residual stream.</summary>
    public int Width { get; init; } = 768;

    /// <summary>The hidden width of the MLP blocks.</summary>
    public int MlpWidth { get; init; } = 3072;

    /// <summary>Dropout on the embedding sum, attention weights and residual branches.</summary>
    public float Dropout { get; init; }

    /// <summary>The ε inside LayerNorm's square root (ViT: 1e-6).</summary>
    public float LayerNormEps { get; init; } = 1e-6f;

    /// <summary>
    /// How positions enter: ViT's learned table for the N + 1 tokens, sinusoids added to them, rotary q/k or ALiBi biases
    /// inside attention (over the token order: class token, then patches row by row), or none.
    /// </summary>
    public PositionalEncodingKind PositionalEncoding { get; init; } = PositionalEncodingKind.Learned;

    /// <summary>What each layer's (bidirectional) self-attention computes: full (ViT), a sliding window with global tokens (0 is the class token), or linear.</summary>
    public AttentionPattern Attention { get; init; } = AttentionPattern.Full;

    /// <summary>
    /// Convolutions before the patches (Xiao et al., "Early Convolutions Help Transformers See Better", 2021): this many
    /// 3×3 convolutions (padding 1, stride <see cref="StemStride"/>), each followed by a LayerNorm over its channels
    /// and GELU; 0 (ViT) cuts the image itself into patches. The patches are then cut from the stem's output.
    /// </summary>
    public int StemLayers { get; init; }

    /// <summary>The channels of every stem convolution.</summary>
    public int StemChannels { get; init; }

    /// <summary>The stride of every stem convolution: 2 halves the side each time, 1 keeps it.</summary>
    public int StemStride { get; init; } = 1;

    /// <summary>The side of the stem's output: the image side after <see cref="StemLayers"/> convolutions.</summary>
    public int StemSide
    {
        get
        {
            int side = ImageSize;
            for (int i = 0; i < StemLayers; i++) side = Kernels.Unfold.OutputSide(side, StemKernel, StemStride, StemKernel / 2);
            return side;
        }
    }

    /// <summary>The channels the patches are cut from: the stem's, or the image's without a stem.</summary>
    public int StemOutputChannels => StemLayers > 0 ? StemChannels : Channels;

    /// <summary>The side of a stem convolution's window.</summary>
    public const int StemKernel = 3;

    /// <summary>ViT-B/16: 224×224 images, 16×16 patches, L = 12, C = 768, NH = 12, MLP 3072.</summary>
    public static VisionTransformerConfig Base16 => new();

    /// <summary>A small model for 28×28 greyscale images (7×7 patches) that trains on two CPU cores.</summary>
    public static VisionTransformerConfig Small28(int classes) => new()
    {
        ImageSize = 28, PatchSize = 7, Channels = 1, Classes = classes, Layers = 4, Heads = 4, Width = 64, MlpWidth = 128,
    };

    /// <summary>N = (ImageSize / P)²: the number of patches, so the encoder reads N + 1 tokens with the class token.</summary>
    public int Patches => (StemSide / PatchSize) * (StemSide / PatchSize);

    /// <summary>The values in one flattened patch: Channels·P·P (the stem's channels where there is a stem).</summary>
    public int PatchDim => StemOutputChannels * PatchSize * PatchSize;

    /// <summary>The pre-LN encoder: GELU MLP, a final LayerNorm, and learned positions for the N + 1 tokens.</summary>
    public TransformerConfig EncoderStack => new()
    {
        Layers = Layers, Width = Width, Heads = Heads, FeedForwardWidth = MlpWidth, Activation = FeedForwardActivation.Gelu,
        Dropout = Dropout, NormFirst = true, FinalNorm = true, LayerNormEps = LayerNormEps,
        PositionalEncoding = PositionalEncoding, MaxLength = Patches + 1, AttentionPattern = Attention,
    };

    /// <summary>Throws with the field, its value and the rule when the configuration cannot work.</summary>
    public VisionTransformerConfig Validate()
    {
        const string R = nameof(VisionTransformerConfig);
        if (ImageSize <= 0) throw new ArgumentException($"{R}.ImageSize must be positive; got {ImageSize}.");
        if (StemLayers < 0) throw new ArgumentException($"{R}.StemLayers cannot be negative; got {StemLayers}.");
        if (StemLayers > 0 && StemChannels <= 0)
            throw new ArgumentException($"{R}.StemChannels must be positive with {R}.StemLayers = {StemLayers}; " +
                                        $"got {StemChannels}.");
        if (StemStride <= 0) throw new ArgumentException($"{R}.StemStride must be positive; got {StemStride}.");
        if (PatchSize <= 0 || StemSide % PatchSize != 0)
            throw new ArgumentException(StemLayers == 0
                ? $"{R}.PatchSize ({PatchSize}) must be positive and divide {R}.ImageSize ({ImageSize}) " +
                  "so the patches tile the image."
                : $"{R}.PatchSize ({PatchSize}) must be positive and divide the stem's output side ({StemSide}: {R}.ImageSize " +
                  $"{ImageSize} after {StemLayers} convolutions of stride {StemStride}) so the patches tile it.");
        if (Channels <= 0) throw new ArgumentException($"{R}.Channels must be positive; got {Channels}.");
        if (Classes <= 0) throw new ArgumentException($"{R}.Classes must be positive; got {Classes}.");
        if (Layers <= 0) throw new ArgumentException($"{R}.Layers must be positive; got {Layers}.");
        MultiHeadAttentionConfig.ValidateShape(R, Width, Heads, null, PositionalEncoding, 10000f);
        TransformerConfig.ValidatePattern(R, Attention, PositionalEncoding, Patches + 1);
        if (MlpWidth <= 0) throw new ArgumentException($"{R}.MlpWidth must be positive; got {MlpWidth}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"{R}.Dropout must be in [0, 1); got {Dropout}.");
        if (!(LayerNormEps > 0)) throw new ArgumentException($"{R}.LayerNormEps must be positive; got {LayerNormEps}.");
        return this;
    }

    /// <summary>The configuration with Hugging Face ViTConfig field names.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["model_type"] = "vit",
            ["image_size"] = ImageSize,
            ["patch_size"] = PatchSize,
            ["num_channels"] = Channels,
            ["num_labels"] = Classes,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["hidden_size"] = Width,
            ["intermediate_size"] = MlpWidth,
            ["hidden_dropout_prob"] = Dropout,
            ["layer_norm_eps"] = LayerNormEps,
        };
        // Written only when they differ from ViT's, so a ViT's JSON stays as it was.
        if (PositionalEncoding != PositionalEncodingKind.Learned) json["position_embedding_type"] = PositionalEncoding.ToString().ToLowerInvariant();
        if (Attention.Kind != AttentionKind.Full) Attention.WriteJson(json);
        if (StemLayers > 0)
        {
            json["stem_layers"] = StemLayers;
            json["stem_channels"] = StemChannels;
            json["stem_stride"] = StemStride;
        }
        return json;
    }

    /// <summary>Reads <see cref="ToJson"/>'s output; a missing or mistyped field is named in the error.</summary>
    public static VisionTransformerConfig FromJson(JsonObject json)
    {
        var read = new ConfigJson(json, "vit");
        var d = new VisionTransformerConfig();
        return new VisionTransformerConfig
        {
            ImageSize = read.Int("image_size"), PatchSize = read.Int("patch_size"), Channels = read.Int("num_channels"),
            Classes = read.Int("num_labels"), Layers = read.Int("num_hidden_layers"), Heads = read.Int("num_attention_heads"),
            Width = read.Int("hidden_size"), MlpWidth = read.Int("intermediate_size"),
            Dropout = read.Float("hidden_dropout_prob", d.Dropout), LayerNormEps = read.Float("layer_norm_eps", d.LayerNormEps),
            PositionalEncoding = read.Enum("position_embedding_type", d.PositionalEncoding), Attention = AttentionPattern.ReadJson(json, "vit"),
            StemLayers = read.Int("stem_layers", 0), StemChannels = read.Int("stem_channels", 0),
            StemStride = read.Int("stem_stride", 1),
        }.Validate();
    }
}
