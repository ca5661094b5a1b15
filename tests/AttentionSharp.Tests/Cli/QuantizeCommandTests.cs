using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Cli;

/// <summary>
/// attn quantize through a child process: the int8 checkpoint samples and evaluates; misuse is refused by name.
/// </summary>
public class QuantizeCommandTests(TinyCheckpoint checkpoint) : IClassFixture<TinyCheckpoint>
{
    [Fact]
    public void The_int8_checkpoint_samples_and_evaluates_near_the_fp32_one()
    {
        using var dir = new TempDirectory();
        var text = checkpoint.Write("held-out.txt",
            string.Concat(Enumerable.Repeat("the cat sat on the mat. the jury said that. ", 20)));
        var (code, output) = AttnProcess.Run("quantize", "--checkpoint", checkpoint.Path, "--out", dir.File("int8"));
        Assert.True(code == 0, output);
        Assert.Contains("int8 weights", output);

        (code, output) = AttnProcess.Run(
            "sample", "--checkpoint", dir.File("int8"), "--prompt", "the ", "--tokens", "12", "--seed", "3");
        Assert.True(code == 0, output);
        Assert.StartsWith("the ", output.TrimStart());

        (code, var fp32) = AttnProcess.Run("eval", "--checkpoint", checkpoint.Path, "--data", text);
        Assert.True(code == 0, fp32);
        (code, var int8) = AttnProcess.Run("eval", "--checkpoint", dir.File("int8"), "--data", text);
        Assert.True(code == 0, int8);
        double a = BitsPerChar(fp32), b = BitsPerChar(int8);
        Assert.True(Math.Abs(a - b) < 0.02 * a, $"fp32 {a} bits/char, int8 {b}.");
        Assert.NotEqual(a, b);                                          // the int8 products ran

        (code, output) = AttnProcess.Run("quantize", "--checkpoint", dir.File("int8"), "--out", dir.File("again"));
        Assert.NotEqual(0, code);
        Assert.Contains("already int8", output);
        (code, output) = AttnProcess.Run("quantize", "--checkpoint", checkpoint.Path, "--out", checkpoint.Path);
        Assert.NotEqual(0, code);
        Assert.Contains("holds the checkpoint being quantized", output);
    }

    static double BitsPerChar(string output)
    {
        var match = System.Text.RegularExpressions.Regex.Match(output, @"([0-9.]+) bits per character");
        Assert.True(match.Success, output);
        return double.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }
}
