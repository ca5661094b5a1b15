using System.CommandLine;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Cli;

/// <summary>
/// `--beam` and `--length-penalty` of `attn train`, `attn eval` and `attn predict`: how a g2p model decodes its test
/// words or a word (train binds them onto its options; eval and predict read them here).
/// </summary>
static class DecodingOptions
{
    public static (Option<int?> Beam, Option<float?> LengthPenalty) Create() =>
    (
        new Option<int?>("--beam")
        {
            Description = $"g2p: the beam width ({PronunciationTask.BeamWidth}; 1 is greedy decoding).",
        },
        new Option<float?>("--length-penalty")
        {
            Description = "g2p: α of the beam's length normalisation, log p / ((5 + length) / 6)^α (0: none).",
        }
    );

    /// <summary>
    /// The beam width and α for a g2p checkpoint (the defaults where not given), null for another task's checkpoint,
    /// which takes neither option.
    /// </summary>
    public static (int Beam, double LengthPenalty)? Read(ParseResult r, Option<int?> beam, Option<float?> lengthPenalty,
        string? task, string checkpoint)
    {
        int? width = r.GetValue(beam);
        float? alpha = r.GetValue(lengthPenalty);
        if (task != "g2p")
        {
            if (width is null && alpha is null) return null;
            throw new ArgumentException($"{(width is not null ? "--beam" : "--length-penalty")} applies to g2p checkpoints; " +
                                        $"'{checkpoint}' is {(task is null ? "a language model" : $"a {task} checkpoint")}.");
        }
        PronunciationTask.ValidateDecoding(width, alpha);
        return (width ?? PronunciationTask.BeamWidth, Math.Round(alpha ?? 0f, 6));
    }
}
