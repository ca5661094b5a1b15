using AttentionSharp.Tests.Support;
using AttentionSharp.Visualization;

namespace AttentionSharp.Tests.Training;

public class LossCurveTests
{
    [Fact]
    public void WritesAPngWithBothCurves()
    {
        using var dir = new TempDirectory();
        var path = dir.File("loss.png");
        var train = Enumerable.Range(1, 100).Select(s => (s, 4f / MathF.Sqrt(s))).ToList();
        var valid = new List<(int, float)> { (25, 1.0f), (50, 0.7f), (100, 0.5f) };
        LossCurve.Save(path, train, valid);
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 5000, $"the PNG is suspiciously small: {bytes.Length} bytes");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*"));
    }

    [Fact]
    public void RefusesAnEmptyCurve() =>
        Assert.Throws<ArgumentException>(() => LossCurve.Save(Path.Combine(Path.GetTempPath(), "never.png"), [], []));
}
