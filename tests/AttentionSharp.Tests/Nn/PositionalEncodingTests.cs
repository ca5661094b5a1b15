using AttentionSharp.Autograd;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Nn;

/// <summary>The positional encodings against their published formulas, computed directly element by element.</summary>
public class PositionalEncodingTests
{
    // The module computes angles in double and rounds once to float; the direct formulas below do the same in double,
    // so only the final sin/cos/multiply roundings differ.
    const double FormulaTolerance = 1e-6;

    [Fact]
    public void SinusoidalMatchesThePaper()
    {
        const int d = 10, offset = 7, length = 5;
        var table = new SinusoidalPositionalEncoding(d).Table(offset, length);
        var expected = new float[length * d];
        for (int p = 0; p < length; p++)
            for (int i = 0; 2 * i < d; i++)
            {
                int pos = offset + p;
                // PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))
                expected[p * d + 2 * i] = (float)Math.Sin(pos / Math.Pow(10000, 2.0 * i / d));
                if (2 * i + 1 < d) expected[p * d + 2 * i + 1] = (float)Math.Cos(pos / Math.Pow(10000, 2.0 * i / d));
            }
        TensorAssert.Close(expected, table.ToArray(), FormulaTolerance, 0, "sinusoidal table");
    }

    [Fact]
    public void SinusoidalIsAddedToTheInput()
    {
        var pe = new SinusoidalPositionalEncoding(6);
        var x = Tensor.Uniform(new Generator(3), -1f, 1f, 2, 4, 6);
        var y = pe.Forward(x, offset: 2);
        var table = pe.Table(2, 4).ToArray();
        var xs = x.ToArray();
        var expected = xs.Select((v, i) => v + table[i % 24]).ToArray();
        TensorAssert.Close(expected, y.ToArray(), 1e-7, 0, "x + PE");
    }

    [Fact]
    public void LearnedRejectsASequenceLongerThanItsTable()
    {
        var pe = new LearnedPositionalEncoding(maxLength: 8, width: 4, new Generator(1));
        Assert.Equal([2, 8, 4], pe.Forward(Tensor.Zeros(2, 8, 4)).Shape.ToArray());
        var e = Assert.Throws<ArgumentException>(() => pe.Forward(Tensor.Zeros(1, 3, 4), offset: 6));
        Assert.Contains("position 8", e.Message);
        Assert.Contains("8 rows", e.Message);
    }

    [Fact]
    public void LearnedAddsTheRowOfEachPosition()
    {
        var pe = new LearnedPositionalEncoding(maxLength: 8, width: 4, new Generator(1));
        var y = pe.Forward(Tensor.Zeros(1, 2, 4), offset: 5);
        var w = pe.Weight.ToArray();
        TensorAssert.Close(w.AsSpan(20, 8), y.ToArray(), 0, 0, "rows 5 and 6");
    }

    [Theory]
    [InlineData(8, 10000f, 0)]
    [InlineData(6, 500f, 13)]
    [InlineData(8, 10000f, 65534)]    // past the positions the embedding keeps tables for: formed for the call
    [InlineData(4, 10000f, 1 << 20)]
    public void RotaryMatchesThePublishedFormula(int d, float @base, int offset)
    {
        const int b = 2, h = 3, t = 4;
        var x = Tensor.Uniform(new Generator(5), -1f, 1f, b, h, t, d);
        var y = new RotaryEmbedding(d, @base).Apply(x, offset).ToArray();
        var xs = x.ToArray();
        var expected = new float[xs.Length];
        int half = d / 2;
        for (int row = 0; row < b * h * t; row++)
        {
            int pos = offset + row % t;
            for (int i = 0; i < half; i++)
            {
                // θ_i = base^(−2i/d); (x_i, x_{i+d/2}) rotated by pos·θ_i
                double theta = Math.Pow(@base, -2.0 * i / d), c = Math.Cos(pos * theta), s = Math.Sin(pos * theta);
                double x1 = xs[row * d + i], x2 = xs[row * d + i + half];
                expected[row * d + i] = (float)(x1 * c - x2 * s);
                expected[row * d + i + half] = (float)(x2 * c + x1 * s);
            }
        }
        TensorAssert.Close(expected, y, FormulaTolerance, 0, "RoPE");
    }

    [Fact]
    public void RotaryScoresDependOnlyOnRelativePosition()
    {
        var rope = new RotaryEmbedding(8);
        var rng = new Generator(9);
        var q = Tensor.Uniform(rng, -1f, 1f, 1, 1, 1, 8);
        var k = Tensor.Uniform(rng, -1f, 1f, 1, 1, 1, 8);
        float Score(int m, int n) => (rope.Apply(q, m) * rope.Apply(k, n)).Sum().Item();
        Assert.Equal(Score(5, 2), Score(105, 102), 4);
        Assert.Equal(Score(3, 3), Score(40, 40), 4);
        Assert.NotEqual(Score(5, 2), Score(5, 3), 3);
    }

    [Fact]
    public void RotaryRejectsAnOddHeadSize()
    {
        var e = Assert.Throws<ArgumentException>(() => new RotaryEmbedding(7));
        Assert.Contains("even", e.Message);
        Assert.Contains("7", e.Message);
    }

