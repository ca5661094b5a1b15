namespace AttentionSharp.Training;

/// <summary>
/// Training progress: on a terminal, one live line redrawn in place (step, bar, loss, tokens/s, ETA); when the output is
/// redirected, a plain line every few seconds so logs stay readable.
/// </summary>
public sealed class ProgressLine(TextWriter output, bool plain, string unit = "tokens")
{
    static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(10);
    TimeSpan? _lastPlain;
    bool _live;

    public void Update(StepReport r)
    {
        string text = $"step {r.Step,5}/{r.TotalSteps} {Bar(r.Step, r.TotalSteps)} loss {r.Loss:F4} | lr {r.LearningRate:0.0e+0} | {Rate(r.ItemsPerSecond)} {Short(unit)}/s | {Format(r.Elapsed)} elapsed, ETA {Format(r.Remaining)}";
        if (plain)
        {
            if (_lastPlain is { } last && r.Elapsed - last < PlainInterval && r.Step != r.TotalSteps) return;
            _lastPlain = r.Elapsed;
            output.WriteLine(text);
            return;
        }
        int width = Console.IsOutputRedirected ? 160 : Math.Max(40, Console.WindowWidth - 1);
        output.Write("\r" + (text.Length > width ? text[..width] : text.PadRight(width)));
        _live = true;
    }

    /// <summary>A message on its own line (the live line is finished first).</summary>
    public void Line(string message)
    {
        if (_live) { output.WriteLine(); _live = false; }
        output.WriteLine(message);
    }

    /// <summary>"tok/s", as the README's figures have always read; other units as they are.</summary>
    static string Short(string unit) => unit == "tokens" ? "tok" : unit;

    static string Rate(double perSecond) => perSecond >= 1000 ? $"{perSecond / 1000:F1}k" : $"{perSecond:F0}";

    static string Bar(int step, int total)
    {
        const int Width = 20;
        int filled = total == 0 ? Width : (int)((long)Width * step / total);
        return "[" + new string('#', filled) + new string('.', Width - filled) + "]";
    }

    static string Format(TimeSpan t) => t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss") : t.ToString(@"m\:ss");
}
