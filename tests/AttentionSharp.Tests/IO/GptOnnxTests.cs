using AttentionSharp.Autograd;
using AttentionSharp.IO;
using AttentionSharp.IO.Onnx;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.IO;

/// <summary>ONNX export of GPT: ONNX Runtime runs the file and gives our logits, at several batch sizes and lengths.</summary>
public class GptOnnxTests(ITestOutputHelper output)
{
    /// <summary>fp32 with different summation orders across a few layers; the issue asks for 1e-4.</summary>
    const double Tolerance = 1e-4;

    [Theory]
    [InlineData(PositionalEncodingKind.Learned, true)]
    [InlineData(PositionalEncodingKind.Sinusoidal, true)]
    [InlineData(PositionalEncodingKind.None, false)]
    public void OnnxRuntimeGivesOurLogits(PositionalEncodingKind positions, bool bias)
    {
        var model = new Gpt(new GptConfig
        {
            VocabSize = 29, ContextLength = 12, Layers = 2, Heads = 2, Width = 16, PositionalEncoding = positions, Bias = bias,
        }, new Generator(5));
        model.Eval();
        using var dir = new TempDirectory();
        var path = dir.File("gpt.onnx");
        GptOnnx.Export(model, path);
        using var session = new InferenceSession(path);
        foreach (var (batch, time) in new[] { (1, 12), (2, 5), (3, 1) })
        {
            var ids = new int[batch * time];
            for (int i = 0; i < ids.Length; i++) ids[i] = (11 * i + 4) % model.Config.VocabSize;
            float[] ours;
            using (GradMode.NoGrad())
            using (var logits = model.Forward(ids, batch, time)) ours = logits.ToArray();
            var theirs = Run(session, ids, batch, time);
            Assert.Equal(new long[] { batch, time, model.Config.VocabSize }, theirs.Shape);
            double max = TensorAssert.Close(ours, theirs.Values, Tolerance, 0, $"ONNX Runtime logits, B = {batch}, T = {time}, {positions} positions");
            output.WriteLine($"{positions}, B = {batch}, T = {time}: max |Δ| = {max:E2}");
        }
    }

    [Fact]
    public void TheImportedGpt2FixtureGivesPyTorchsLogitsThroughOnnxRuntime()
    {
        // GPT-2 weights from the Hugging Face fixture, whose PyTorch logits are known: ONNX Runtime must give them too.
        var model = HuggingFaceGpt2.Import(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf_gpt2"));
        using var dir = new TempDirectory();
        GptOnnx.Export(model, dir.File("gpt2.onnx"));
        using var session = new InferenceSession(dir.File("gpt2.onnx"));
        var expected = Fixtures.Open("hf_gpt2_expected.safetensors");
        var ids = expected.Ints("ids");
        var theirs = Run(session, ids, 1, ids.Length);
        double max = TensorAssert.Close(expected.ReadFloat32("logits"), theirs.Values, Tolerance, 0, "ONNX Runtime logits of the GPT-2 fixture against PyTorch");
        output.WriteLine($"GPT-2 fixture through ONNX Runtime against PyTorch: max |Δ| = {max:E2}");
    }

    [Fact]
    public void RotaryPositionsAreRefusedWithAClearMessage()
    {
        var model = new Gpt(new GptConfig { VocabSize = 9, ContextLength = 4, Layers = 1, Heads = 1, Width = 4, PositionalEncoding = PositionalEncodingKind.Rotary }, new Generator(1));
        var e = Assert.Throws<ArgumentException>(() => GptOnnx.Build(model));
        Assert.Contains("Rotary", e.Message);
    }

    internal static (long[] Shape, float[] Values) Run(InferenceSession session, int[] ids, int batch, int time)
    {
        var input = new DenseTensor<long>(ids.Select(i => (long)i).ToArray(), [batch, time]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(GptOnnx.InputName, input)]);
        var output = results.Single(r => r.Name == GptOnnx.OutputName).AsTensor<float>();
        return (output.Dimensions.ToArray().Select(d => (long)d).ToArray(), output.ToArray());
    }
}
