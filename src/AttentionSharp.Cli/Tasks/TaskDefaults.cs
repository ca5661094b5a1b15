namespace AttentionSharp.Cli.Tasks;

/// <summary>
/// A task's own defaults for the options of <c>attn train</c>, which otherwise default to the language model's: each
/// field set here replaces the option's value unless the user gave that option on the command line. A null field keeps
/// the command's default.
/// </summary>
sealed record TaskDefaults
{
    public int? Steps { get; init; }
    /// <summary>The time limit; the schedule is fitted to it.</summary>
    public double? Minutes { get; init; }
    public int? Layers { get; init; }
    public int? Heads { get; init; }
    public int? Width { get; init; }
    public float? Dropout { get; init; }
    public int? Batch { get; init; }
    public float? LearningRate { get; init; }
    public int? Warmup { get; init; }
    public float? WeightDecay { get; init; }
    public int? EvalInterval { get; init; }

    /// <summary><paramref name="o"/> with every option the user did not give (see <see cref="TaskOptions.Given"/>) set to this default.</summary>
    public TaskOptions Apply(TaskOptions o)
    {
        T Pick<T>(string option, T given, T? fallback) where T : struct => o.Given.Contains(option) || fallback is null ? given : fallback.Value;
        return o with
        {
            Steps = Pick("--steps", o.Steps, Steps),
            Minutes = o.Given.Contains("--minutes") ? o.Minutes : Minutes ?? o.Minutes,
            Layers = Pick("--layers", o.Layers, Layers),
            Heads = Pick("--heads", o.Heads, Heads),
            Width = Pick("--width", o.Width, Width),
            Dropout = Pick("--dropout", o.Dropout, Dropout),
            Batch = Pick("--batch", o.Batch, Batch),
            LearningRate = Pick("--lr", o.LearningRate, LearningRate),
            Warmup = Pick("--warmup", o.Warmup, Warmup),
            WeightDecay = Pick("--weight-decay", o.WeightDecay, WeightDecay),
            EvalInterval = Pick("--eval-interval", o.EvalInterval, EvalInterval),
        };
    }

    /// <summary>One line for the run's header: the values in force and which came from the task.</summary>
    public static string Describe(TaskOptions o) =>
        $"lr {o.LearningRate:G3}, batch {o.Batch}, warmup {o.Warmup}, weight decay {o.WeightDecay:G3}, dropout {o.Dropout:G3}";
}
