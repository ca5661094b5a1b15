// Source: Xiao, Rasul, Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms"
// (2017): 70,000 greyscale 28×28 images of clothing in 10 classes, stored as four IDX files.
namespace AttentionSharp.Data;

/// <summary>Images (N, 1, 28, 28) as normalised floats, row-major, and their class labels.</summary>
public sealed class ImageSet
{
    public ImageSet(float[] pixels, int[] labels, int channels, int side)
    {
        if (pixels.Length != (long)labels.Length * channels * side * side)
            throw new ArgumentException($"{labels.Length} images of {channels}×{side}×{side} need {(long)labels.Length * channels * side * side} values; got {pixels.Length}.");
        Pixels = pixels; Labels = labels; Channels = channels; Side = side;
    }

    /// <summary>All images, (N, Ch, H, W) flattened.</summary>
    public float[] Pixels { get; }
    public int[] Labels { get; }
    public int Channels { get; }
    /// <summary>H = W: the side of the square images.</summary>
    public int Side { get; }
    public int Count => Labels.Length;
    public int ImageLength => Channels * Side * Side;

    /// <summary>Image <paramref name="i"/>'s Ch·H·W values.</summary>
    public ReadOnlySpan<float> Image(int i) => Pixels.AsSpan(i * ImageLength, ImageLength);

    /// <summary>Images [start, start + count) as a new set sharing nothing with this one.</summary>
    public ImageSet Slice(int start, int count) =>
        new(Pixels.AsSpan(start * ImageLength, count * ImageLength).ToArray(), Labels.AsSpan(start, count).ToArray(), Channels, Side);
}

/// <summary>
/// Fashion-MNIST read from its four IDX files (gzipped or not): the training set with its last
/// <see cref="ValidationCount"/> images held out for validation, and the test set.
/// </summary>
public sealed class FashionMnist
{
    /// <summary>Where the Debian package dataset-fashion-mnist installs the files.</summary>
    public const string PackageDirectory = "/usr/share/datasets/fashion-mnist";

    public const int Side = 28;

    /// <summary>The default validation slice: the last 5,000 of the 60,000 training images.</summary>
    public const int ValidationCount = 5000;

    /// <summary>The mean and standard deviation of the training pixels scaled to [0, 1]; inputs become (x/255 − mean)/std.</summary>
    public const float PixelMean = 0.2860f, PixelStd = 0.3530f;

    /// <summary>The ten labels in class-index order.</summary>
    public static readonly IReadOnlyList<string> ClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The four file names without the optional ".gz".</summary>
    public static readonly IReadOnlyList<string> FileNames =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    FashionMnist(ImageSet train, ImageSet validation, ImageSet test) { Train = train; Validation = validation; Test = test; }

    public ImageSet Train { get; }
    public ImageSet Validation { get; }
    public ImageSet Test { get; }

    /// <summary>True when <paramref name="directory"/> holds all four files, each plain or gzipped.</summary>
    public static bool IsPresent(string directory) => FileNames.All(f => Find(directory, f) is not null);

    /// <summary>Loads all three splits; the last <paramref name="validationCount"/> training images form the validation set.</summary>
    public static FashionMnist Load(string directory, int validationCount = ValidationCount)
    {
        var all = LoadSplit(directory, "train");
        if (validationCount <= 0 || validationCount >= all.Count)
            throw new ArgumentException($"The validation slice must hold between 1 and {all.Count - 1} of the {all.Count} training images; got {validationCount}.");
        int trainCount = all.Count - validationCount;
        return new FashionMnist(all.Slice(0, trainCount), all.Slice(trainCount, validationCount), LoadSplit(directory, "t10k"));
    }

    /// <summary>
    /// One image read from a file as the model reads the data set's: it must be <see cref="Side"/>×<see cref="Side"/>
    /// (a picture of another size is refused rather than resized), values scaled as the training images.
    /// </summary>
    public static float[] Normalize(GrayImage image, string source)
    {
        if (image.Width != Side || image.Height != Side)
            throw new DataSourceException($"'{source}' is {image.Width}×{image.Height} pixels; a Fashion-MNIST classifier reads {Side}×{Side} grayscale images (a light garment on black). Resize it first.");
        return [.. image.Pixels.Select(v => (v - PixelMean) / PixelStd)];
    }

    /// <summary>Only the 10,000 test images.</summary>
    public static ImageSet LoadTest(string directory) => LoadSplit(directory, "t10k");

    static ImageSet LoadSplit(string directory, string prefix)
    {
        var imagesFile = Require(directory, $"{prefix}-images-idx3-ubyte");
        var labelsFile = Require(directory, $"{prefix}-labels-idx1-ubyte");
        var images = IdxReader.Read(imagesFile);
        var labels = IdxReader.Read(labelsFile);
        if (images.Dimensions is not [var n, Side, Side])
            throw new DataSourceException($"'{imagesFile}' holds an array of shape ({string.Join(", ", images.Dimensions)}); Fashion-MNIST images are (N, {Side}, {Side}).");
        if (labels.Dimensions is not [var m] || m != n)
            throw new DataSourceException($"'{labelsFile}' holds an array of shape ({string.Join(", ", labels.Dimensions)}); expected ({n}), one label per image in '{imagesFile}'.");
        var classes = new int[n];
        for (int i = 0; i < n; i++)
        {
            classes[i] = labels.Values[i];
            if (classes[i] >= ClassNames.Count)
                throw new DataSourceException($"'{labelsFile}' gives image {i} the label {classes[i]}; Fashion-MNIST labels are 0 to {ClassNames.Count - 1}.");
        }
        var pixels = new float[images.Values.Length];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (images.Values[i] / 255f - PixelMean) / PixelStd;
        return new ImageSet(pixels, classes, 1, Side);
    }

    static string? Find(string directory, string name)
    {
        foreach (var candidate in new[] { name, name + ".gz" })
        {
            var path = Path.Combine(directory, candidate);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    static string Require(string directory, string name) => Find(directory, name)
        ?? throw new DataSourceException($"'{directory}' has no {name} (or {name}.gz); a Fashion-MNIST directory holds {string.Join(", ", FileNames)}, each plain or gzipped.");
}
