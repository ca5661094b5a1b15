using System.Text.Json.Nodes;
using AttentionSharp.Tests.Support;
using AttentionSharp.Visualization;
using SkiaSharp;

namespace AttentionSharp.Tests.Visualization;

/// <summary>Rollout arithmetic, the PNG grid and rollout pictures, and the HTML page's embedded data.</summary>
public class AttentionPicturesTests
{
    static float[,] Uniform(int t, bool causal)
    {
        var m = new float[t, t];
        for (int i = 0; i < t; i++)
            for (int j = 0; j <= (causal ? i : t - 1); j++) m[i, j] = 1f / (causal ? i + 1 : t);
        return m;
    }

    static AttentionLayerView Layer(string name, string[] tokens, params float[][,] heads) => new(name, tokens, tokens, heads);

    [Fact]
    public void RolloutOfIdentityAttentionIsTheIdentity()
    {
        var eye = new float[3, 3];
        for (int i = 0; i < 3; i++) eye[i, i] = 1;
        var r = AttentionRollout.Compute([Layer("a", ["x", "y", "z"], eye, eye), Layer("b", ["x", "y", "z"], eye)]);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) Assert.Equal(i == j ? 1.0 : 0.0, r[i, j], 12);
    }

    [Fact]
    public void RolloutMultipliesTheResidualAdjustedHeadMeans()
    {
        // Two tokens; layer 1 heads: uniform and identity → mean [[.75,.25],[.25,.75]] → A1 = ½·mean + ½·I = [[.875,.125],[.125,.875]].
        // Layer 2: token 0 looks at token 1 only: [[0,1],[0,1]] → A2 = [[.5,.5],[0,1]]. Rollout = A2·A1.
        var uniform = Uniform(2, causal: false);
        var eye = new float[,] { { 1, 0 }, { 0, 1 } };
        var look = new float[,] { { 0, 1 }, { 0, 1 } };
        var r = AttentionRollout.Compute([Layer("1", ["a", "b"], uniform, eye), Layer("2", ["a", "b"], look)]);
        Assert.Equal(0.5 * 0.875 + 0.5 * 0.125, r[0, 0], 12);
        Assert.Equal(0.5 * 0.125 + 0.5 * 0.875, r[0, 1], 12);
        Assert.Equal(0.125, r[1, 0], 12);
        Assert.Equal(0.875, r[1, 1], 12);
        for (int i = 0; i < 2; i++) Assert.Equal(1.0, r[i, 0] + r[i, 1], 12);   // rows stay distributions
    }

    [Fact]
    public void RolloutNeedsSelfAttentionOverTheSameTokens()
    {
        var cross = new AttentionLayerView("cross", ["a"], ["b", "c"], [new float[1, 2]]);
        Assert.Contains("self-attention", Assert.Throws<ArgumentException>(() => AttentionRollout.Compute([Layer("1", ["a"], new float[1, 1]), cross])).Message);
    }

    [Fact]
    public void TheGridIsAPngOfTheExpectedLayoutAndNotBlank()
    {
        using var dir = new TempDirectory();
        string[] tokens = ["The", " jury", " said", "\n"];
        var view = new AttentionView("test", [Layer("layer 0", tokens, Uniform(4, true), Uniform(4, false)), Layer("layer 1", tokens, Uniform(4, true), Uniform(4, true))]);
        var path = dir.File("grid.png");
        AttentionGrid.Save(path, view);
        using var bitmap = SKBitmap.Decode(path);
        Assert.NotNull(bitmap);
        Assert.True(bitmap.Width > 2 * 120 && bitmap.Height > 2 * 120, $"{bitmap.Width}×{bitmap.Height}");
        Assert.True(DistinctColours(bitmap) > 8, "the picture is nearly blank");
        Assert.False(File.Exists(path + $".tmp-{Environment.ProcessId}.png"));
    }

    [Fact]
    public void AnImageViewGetsARolloutPictureAndTextViewsAreRefused()
    {
        using var dir = new TempDirectory();
        var pixels = Enumerable.Range(0, 16).Select(i => i / 15f).ToArray();
        var tokens = Enumerable.Range(0, 5).Select(i => i == 0 ? "[class]" : $"patch {i - 1}").ToArray();
        var image = new AttentionImage(4, 4, pixels, 2);
        var view = new AttentionView("image", [Layer("layer 0", tokens, Uniform(5, false))], image);
        var map = AttentionRollout.ClassTokenMap(view);
        Assert.Equal((2, 2), (map.GetLength(0), map.GetLength(1)));
        Assert.All(map.Cast<float>(), v => Assert.Equal(1f, v, 6));   // uniform attention: every patch equally
        AttentionGrid.SaveRollout(dir.File("rollout.png"), view, scale: 8);
        using var bitmap = SKBitmap.Decode(dir.File("rollout.png"));
        Assert.True(bitmap.Width >= 2 * 4 * 8 && DistinctColours(bitmap) > 4);
        var text = new AttentionView("text", [Layer("layer 0", ["a", "b"], Uniform(2, false))]);
        Assert.Contains("no image", Assert.Throws<ArgumentException>(() => AttentionGrid.SaveRollout(dir.File("x.png"), text)).Message);
        Assert.Contains("a 2×3 patch grid and a class token make 7", Assert.Throws<ArgumentException>(() =>
            AttentionRollout.ClassTokenMap(view with { Image = new AttentionImage(4, 6, new float[24], 2) })).Message);
    }

    [Fact]
    public void TheHtmlPageCarriesTheDataAndCannotBeBrokenByATokensText()
    {
        string[] tokens = ["</script><script>alert(1)</script>", "&amp;", "\"q\""];
        var view = new AttentionView("a <b>title</b>", [Layer("layer 0", tokens, Uniform(3, true), Uniform(3, false))]);
        var html = AttentionHtml.Render(view);
        Assert.Equal(2, CountOf(html, "</script>"));                       // only the page's own two script elements close
        Assert.Contains("<title>a &lt;b&gt;title&lt;/b&gt;</title>", html);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", ""));   // self-contained: nothing fetched
        Assert.DoesNotContain("https://", html);
        int start = html.IndexOf("id=\"attention-data\">", StringComparison.Ordinal) + "id=\"attention-data\">".Length;
        var json = JsonNode.Parse(html[start..html.IndexOf("</script>", start, StringComparison.Ordinal)])!;
        Assert.Equal("text", json["mode"]!.GetValue<string>());
        var layer = json["layers"]![0]!;
        Assert.Equal(tokens, layer["queryTokens"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray());
        Assert.Equal(0.5, layer["heads"]![0]![1]![0]!.GetValue<double>(), 6);
        Assert.Equal(0.0, layer["heads"]![0]![0]![2]!.GetValue<double>(), 6);
    }

    static int CountOf(string s, string what)
    {
        int n = 0;
        for (int i = s.IndexOf(what, StringComparison.Ordinal); i >= 0; i = s.IndexOf(what, i + 1, StringComparison.Ordinal)) n++;
        return n;
    }

    internal static int DistinctColours(SKBitmap bitmap)
    {
        var colours = new HashSet<uint>();
        for (int y = 0; y < bitmap.Height; y += 3)
            for (int x = 0; x < bitmap.Width; x += 3) colours.Add((uint)bitmap.GetPixel(x, y));
        return colours.Count;
    }
}
