using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>
/// What the image trainer needs of a classifier: the image shape it reads and a forward pass from images (B, Ch, H, W)
/// to class logits (B, Classes). <see cref="VisionTransformer"/> and <see cref="RecurrentImageClassifier"/> are two.
/// </summary>
public abstract class ImageClassifier : Module
{
    /// <summary>Ch: channels of each image.</summary>
    public abstract int Channels { get; }

    /// <summary>H = W: the side of the square images.</summary>
    public abstract int ImageSize { get; }

    /// <summary>The number of classes.</summary>
    public abstract int Classes { get; }

    /// <summary>Images (B, Ch, H, W) → class logits (B, Classes).</summary>
    public abstract Tensor Forward(Tensor images);

    /// <summary>Mean cross-entropy of (B, Classes) logits against B labels; with ε &gt; 0 the targets are smoothed to (1 − ε)·onehot + ε/Classes.</summary>
    public Tensor Loss(Tensor logits, ReadOnlySpan<int> labels, float labelSmoothing = 0f) => Tensor.CrossEntropy(logits, labels, labelSmoothing: labelSmoothing);

    /// <summary>Throws unless <paramref name="images"/> is (B, Ch, H, W) with this classifier's channels and side.</summary>
    protected void CheckImages(Tensor images)
    {
        if (images.Rank != 4 || images.Size(1) != Channels || images.Size(2) != ImageSize || images.Size(3) != ImageSize)
            throw new ArgumentException($"{GetType().Name} expects images shaped (B, {Channels}, {ImageSize}, {ImageSize}); got {ShapeMath.Format(images.Shape)}.", nameof(images));
    }
}
