using System.CommandLine;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Cli;

/// <summary>`--beam` and `--length-penalty` of `attn eval` and `attn predict`: how a g2p checkpoint decodes.</summary>
static class DecodingOptions
{
    public static (Option<int?> Beam, Option<double?> LengthPenalty) Create() =>
    (
        new Option<int?>("--beam")
        {
            Description = $"g2p: the beam width ({PronunciationTask.BeamWidth}; 1 is greedy decoding).",
        },
        new Option<double?>("--length-penalty")
        {
            Description = "g2p: α of the beam's length normalisation, log p / ((5 + length) / 6)^α (0: none).",
        }
    );

    /// <summary>
    /// The beam width and α for a g2p checkpoint (the defaults where not given), null for another task's checkpoint,
    /// which takes neither option.
    /// </summary>
    public static (int Beam, double LengthPenalty)? Read(ParseResult r, Option<int?> beam, Option<double?> lengthPenalty,
        string? task, string checkpoint)
    {
        int? width = r.GetValue(beam);
        double? alpha = r.GetValue(lengthPenalty);
        if (task != "g2p")
        {
            if (width is null && alpha is null) return null;
            throw new ArgumentException($"{(width is not null ? "--beam" : "--length-penalty")} applies to g2p checkpoints; " +
                                        $"'{checkpoint}' is {(task is null ? "a language model" : $"a {task} checkpoint")}.");
        }
        if (width is <= 0) throw new ArgumentException($"--beam must be positive; got {width}.");
        if (alpha is { } a && !(a >= 0 && a <= 10)) throw new ArgumentException($"--length-penalty must be in [0, 10]; got {a}.");
        return (width ?? PronunciationTask.BeamWidth, alpha ?? 0);
    }
}
