// Source: Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale" (ICLR 2021),
// §3.1, eq. 1–4.
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>
/// A Vision Transformer, read top to bottom: cut the image into N square patches, project each flattened patch to C,
/// prepend a learned class token, add learned positions, run L pre-LN encoder layers, normalise, and classify the class
/// token's final state. Letters: B batch, Ch channels, H = W image side, P patch side, N patches, C width.
/// </summary>
/// <remarks>
/// The patch embedding is a Linear layer over flattened patches, which is what ViT's Conv2d(Ch, C, kernel P, stride P)
/// computes. Its weight is (C, Ch·P·P) with column ch·P·P + i·P + j holding the convolution's weight[:, ch, i, j], so
/// conv.weight.reshape(C, -1) copies in as it is, and conv.bias is the bias.
/// Parameter names: patch_embed.{weight, bias}, cls_token (1, 1, C), encoder.positions.weight (N + 1, C),
/// encoder.layers.N.… as <see cref="TransformerEncoderLayer"/> names them, encoder.norm, head.{weight, bias}.
/// </remarks>
public sealed class VisionTransformer : ImageClassifier
{
    public VisionTransformer(VisionTransformerConfig config, Generator rng)
    {
        Config = config.Validate();
        var stem = new ModuleList();
        for (int i = 0, channels = config.Channels; i < config.StemLayers; i++, channels = config.StemChannels)
            Stem.Add(stem.Add(new ConvStemLayer(channels, config.StemChannels, config.StemStride, config.LayerNormEps, rng)));
        if (config.StemLayers > 0) RegisterModule("stem", stem);
        PatchEmbedding = RegisterModule("patch_embed", new Linear(config.PatchDim, config.Width, rng));
        ClassToken = RegisterParameter("cls_token", Tensor.Zeros(1, 1, config.Width));
        Encoder = RegisterModule("encoder", new TransformerEncoder(config.EncoderStack, rng));
        Head = RegisterModule("head", new Linear(config.Width, config.Classes, rng));
    }

    public VisionTransformerConfig Config { get; }

    /// <summary>The convolutions before the patches (none in ViT): <see cref="VisionTransformerConfig.StemLayers"/>.</summary>
    public List<ConvStemLayer> Stem { get; } = [];

    public override int Channels => Config.Channels;
    public override int ImageSize => Config.ImageSize;
    public override int Classes => Config.Classes;

    /// <summary>E: (C, Ch·P·P), the stride-P convolution's weight flattened.</summary>
    public Linear PatchEmbedding { get; }

    /// <summary>x_class: (1, 1, C), a learned token whose final state represents the image.</summary>
    public Tensor ClassToken { get; }

    /// <summary>Learned positions for the N + 1 tokens, the layers and the final LayerNorm.</summary>
    public TransformerEncoder Encoder { get; }

    /// <summary>The classifier on the class token: (Classes, C).</summary>
    public Linear Head { get; }

    /// <summary>Images (B, Ch, H, W) → class logits (B, Classes).</summary>
    public override Tensor Forward(Tensor images)
    {
        var x = Encoder.Forward(Tokens(images));                                   // (B, N + 1, C): z_L, after the final LN
        return Head.Forward(x.Select(1, 0));                                       // y = head(LN(z_L⁰)): (B, Classes)
    }

    /// <summary>
    /// As <see cref="Forward"/>, also returning every layer's attention weights (B, NH, N + 1, N + 1), for attention maps
    /// (row 0 is where the class token looks). The weights come from each layer's attention on its normalised input;
    /// no dropout is applied, so a model with dropout must be in evaluation mode.
    /// </summary>
    public (Tensor Logits, IReadOnlyList<Tensor> Attention) ForwardWithAttention(Tensor images)
    {
        if (Training && Config.Dropout > 0)
            throw new InvalidOperationException($"ForwardWithAttention applies no dropout, but the model is training with VisionTransformerConfig.Dropout = {Config.Dropout}; call Eval() first.");
        var x = Tokens(images);
        x = Encoder.Positions?.Forward(x) ?? x;                                   // z_0 = [x_class; x_p·E] + E_pos
        var attention = new List<Tensor>();
        foreach (var layer in Encoder.Layers)
        {
            attention.Add(layer.SelfAttn.ForwardWithWeights(layer.Norm1.Forward(x)).Weights);   // (B, NH, N + 1, N + 1)
            x = layer.Forward(x);
        }
        x = Encoder.Norm!.Forward(x);
        return (Head.Forward(x.Select(1, 0)), attention);
    }

    /// <summary>
    /// Images (B, Ch, H, W) → the flattened patches (B, N, Ch·P·P), patch n = row·(W/P) + column (the order of a
    /// convolution's output flattened), values in (ch, i, j) order within a patch. With a stem the patches are cut from
    /// its output (B, C_stem, H', W') instead of the image.
    /// </summary>
    public Tensor Patchify(Tensor images)
    {
        var c = Config;
        if (images.Rank != 4 || images.Size(1) != c.Channels || images.Size(2) != c.ImageSize || images.Size(3) != c.ImageSize)
            throw new ArgumentException($"The Vision Transformer expects images shaped (B, {c.Channels}, {c.ImageSize}, {c.ImageSize}) " +
                $"(VisionTransformerConfig.Channels = {c.Channels}, ImageSize = {c.ImageSize}); got {ShapeMath.Format(images.Shape)}.", nameof(images));
        foreach (var layer in Stem) images = layer.Forward(images);               // (B, C_stem, H', W')
        return images.Unfold2d(c.PatchSize, c.PatchSize);                          // (B, N, Ch·P·P)
    }

    /// <summary>[x_class; x_p¹E; …; x_pᴺE]: the class token followed by the embedded patches, (B, N + 1, C).</summary>
    Tensor Tokens(Tensor images)
    {
        var patches = PatchEmbedding.Forward(Patchify(images));                   // (B, N, C)
        var classTokens = Tensor.Cat([.. Enumerable.Repeat(ClassToken, images.Size(0))], 0);   // (B, 1, C)
        return Tensor.Cat([classTokens, patches], 1);                             // (B, N + 1, C)
    }
}

/// <summary>
/// One layer of a convolutional stem: a 3×3 convolution (padding 1), LayerNorm over its channels, GELU. Parameter names:
/// conv.{weight, bias} (torch's Conv2d shapes), norm.{weight, bias}.
/// </summary>
public sealed class ConvStemLayer : Module
{
    public ConvStemLayer(int inChannels, int outChannels, int stride, float eps, Generator rng)
    {
        int k = VisionTransformerConfig.StemKernel;
        Conv = RegisterModule("conv", new Conv2d(inChannels, outChannels, k, stride, k / 2, rng));
        Norm = RegisterModule("norm", new LayerNorm(outChannels, eps));
    }

    public Conv2d Conv { get; }
    public LayerNorm Norm { get; }

    /// <summary>(B, C_in, H, W) → (B, C_out, H', W').</summary>
    public Tensor Forward(Tensor images)
    {
        int b = images.Size(0), ho = Conv.OutputSide(images.Size(2)), wo = Conv.OutputSide(images.Size(3));
        var rows = Norm.Forward(Conv.ForwardRows(images)).Gelu();                 // (B, H'·W', C_out)
        return rows.Transpose(1, 2).Reshape(b, Conv.OutChannels, ho, wo);
    }
}
