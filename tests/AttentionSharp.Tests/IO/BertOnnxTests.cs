using AttentionSharp.Autograd;
using AttentionSharp.IO.Onnx;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.IO;

/// <summary>ONNX export of BERT's masked-LM path: ONNX Runtime gives our logits, with padding and two segments.</summary>
public class BertOnnxTests(ITestOutputHelper output)
{
    const double Tolerance = 1e-4;

    [Fact]
    public void OnnxRuntimeGivesOurMlmLogits()
    {
        var model = new Bert(new BertConfig
        {
            VocabSize = 23, MaxPositions = 10, Layers = 2, Heads = 2, Width = 16, IntermediateSize = 24, Dropout = 0, AttentionDropout = 0,
        }, new Generator(8));
        model.Eval();
        using var dir = new TempDirectory();
        BertOnnx.Export(model, dir.File("bert.onnx"));
        using var session = new InferenceSession(dir.File("bert.onnx"));
        foreach (var (batch, time) in new[] { (2, 7), (1, 10), (3, 2) })
        {
            var ids = new int[batch * time];
            var segments = new int[ids.Length];
            for (int i = 0; i < ids.Length; i++)
            {
                ids[i] = i % time == time - 1 && i % 2 == 1 ? 0 : 1 + (5 * i + 2) % 22; // some trailing padding (id 0)
                segments[i] = i % time >= time / 2 ? 1 : 0;
            }
            float[] ours;
            using (GradMode.NoGrad()) ours = model.MlmLogits(model.Forward(ids, batch, time, segments)).ToArray();
            using var results = session.Run([
                NamedOnnxValue.CreateFromTensor(BertOnnx.InputName, new DenseTensor<long>(ids.Select(i => (long)i).ToArray(), [batch, time])),
                NamedOnnxValue.CreateFromTensor(BertOnnx.SegmentInputName, new DenseTensor<long>(segments.Select(i => (long)i).ToArray(), [batch, time])),
            ]);
            var theirs = results.Single().AsTensor<float>();
            Assert.Equal([batch, time, 23], theirs.Dimensions.ToArray());
            double max = TensorAssert.Close(ours, theirs.ToArray(), Tolerance, 0, $"BERT logits through ONNX Runtime, B = {batch}, T = {time}");
            output.WriteLine($"BERT, B = {batch}, T = {time}: max |Δ| = {max:E2}");
        }
    }
}
