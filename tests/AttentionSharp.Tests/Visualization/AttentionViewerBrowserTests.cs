using AttentionSharp.Tests.Support;
using AttentionSharp.Visualization;
using SkiaSharp;

namespace AttentionSharp.Tests.Visualization;

/// <summary>The HTML viewer in a real headless Chromium: it loads without errors and redraws as the reader asks.</summary>
[Trait("Category", "Browser")]
public class AttentionViewerBrowserTests
{
    /// <summary>Random attention maps: each row a softmax of Gaussian scores, causal when asked.</summary>
    static float[,] Map(Generator rng, int tq, int tk, bool causal)
    {
        var m = new float[tq, tk];
        for (int i = 0; i < tq; i++)
        {
            int last = causal ? Math.Min(i, tk - 1) : tk - 1;
            var scores = Enumerable.Range(0, last + 1).Select(_ => Math.Exp(2 * rng.NextNormal())).ToArray();
            double sum = scores.Sum();
            for (int j = 0; j <= last; j++) m[i, j] = (float)(scores[j] / sum);
        }
        return m;
    }

    static AttentionView TextView()
    {
        var rng = new Generator(5);
        string[] tokens = ["The", " jury", " said", " it", " did", " find", " that"];
        var layers = Enumerable.Range(0, 2).Select(l =>
            new AttentionLayerView($"layer {l}", tokens, tokens, Enumerable.Range(0, 3).Select(_ => Map(rng, 7, 7, causal: true)).ToArray())).ToArray();
        return new AttentionView("test sentence", layers);
    }

    const string Lines = "JSON.stringify([...document.querySelectorAll('#view line')].map(l => [l.dataset.head, l.getAttribute('y1'), l.getAttribute('y2'), l.getAttribute('stroke-opacity')]))";

    [BrowserFact]
    public async Task TheTextViewerLoadsCleanlyAndRedrawsForLayerHeadAndHover()
    {
        using var dir = new TempDirectory();
        var page = dir.File("attention.html");
        AttentionHtml.Save(page, TextView());
        await using var browser = await HeadlessBrowser.StartAsync();
        await browser.OpenAsync(page);

        var all = (await browser.EvaluateAsync(Lines))!.GetValue<string>();
        Assert.True((await browser.EvaluateAsync("document.querySelectorAll('#view line').length"))!.GetValue<int>() > 20, "too few lines drawn; page errors: " + string.Join(" | ", browser.Errors));
        Assert.Equal(7, (await browser.EvaluateAsync("document.querySelectorAll('#view text.token.query').length"))!.GetValue<int>());

        await browser.EvaluateAsync("(() => { const s = document.getElementById('layer'); s.value = '1'; s.dispatchEvent(new Event('change')); })()");
        var layer1 = (await browser.EvaluateAsync(Lines))!.GetValue<string>();
        Assert.NotEqual(all, layer1);

        await browser.EvaluateAsync("document.querySelector('button.head[data-head=\"2\"]').click()");
        var heads = (await browser.EvaluateAsync("[...new Set([...document.querySelectorAll('#view line')].map(l => l.dataset.head))].join(',')"))!.GetValue<string>();
        Assert.Equal("2", heads);
        Assert.True((await browser.EvaluateAsync("document.querySelector('button.head[data-head=\"2\"]').classList.contains('on') && !document.querySelector('button.head[data-head=\"0\"]').classList.contains('on')"))!.GetValue<bool>());

        // Hovering query token 4 keeps only its lines: they all start on its row.
        await browser.EvaluateAsync("document.querySelectorAll('#view text.token.query')[4].dispatchEvent(new MouseEvent('mouseenter'))");
        var starts = (await browser.EvaluateAsync("[...new Set([...document.querySelectorAll('#view line')].map(l => l.getAttribute('y1')))].length"))!.GetValue<int>();
        Assert.Equal(1, starts);
        Assert.Contains("attends to", (await browser.EvaluateAsync("document.getElementById('info').textContent"))!.GetValue<string>());
        await browser.EvaluateAsync("document.querySelectorAll('#view text.token.query')[4].dispatchEvent(new MouseEvent('mouseleave'))");
        Assert.True((await browser.EvaluateAsync("new Set([...document.querySelectorAll('#view line')].map(l => l.getAttribute('y1'))).size"))!.GetValue<int>() > 1);

        using var screenshot = SKBitmap.Decode(await browser.ScreenshotAsync());
        Assert.True(AttentionPicturesTests.DistinctColours(screenshot) > 10, "the screenshot is blank");
        Assert.Empty(browser.Errors);
    }

    [BrowserFact]
    public async Task TheImageViewerDrawsTheAttentionOfTheClassTokenAndOfAPatch()
    {
        var rng = new Generator(6);
        var tokens = Enumerable.Range(0, 5).Select(i => i == 0 ? "[class]" : $"patch {i - 1}").ToArray();
        var layers = Enumerable.Range(0, 2).Select(l =>
            new AttentionLayerView($"layer {l}", tokens, tokens, Enumerable.Range(0, 2).Select(_ => Map(rng, 5, 5, causal: false)).ToArray())).ToArray();
        var pixels = Enumerable.Range(0, 64).Select(i => (i % 8 + i / 8) / 14f).ToArray();
        var view = new AttentionView("test image", layers, new AttentionImage(8, 8, pixels, 4));
        using var dir = new TempDirectory();
        var page = dir.File("image.html");
        AttentionHtml.Save(page, view);
        await using var browser = await HeadlessBrowser.StartAsync();
        await browser.OpenAsync(page);

        const string Pixels = "document.querySelector('#view canvas').toDataURL()";
        var first = (await browser.EvaluateAsync(Pixels))!.GetValue<string>();
        await browser.EvaluateAsync("(() => { const s = document.getElementById('layer'); s.value = '1'; s.dispatchEvent(new Event('change')); })()");
        var second = (await browser.EvaluateAsync(Pixels))!.GetValue<string>();
        Assert.NotEqual(first, second);
        await browser.EvaluateAsync("(() => { const s = document.getElementById('layer'); s.value = '-1'; s.dispatchEvent(new Event('change')); })()");
        Assert.Contains("rollout", (await browser.EvaluateAsync("document.getElementById('info').textContent"))!.GetValue<string>());
        Assert.True((await browser.EvaluateAsync("document.querySelector('button.head').disabled"))!.GetValue<bool>());
        // The pointer over the bottom-right patch shows that patch's attention instead of the class token's.
        await browser.EvaluateAsync("(() => { const c = document.querySelector('#view canvas'), r = c.getBoundingClientRect(); c.dispatchEvent(new MouseEvent('mousemove', { clientX: r.left + r.width - 3, clientY: r.top + r.height - 3 })); })()");
        Assert.Contains("patch 3", (await browser.EvaluateAsync("document.getElementById('info').textContent"))!.GetValue<string>());
        Assert.Empty(browser.Errors);
    }
}
