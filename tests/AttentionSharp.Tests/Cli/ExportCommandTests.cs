using AttentionSharp.Autograd;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Tests.IO;
using AttentionSharp.Tests.Support;
using Microsoft.ML.OnnxRuntime;

namespace AttentionSharp.Tests.Cli;

/// <summary>attn export --onnx on a checkpoint written by attn train: ONNX Runtime gives the checkpoint's logits.</summary>
public class ExportCommandTests
{
    [Fact]
    public void ExportOnnxFromATrainedCheckpointRunsInOnnxRuntime()
    {
        using var dir = new TempDirectory();
        var data = dir.Write("data.txt", string.Concat(Enumerable.Repeat("a small text for a small model. ", 40)));
        var run = Path.Combine(dir.Path, "run");
        var (code, output) = AttnProcess.Run("train", "--data", data, "--out", run, "--steps", "4", "--minutes", "0", "--layers", "1",
            "--heads", "2", "--width", "16", "--context", "16", "--batch", "2", "--tokenizer", "char");
        Assert.True(code == 0, output);
        var onnx = dir.File("model.onnx");
        (code, output) = AttnProcess.Run("export", "--checkpoint", run, "--onnx", onnx);
        Assert.True(code == 0, output);
        Assert.Contains("input 'input_ids'", output);

        var contents = Checkpoint.ReadContents(run);
        var model = new Gpt(GptConfig.FromJson(contents.Config), new Generator(0));
        Checkpoint.LoadWeights(run, model);
        model.Eval();
        var ids = Enumerable.Range(0, 10).Select(i => (3 * i + 1) % model.Config.VocabSize).ToArray();
        float[] ours;
        using (GradMode.NoGrad()) ours = model.Forward(ids, 1, ids.Length).ToArray();
        using var session = new InferenceSession(onnx);
        TensorAssert.Close(ours, GptOnnxTests.Run(session, ids, 1, ids.Length).Values, 1e-4, 0, "logits of the exported checkpoint");
    }

    [Fact]
    public void ExportNeedsExactlyOneTarget()
    {
        var (code, output) = AttnProcess.Run("export", "--checkpoint", "nowhere");
        Assert.Equal(2, code);
        Assert.Contains("exactly one of --hf OUTDIR or --onnx FILE", output);
    }
}
