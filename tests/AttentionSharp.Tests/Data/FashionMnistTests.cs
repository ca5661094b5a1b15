using AttentionSharp.Data;

namespace AttentionSharp.Tests.Data;

/// <summary>Fashion-MNIST from a small hand-made directory of IDX files: splits, normalisation, clear errors.</summary>
public class FashionMnistTests
{
    static void WriteSet(string dir, string prefix, int count, bool gzip, int labelOffset = 0)
    {
        var pixels = new byte[count * 28 * 28];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i % 256);
        var labels = Enumerable.Range(0, count).Select(i => (byte)((i + labelOffset) % 10)).ToArray();
        byte[] Pack(byte[] b) => gzip ? IdxReaderTests.Gzip(b) : b;
        string suffix = gzip ? ".gz" : "";
        File.WriteAllBytes(Path.Combine(dir, $"{prefix}-images-idx3-ubyte{suffix}"), Pack(IdxReaderTests.Idx([(uint)count, 28, 28], pixels)));
        File.WriteAllBytes(Path.Combine(dir, $"{prefix}-labels-idx1-ubyte{suffix}"), Pack(IdxReaderTests.Idx([(uint)count], labels)));
    }

    [Fact]
    public void TheLastTrainingImagesFormTheValidationSliceAndPixelsAreNormalised()
    {
        using var dir = new Support.TempDirectory();
        WriteSet(dir.Path, "train", 12, gzip: true);
        WriteSet(dir.Path, "t10k", 5, gzip: false);
        Assert.True(FashionMnist.IsPresent(dir.Path));
        var data = FashionMnist.Load(dir.Path, validationCount: 4);
        Assert.Equal((8, 4, 5), (data.Train.Count, data.Validation.Count, data.Test.Count));
        Assert.Equal([8, 9, 0, 1], data.Validation.Labels);
        Assert.Equal(784, data.Train.ImageLength);
        Assert.Equal((0 / 255f - FashionMnist.PixelMean) / FashionMnist.PixelStd, data.Train.Pixels[0], 6);
        Assert.Equal((255 / 255f - FashionMnist.PixelMean) / FashionMnist.PixelStd, data.Train.Pixels[255], 6);
        Assert.Equal(10, FashionMnist.ClassNames.Count);
    }

    [Fact]
    public void AMissingFileOrAWrongShapeIsNamed()
    {
        using var dir = new Support.TempDirectory();
        WriteSet(dir.Path, "train", 6, gzip: false);
        Assert.False(FashionMnist.IsPresent(dir.Path));
        var missing = Assert.Throws<DataSourceException>(() => FashionMnist.Load(dir.Path, 2));
        Assert.Contains("t10k-images-idx3-ubyte", missing.Message);

        File.WriteAllBytes(Path.Combine(dir.Path, "t10k-images-idx3-ubyte"), IdxReaderTests.Idx([2, 4, 4], new byte[32]));
        File.WriteAllBytes(Path.Combine(dir.Path, "t10k-labels-idx1-ubyte"), IdxReaderTests.Idx([2], [0, 1]));
        var shape = Assert.Throws<DataSourceException>(() => FashionMnist.LoadTest(dir.Path));
        Assert.Contains("(2, 4, 4)", shape.Message);

        WriteSet(dir.Path, "t10k", 3, gzip: false);
        File.WriteAllBytes(Path.Combine(dir.Path, "t10k-labels-idx1-ubyte"), IdxReaderTests.Idx([3], [0, 10, 1]));
        var label = Assert.Throws<DataSourceException>(() => FashionMnist.LoadTest(dir.Path));
        Assert.Contains("label 10", label.Message);
    }
}
