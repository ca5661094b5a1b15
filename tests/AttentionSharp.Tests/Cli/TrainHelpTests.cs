using System.Text.RegularExpressions;
using AttentionSharp.Nn;
using AttentionSharp.Training;

namespace AttentionSharp.Tests.Cli;

/// <summary>`attn train --help` says what the presets do, from the presets themselves, so the two cannot drift apart.</summary>
public class TrainHelpTests
{
    [Fact]
    public void PositionsHelpNamesTheTasksWhosePresetsReadEachKind()
    {
        var (code, output) = AttnProcess.Run("train", "--help");
        Assert.True(code == 0, output);
        string help = Regex.Replace(output, @"\s+", " ");
        foreach (var kind in Enum.GetValues<PositionalEncodingKind>())
        {
            var tasks = TaskPresets.Tasks.Where(t => TaskPresets.For(t, "transformer").Positions == kind).ToList();
            string name = kind.ToString().ToLowerInvariant();
            if (tasks.Count > 0) Assert.Contains($"{name} ({string.Join(", ", tasks)})", help);
            else Assert.Matches($@"--positions <positions> Transformers: [^.]*\b{name}\b", help);
        }
    }
}
