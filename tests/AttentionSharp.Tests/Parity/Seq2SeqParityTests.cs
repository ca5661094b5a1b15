using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.Parity;

/// <summary>
/// The LSTM encoder–decoder against a PyTorch module built the same way (tests/fixtures/seq2seq.safetensors: Seq2Seq in
/// make_fixtures.py): two layers, a bidirectional encoder, Luong "general" attention or none, with torch's weights.
/// Logits, the loss over non-padding targets and every parameter's gradient; the largest difference per tensor is printed.
/// </summary>
public class Seq2SeqParityTests(ITestOutputHelper output)
{
    // Two recurrent stacks, attention and a softmax in fp32, summed in other orders than PyTorch's: differences of a few
    // 1e-7 in logits and up to ~1e-6 in gradients summed through time. The bounds leave a factor of ten and stay far
    // below a real error (a swapped direction or gate moves values by ~1e-1).
    const double ForwardAbs = 1e-5, ForwardRel = 1e-5;
    const double GradientAbs = 1e-5, GradientRel = 1e-4;

    static readonly Lazy<SafetensorsFile> File = new(() => Fixtures.Open("seq2seq.safetensors"));

    [Fact]
    public void EveryFixtureCaseIsTested() => Assert.Equal(["attn", "plain"], File.Value.Metadata["cases"].Split(',').Order());

    [Theory]
    [InlineData("attn")]
    [InlineData("plain")]
    public void MatchesPyTorch(string name)
    {
        var file = File.Value;
        string prefix = $"{name}.param.";
        var state = file.Entries.Select(e => e.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(n => n[prefix.Length..], n => file.Tensor(n));
        var model = new RecurrentSeq2Seq(new RecurrentSeq2SeqConfig
        {
            SourceVocabSize = 9, TargetVocabSize = 11, EmbeddingSize = 6, HiddenSize = 8, Layers = 2, BidirectionalEncoder = true,
            Attention = name == "attn" ? Seq2SeqAttention.General : Seq2SeqAttention.None,
        }, new Generator(1));
        Assert.Equal(state.Keys.Order(), model.StateDict().Keys.Order());
        model.LoadStateDict(state);
        int[] Ids(string what) => [.. file.Tensor($"{name}.{what}").ToArray().Select(v => (int)v)];
        var source = Ids("src");
        var input = Ids("tgt_in");
        var target = Ids("tgt_out");
        var logits = model.Forward(source, 4, input, 5, 2);
        Compare(file.Tensor($"{name}.logits"), logits, ForwardAbs, ForwardRel, $"{name}.logits");
        var loss = model.Loss(logits, target);
        Compare(file.Tensor($"{name}.loss"), loss.Reshape(1), ForwardAbs, ForwardRel, $"{name}.loss");
        loss.Backward();
        foreach (var (torchName, parameter) in model.StateDict())
            Compare(file.Tensor($"{name}.grad.{torchName}"), parameter.Grad!, GradientAbs, GradientRel, $"{name}.grad.{torchName}");
    }

    void Compare(Tensor expected, Tensor actual, double atol, double rtol, string what)
    {
        Assert.Equal(expected.Shape.ToArray(), actual.Shape.ToArray());
        double d = TensorAssert.Close(expected.ToArray(), actual.ToArray(), atol, rtol, what);
        output.WriteLine($"{what}: max |Δ| = {d:G3}");
    }
}
