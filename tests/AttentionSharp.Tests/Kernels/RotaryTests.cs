using AttentionSharp.Kernels;
using static AttentionSharp.Tests.Kernels.KernelTestKit;
using Ref = AttentionSharp.Kernels.Reference;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class RotaryTests
{
    // Two products and a sum in float against the same in double: a few ulp of values of magnitude ≤ 2.
    const double AbsTol = 1e-6, RelTol = 1e-6;

    /// <summary>
    /// Half head sizes 1–20 and 32–33 (every tail of every register width), one to three rotated heads, rows with and
    /// without columns passed through, one to three sequences of 1–5 positions, and one shape large enough to run threaded.
    /// </summary>
    public static IEnumerable<(int Batch, int T, int Heads, int HeadSize, int Extra)> Shapes()
    {
        foreach (int half in Enumerable.Range(1, 20).Concat([32, 33]))
            foreach (int heads in new[] { 1, 3 })
                foreach (int extra in new[] { 0, 2 * half + 1 })
                {
                    yield return (1, 1, heads, 2 * half, extra);
                    yield return (3, 5, heads, 2 * half, extra);
                }
        yield return (2, 4, 2, 8, 0);
        yield return (4, 128, 4, 32, 128);   // 512 rows × 256: > Work.ParallelThreshold floats, the threaded path
        yield return (0, 3, 1, 4, 0);
    }

    static (float[] Cos, float[] Sin) Tables(int t, int half, int seed)
    {
        var rng = new Random(seed);
        var angles = Enumerable.Range(0, t * half).Select(_ => rng.NextDouble() * 40 - 20).ToArray();
        return (angles.Select(a => (float)Math.Cos(a)).ToArray(), angles.Select(a => (float)Math.Sin(a)).ToArray());
    }

    [Fact]
    public void ForwardMatchesReference()
    {
        foreach (var (batch, t, heads, hs, extra) in Shapes())
        {
            int rows = batch * t, width = heads * hs + extra;
            string what = $"rotary B={batch} T={t} heads={heads} HS={hs} extra={extra}";
            var x = Uniform(new Random(rows + hs), rows * width, 2f);
            var (cos, sin) = Tables(t, hs / 2, hs + heads);
            var (y, expected) = (Garbage(x.Length), new float[x.Length]);
            Rotary.Forward(y, x, rows, width, heads, hs, t, cos, sin);
            Ref.Rotary.Forward(expected, x, rows, width, heads, hs, t, cos, sin);
            Close(expected, y, AbsTol, RelTol, what);

            var inPlace = (float[])x.Clone();                  // y may alias x
            Rotary.Forward(inPlace, inPlace, rows, width, heads, hs, t, cos, sin);
            SameBits(y, inPlace, what + " in place");
        }
    }

    [Fact]
    public void BackwardMatchesReferenceWhetherItAddsOrSets()
    {
        foreach (var (batch, t, heads, hs, extra) in Shapes())
        {
            int rows = batch * t, width = heads * hs + extra;
            var rng = new Random(rows * 7 + hs);
            var dy = Uniform(rng, rows * width, 1f);
            var (cos, sin) = Tables(t, hs / 2, hs - heads);
            foreach (bool accumulate in new[] { true, false })
            {
                string what = $"rotary backward B={batch} T={t} heads={heads} HS={hs} extra={extra} accumulate={accumulate}";
                var dx = accumulate ? Uniform(rng, dy.Length, 1f) : Garbage(dy.Length);
                var expected = accumulate ? (float[])dx.Clone() : new float[dy.Length];
                Rotary.Backward(dx, dy, rows, width, heads, hs, t, cos, sin, accumulate);
                Ref.Rotary.Backward(expected, dy, rows, width, heads, hs, t, cos, sin, accumulate);
                Close(expected, dx, AbsTol, RelTol, what);
            }
        }
    }

    [Fact]
    public void BackwardIsTheTransposeOfForward()
    {
        // ⟨dy, R·x⟩ = ⟨Rᵀ·dy, x⟩ for the rotation R the tables describe (in double, from the float kernels' outputs).
        const int rows = 6, t = 3, heads = 2, hs = 10, width = heads * hs + 3;
        var rng = new Random(4);
        var x = Uniform(rng, rows * width, 1f);
        var dy = Uniform(rng, rows * width, 1f);
        var (cos, sin) = Tables(t, hs / 2, 11);
        var y = new float[x.Length];
        var dx = new float[x.Length];
        Rotary.Forward(y, x, rows, width, heads, hs, t, cos, sin);
        Rotary.Backward(dx, dy, rows, width, heads, hs, t, cos, sin, accumulate: false);
        double left = Dot(ToDouble(dy), ToDouble(y)), right = Dot(ToDouble(dx), ToDouble(x));
        Assert.Equal(left, right, 4);
    }

    [Fact]
    public void BadShapesAreRefusedByName()
    {
        var (cos, sin) = Tables(2, 2, 1);
        var x = new float[2 * 8];
        var odd = Assert.Throws<ArgumentException>(() => Rotary.Forward(new float[16], x, 2, 8, 1, 3, 2, cos, sin));
        Assert.Contains("even", odd.Message);
        var wide = Assert.Throws<ArgumentException>(() => Rotary.Forward(new float[16], x, 2, 8, 3, 4, 2, cos, sin));
        Assert.Contains("heads·HS ≤ width", wide.Message);
        var partial = Assert.Throws<ArgumentException>(() => Rotary.Forward(new float[16], x, 2, 8, 1, 4, 3, cos, sin));
        Assert.Contains("multiple of T = 3", partial.Message);
        var table = Assert.Throws<ArgumentException>(() => Rotary.Forward(new float[16], x, 2, 8, 1, 4, 2, cos[..3], sin));
        Assert.Contains("cos", table.Message);
    }
}
