using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class NormalizationTests
{
    const float Eps = 1e-5f;
    // Normalised values are O(1) to O(√C); float mean/variance sums over ≤ 1031 terms lose a few parts in 1e6.
    const double ValueAbsTol = 2e-5, ValueRelTol = 2e-5;
    // Weight gradients sum up to 96 rows of O(1) products in float.
    const double GradientAbsTol = 1e-4, GradientRelTol = 1e-4;
    // Central differences of the double reference vs the float kernel.
    const double FiniteDifferenceAbsTol = 1e-4;

    [Fact]
    public void LayerNormMatchesReference()
    {
        foreach (var (rows, cols) in RowShapes())
            foreach (bool affine in new[] { true, false })
            {
                var rng = new Random(cols * 2 + (affine ? 1 : 0));
                // An offset mean tests the two-pass variance.
                var x = Uniform(rng, rows * cols, 4f).Select(v => v + 10f).ToArray();
                var w = affine ? Uniform(rng, cols, 2f) : [];
                var b = affine ? Uniform(rng, cols, 1f) : [];
                var (y, mean, rstd) = (new float[x.Length], new float[rows], new float[rows]);
                var (ye, meane, rstde) = (new float[x.Length], new float[rows], new float[rows]);
                LayerNorm.Forward(y, mean, rstd, x, w, b, rows, cols, Eps);
                Ref.LayerNorm.Forward(ye, meane, rstde, x, w, b, rows, cols, Eps);
                string what = $"layernorm {rows}×{cols} affine={affine}";
                Close(ye, y, ValueAbsTol, ValueRelTol, what);
                Close(meane, mean, ValueAbsTol, ValueRelTol, what + " mean");
                Close(rstde, rstd, ValueAbsTol, ValueRelTol, what + " rstd");

                var dy = Uniform(rng, x.Length, 1f);
                var dx = Uniform(rng, x.Length, 1f);
                var dw = affine ? Uniform(rng, cols, 1f) : [];
                var db = affine ? Uniform(rng, cols, 1f) : [];
                var (dxe, dwe, dbe) = ((float[])dx.Clone(), (float[])dw.Clone(), (float[])db.Clone());
                LayerNorm.Backward(dx, dw, db, dy, x, w, meane, rstde, rows, cols);
                Ref.LayerNorm.Backward(dxe, dwe, dbe, dy, x, w, meane, rstde, rows, cols);
                Close(dxe, dx, GradientAbsTol, GradientRelTol, what + " dx");
                Close(dwe, dw, GradientAbsTol, GradientRelTol, what + " dweight");
                Close(dbe, db, GradientAbsTol, GradientRelTol, what + " dbias");
            }
    }

    [Fact]
    public void RmsNormMatchesReference()
    {
        foreach (var (rows, cols) in RowShapes())
            foreach (bool affine in new[] { true, false })
            {
                var rng = new Random(cols * 3 + (affine ? 1 : 0));
                var x = Uniform(rng, rows * cols, 4f);
                var w = affine ? Uniform(rng, cols, 2f) : [];
                var (y, rstd, ye, rstde) = (new float[x.Length], new float[rows], new float[x.Length], new float[rows]);
                RmsNorm.Forward(y, rstd, x, w, rows, cols, Eps);
                Ref.RmsNorm.Forward(ye, rstde, x, w, rows, cols, Eps);
                string what = $"rmsnorm {rows}×{cols} affine={affine}";
                Close(ye, y, ValueAbsTol, ValueRelTol, what);
                Close(rstde, rstd, ValueAbsTol, ValueRelTol, what + " rstd");

                var dy = Uniform(rng, x.Length, 1f);
                var dx = Uniform(rng, x.Length, 1f);
                var dw = Uniform(rng, cols, 1f);
                var (dxe, dwe) = ((float[])dx.Clone(), (float[])dw.Clone());
                RmsNorm.Backward(dx, dw, dy, x, w, rstde, rows, cols);
                Ref.RmsNorm.Backward(dxe, dwe, dy, x, w, rstde, rows, cols);
                Close(dxe, dx, GradientAbsTol, GradientRelTol, what + " dx");
                Close(dwe, dw, GradientAbsTol, GradientRelTol, what + " dweight");
            }
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 6)]
    [InlineData(3, 37)]
    public void LayerNormBackwardMatchesFiniteDifferences(int rows, int cols)
    {
        var rng = new Random(rows * 31 + cols);
        var x = Uniform(rng, rows * cols, 2f);
        var w = Uniform(rng, cols, 2f);
        var b = Uniform(rng, cols, 1f);
        var dy = Uniform(rng, x.Length, 1f);
        double[] xd = ToDouble(x), wd = ToDouble(w), bd = ToDouble(b), dyd = ToDouble(dy);
        var (yd, md, sd) = (new double[x.Length], new double[rows], new double[rows]);
        double Loss(double[] xv, double[] wv, double[] bv)
        {
            Ref.LayerNorm.Forward(yd, md, sd, xv, wv, bv, rows, cols, Eps);
            return Dot(dyd, yd);
        }
        double[] gx = NumericGradient(v => Loss(v, wd, bd), xd);
        double[] gw = NumericGradient(v => Loss(xd, v, bd), wd);
        double[] gb = NumericGradient(v => Loss(xd, wd, v), bd);

        var (y, mean, rstd) = (new float[x.Length], new float[rows], new float[rows]);
        LayerNorm.Forward(y, mean, rstd, x, w, b, rows, cols, Eps);
        var (dx, dw, db) = (new float[x.Length], new float[cols], new float[cols]);
        LayerNorm.Backward(dx, dw, db, dy, x, w, mean, rstd, rows, cols);
        Close(gx, dx, FiniteDifferenceAbsTol, 0, "layernorm dx vs finite differences");
        Close(gw, dw, FiniteDifferenceAbsTol, 0, "layernorm dweight vs finite differences");
        Close(gb, db, FiniteDifferenceAbsTol, 0, "layernorm dbias vs finite differences");

        Ref.LayerNorm.Forward(yd, md, sd, xd, wd, bd, rows, cols, Eps);
        var (dxd, dwd, dbd) = (new double[x.Length], new double[cols], new double[cols]);
        Ref.LayerNorm.Backward(dxd, dwd, dbd, dyd, xd, wd, md, sd, rows, cols);
        Close(gx, Array.ConvertAll(dxd, v => (float)v), 1e-6, 0, "reference layernorm dx vs finite differences");
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 6)]
    [InlineData(3, 37)]
    public void RmsNormBackwardMatchesFiniteDifferences(int rows, int cols)
    {
        var rng = new Random(rows * 37 + cols);
        var x = Uniform(rng, rows * cols, 2f);
        var w = Uniform(rng, cols, 2f);
        var dy = Uniform(rng, x.Length, 1f);
        double[] xd = ToDouble(x), wd = ToDouble(w), dyd = ToDouble(dy);
        var (yd, sd) = (new double[x.Length], new double[rows]);
        double Loss(double[] xv, double[] wv)
        {
            Ref.RmsNorm.Forward(yd, sd, xv, wv, rows, cols, Eps);
            return Dot(dyd, yd);
        }
        double[] gx = NumericGradient(v => Loss(v, wd), xd);
        double[] gw = NumericGradient(v => Loss(xd, v), wd);

        var (y, rstd) = (new float[x.Length], new float[rows]);
        RmsNorm.Forward(y, rstd, x, w, rows, cols, Eps);
        var (dx, dw) = (new float[x.Length], new float[cols]);
        RmsNorm.Backward(dx, dw, dy, x, w, rstd, rows, cols);
        Close(gx, dx, FiniteDifferenceAbsTol, 0, "rmsnorm dx vs finite differences");
        Close(gw, dw, FiniteDifferenceAbsTol, 0, "rmsnorm dweight vs finite differences");
    }

    [Fact]
    public void WeightGradientDoesNotDependOnThreadCount()
    {
        const int rows = 64, cols = 1024;
        var rng = new Random(5);
        var (x, dy, w) = (Uniform(rng, rows * cols, 3f), Uniform(rng, rows * cols, 1f), Uniform(rng, cols, 1f));
        var (y, mean, rstd) = (new float[x.Length], new float[rows], new float[rows]);
        LayerNorm.Forward(y, mean, rstd, x, w, [], rows, cols, Eps);
        float[] Run(int threads)
        {
            int saved = AttentionSharp.Kernels.Parallel.ThreadCount;
            AttentionSharp.Kernels.Parallel.ThreadCount = threads;
            try
            {
                var (dx, dw, db) = (new float[x.Length], new float[cols], new float[cols]);
                LayerNorm.Backward(dx, dw, db, dy, x, w, mean, rstd, rows, cols);
                return [.. dx, .. dw, .. db];
            }
            finally { AttentionSharp.Kernels.Parallel.ThreadCount = saved; }
        }
        Assert.Equal(Run(1), Run(2));
    }

    [Fact]
    public void MismatchedWeightNamesTheArgument()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            LayerNorm.Forward(new float[6], new float[2], new float[2], new float[6], new float[2], [], 2, 3, Eps));
        Assert.Equal("weight", ex.ParamName);
        Assert.Contains("expected 3", ex.Message);
    }
}
