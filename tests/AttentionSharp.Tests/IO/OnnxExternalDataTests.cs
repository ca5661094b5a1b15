using AttentionSharp.Autograd;
using AttentionSharp.IO.Onnx;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;
using Microsoft.ML.OnnxRuntime;

namespace AttentionSharp.Tests.IO;

/// <summary>ONNX external data (the path for weights beyond protobuf's 2 GB), exercised on a small model by forcing it.</summary>
public class OnnxExternalDataTests
{
    [Fact]
    public void WeightsInASidecarFileGiveTheSameLogitsInOnnxRuntime()
    {
        var model = new Gpt(new GptConfig { VocabSize = 31, ContextLength = 10, Layers = 2, Heads = 2, Width = 16 }, new Generator(6));
        model.Eval();
        using var dir = new TempDirectory();
        Assert.Null(GptOnnx.Export(model, dir.File("inline.onnx"), OnnxExternalData.Never));
        Assert.Null(GptOnnx.Export(model, dir.File("automatic.onnx")));               // a small model stays in one file
        Assert.False(File.Exists(OnnxGraph.ExternalDataPath(dir.File("automatic.onnx"))));
        Directory.CreateDirectory(dir.File("elsewhere"));
        var path = Path.Combine(dir.File("elsewhere"), "external.onnx");
        var sidecar = GptOnnx.Export(model, path, OnnxExternalData.Always);
        Assert.Equal(Path.Combine(dir.File("elsewhere"), "external.onnx.data"), sidecar);

        // The weight matrices moved out (each at a 64-byte boundary); the .onnx keeps the graph, the constants and short vectors.
        long total = GptOnnx.Build(model).InitializerBytes, outside = new FileInfo(sidecar!).Length, inside = new FileInfo(path).Length;
        Assert.True(outside >= 0.9 * total, $"the sidecar holds {outside} bytes of {total} bytes of initializers");
        Assert.True(inside + outside < new FileInfo(dir.File("inline.onnx")).Length + 64 * 64, $"the .onnx ({inside} bytes) should no longer hold the weights");

        var ids = Enumerable.Range(0, 10).Select(i => (5 * i + 2) % 31).ToArray();
        float[] ours;
        using (GradMode.NoGrad()) ours = model.Forward(ids, 1, ids.Length).ToArray();
        using var inline = new InferenceSession(dir.File("inline.onnx"));
        using var external = new InferenceSession(path);
        var a = GptOnnxTests.Run(inline, ids, 1, ids.Length).Values;
        var b = GptOnnxTests.Run(external, ids, 1, ids.Length).Values;
        Assert.Equal(a, b);
        TensorAssert.Close(ours, b, 1e-4, 0, "ONNX Runtime logits with external data");

        // The .onnx names its sidecar by file name only, so the pair works wherever it is moved together, and not apart.
        Directory.CreateDirectory(dir.File("moved"));
        File.Move(path, dir.File("moved/external.onnx"));
        File.Move(sidecar!, dir.File("moved/external.onnx.data"));
        using (var moved = new InferenceSession(dir.File("moved/external.onnx"))) Assert.Equal(a, GptOnnxTests.Run(moved, ids, 1, ids.Length).Values);
        File.Delete(dir.File("moved/external.onnx.data"));
        Assert.ThrowsAny<OnnxRuntimeException>(() => new InferenceSession(dir.File("moved/external.onnx")).Dispose());
    }

    [Fact]
    public void TheAutomaticChoiceFollowsTheTotalSizeOfTheWeights()
    {
        var graph = new OnnxGraph("sizes");
        graph.Initializer("w", new float[1000], 1000);
        Assert.Equal(4000, graph.InitializerBytes);
        Assert.False(graph.UsesExternalData(OnnxExternalData.Automatic));
        Assert.True(graph.UsesExternalData(OnnxExternalData.Always));
        Assert.False(graph.UsesExternalData(OnnxExternalData.Never));
        Assert.True(OnnxGraph.ExternalDataThreshold < int.MaxValue, "automatic external data must start below protobuf's 2 GB limit");
    }
}