    [Fact]
    public void RotaryGradientMatchesFiniteDifferences()
    {
        var rope = new RotaryEmbedding(4, 100f);
        var x = Tensor.Uniform(new Generator(2), -1f, 1f, 1, 2, 3, 4);
        x.RequiresGrad = true;
        var report = GradCheck.Check(xs => rope.Apply(xs[0], offset: 3), [x]);
        Assert.True(report.Passed, report.ToString());
    }

    [Fact]
    public void RotaryOfPackedHeadsEqualsRotaryOfSplitHeads()
    {
        // A packed (B, T, [Q K V]) row: the query and key heads rotated as the split heads are, bit for bit; V untouched.
        const int b = 2, t = 5, heads = 3, hs = 6, offset = 7;
        var rope = new RotaryEmbedding(hs);
        var qkv = Tensor.Uniform(new Generator(3), -1f, 1f, b, t, 3 * heads * hs);
        var packed = rope.ApplyToHeads(qkv, 2 * heads, offset).ToArray();
        var heads4 = qkv.Narrow(2, 0, 2 * heads * hs).Contiguous().View(b, t, 2 * heads, hs).Permute(0, 2, 1, 3);
        var split = rope.Apply(heads4, offset).Permute(0, 2, 1, 3).Contiguous().ToArray();
        var source = qkv.ToArray();
        for (int row = 0; row < b * t; row++)
            for (int j = 0; j < 3 * heads * hs; j++)
            {
                float expected = j < 2 * heads * hs ? split[row * 2 * heads * hs + j] : source[row * 3 * heads * hs + j];
                float actual = packed[row * 3 * heads * hs + j];
                Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(actual));
            }
    }

    [Fact]
    public void RotaryOfPackedHeadsGradientMatchesFiniteDifferences()
    {
        var rope = new RotaryEmbedding(4, 100f);
        var x = Tensor.Uniform(new Generator(6), -1f, 1f, 2, 3, 11);   // two heads of 4 rotated, 3 columns passed
        x.RequiresGrad = true;
        var report = GradCheck.Check(xs => rope.ApplyToHeads(xs[0], heads: 2, offset: 5), [x]);
        Assert.True(report.Passed, report.ToString());
    }

    [Fact]
    public void RotaryOfPackedHeadsRefusesTooManyHeads()
    {
        var e = Assert.Throws<ArgumentException>(() => new RotaryEmbedding(4).ApplyToHeads(Tensor.Zeros(1, 2, 10), heads: 3));
        Assert.Contains("W ≥ 12", e.Message);
        Assert.Contains("(1, 2, 10)", e.Message);
    }

    [Fact]
    public void AlibiSlopesForEightHeadsAreThePapers()
    {
        // Press et al. (2022), §3: for 8 heads the slopes are 1/2, 1/4, …, 1/256.
        Assert.Equal([1 / 2f, 1 / 4f, 1 / 8f, 1 / 16f, 1 / 32f, 1 / 64f, 1 / 128f, 1 / 256f], Alibi.Slopes(8));
    }

    [Fact]
    public void AlibiSlopesForSixHeadsTakeFourThenTheOddOnesOfEight()
    {
        // 4 heads: 2^−2, 2^−4, 2^−6, 2^−8; then 8 heads' slopes at h = 1, 3: 2^−1, 2^−3.
        Assert.Equal([1 / 4f, 1 / 16f, 1 / 64f, 1 / 256f, 1 / 2f, 1 / 8f], Alibi.Slopes(6));
    }

    [Fact]
    public void AlibiSlopesForTwelveHeadsTakeEightThenTheOddOnesOfSixteen()
    {
        // 8 heads: 2^−1 … 2^−8; then 16 heads' slopes 2^(−h/2) at h = 1, 3, 5, 7.
        float[] expected =
            [.. Enumerable.Range(1, 8).Select(h => MathF.Pow(2, -h)), .. new[] { 1, 3, 5, 7 }.Select(h => MathF.Pow(2, -h / 2f))];
        TensorAssert.Close(expected, Alibi.Slopes(12), 1e-7, 0, "ALiBi slopes for 12 heads");
    }

    [Fact]
    public void AlibiBiasIsMinusSlopeTimesDistance()
    {
        var slopes = Alibi.Slopes(2);
        var bias = Alibi.Bias(slopes, queries: 2, keys: 4);                                   // queries at positions 2 and 3
        Assert.Equal([1, 2, 2, 4], bias.Shape.ToArray());
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 4; j++)
                    Assert.Equal(-slopes[h] * Math.Abs(2 + i - j), bias[0, h, i, j]);
    }

    [Theory]
    [InlineData(PositionalEncodingKind.None, false)]
    [InlineData(PositionalEncodingKind.Rotary, false)]
    [InlineData(PositionalEncodingKind.Alibi, false)]
    [InlineData(PositionalEncodingKind.Sinusoidal, true)]
    [InlineData(PositionalEncodingKind.Learned, true)]
    public void OnlyAbsoluteKindsMakeAnEmbeddingModule(PositionalEncodingKind kind, bool expected) =>
        Assert.Equal(expected, PositionalEncoding.Create(kind, 8, 16, new Generator(1)) is not null);
}
