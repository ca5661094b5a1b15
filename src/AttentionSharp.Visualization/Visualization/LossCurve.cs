namespace AttentionSharp.Visualization;

/// <summary>The training and validation loss against the step, as a PNG (ScottPlot).</summary>
public static class LossCurve
{
    /// <summary>Writes the curves to <paramref name="path"/> (width × height pixels); validation may be empty.</summary>
    public static void Save(string path, IReadOnlyList<(int Step, float Loss)> train, IReadOnlyList<(int Step, float Loss)> validation,
        string title = "Training", int width = 900, int height = 520)
    {
        if (train.Count == 0) throw new ArgumentException("A loss curve needs at least one training point.", nameof(train));
        var plot = new ScottPlot.Plot();
        var t = plot.Add.ScatterLine(train.Select(p => (double)p.Step).ToArray(), train.Select(p => (double)p.Loss).ToArray());
        t.LegendText = "training loss";
        t.LineWidth = 1.5f;
        if (validation.Count > 0)
        {
            var v = plot.Add.ScatterLine(validation.Select(p => (double)p.Step).ToArray(), validation.Select(p => (double)p.Loss).ToArray());
            v.LegendText = "validation loss";
            v.LineWidth = 2.5f;
            v.MarkerSize = 6;
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("cross-entropy (nats per token)");
        plot.ShowLegend();
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = full + $".tmp-{Environment.ProcessId}.png";
        plot.SavePng(temp, width, height);
        File.Move(temp, full, overwrite: true);
    }
}
