using AttentionSharp.Autograd;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Quantization;

/// <summary>
/// An int8 GPT: close to its fp32 model, the same after a save and load, batch rows independent, and refused where a
/// gradient would have to flow through int8 weights; bad int8 files name the tensor.
/// </summary>
public class Int8ModelTests
{
    static Gpt Model(PositionalEncodingKind positions = PositionalEncodingKind.Learned)
    {
        var config = new GptConfig
        {
            VocabSize = 37, ContextLength = 32, Layers = 2, Heads = 2, Width = 48, PositionalEncoding = positions,
        };
        return new Gpt(config, new Generator(3));
    }

    static readonly int[] Ids = [.. Enumerable.Range(0, 2 * 20).Select(i => (i * 7 + 3) % 37)];

    static float[] Logits(Gpt model)
    {
        using var noGrad = GradMode.NoGrad();
        using var scope = TensorScope.Begin();
        return model.Forward(Ids, 2, 20).Data.ToArray();
    }

    [Fact]
    public void Int8_logits_stay_close_to_fp32()
    {
        var model = Model();
        model.Eval();
        var fp32 = Logits(model);
        model.QuantizeInt8();
        Assert.True(model.IsQuantized);
        var int8 = Logits(model);
        Assert.NotEqual(fp32, int8);                                     // the int8 products ran
        double maxError = fp32.Zip(int8).Max(p => Math.Abs(p.First - p.Second));
        double spread = fp32.Max() - fp32.Min();
        Assert.True(maxError < 0.05 * spread, $"int8 logits differ by up to {maxError:G3} on a range of {spread:G3}.");
        // Every projection and the tied head carry int8; the position table and norms stay fp32.
        Assert.All(model.Modules().OfType<Linear>(), l => Assert.NotNull(l.Weight.Quantized));
        Assert.NotNull(model.Wte.Weight.Quantized);
        Assert.Null(model.Wpe!.Weight.Quantized);
        Assert.Null(model.LnF.Weight.Quantized);
    }

    [Fact]
    public void An_int8_checkpoint_loads_to_the_same_model()
    {
        using var dir = new TempDirectory();
        var model = Model(PositionalEncodingKind.Rotary);
        model.Eval();
        model.QuantizeInt8();
        var expected = Logits(model);
        var path = dir.File("int8.safetensors");
        StateDictFile.Save(model, path);
        var file = SafetensorsFile.Read(path);
        Assert.Equal("int8", file.Metadata["quantization"]);
        Assert.Equal(SafetensorsDType.I8, file.GetEntry("h.0.attn.c_attn.weight").DType);
        Assert.Equal(SafetensorsDType.F32, file.GetEntry("h.0.attn.c_attn.weight_scale").DType);
        Assert.Equal(SafetensorsDType.I8, file.GetEntry("wte.weight").DType);
        Assert.Equal(SafetensorsDType.F32, file.GetEntry("ln_f.weight").DType);
        var loaded = Model(PositionalEncodingKind.Rotary);
        loaded.Eval();
        StateDictFile.Load(loaded, path);
        Assert.True(loaded.IsQuantized);
        Assert.Equal(expected, Logits(loaded));
        // Loading fp32 weights over it makes it an fp32 model again.
        var fp32Path = dir.File("fp32.safetensors");
        StateDictFile.Save(Model(PositionalEncodingKind.Rotary), fp32Path);
        StateDictFile.Load(loaded, fp32Path);
        Assert.False(loaded.IsQuantized);
    }

    [Fact]
    public void Int8_rows_of_a_batch_equal_each_row_alone()
    {
        var model = Model();
        model.Eval();
        model.QuantizeInt8();
        using var noGrad = GradMode.NoGrad();
        var caches = Enumerable.Range(0, 7).Select(_ => new KvCache(2)).ToArray();
        var alone = Enumerable.Range(0, 7).Select(_ => new KvCache(2)).ToArray();
        try
        {
            for (int r = 0; r < 7; r++)
            {
                using var scope = TensorScope.Begin();
                int[] prompt = [.. Ids.Take(1 + r)];
                model.Forward(prompt, 1, prompt.Length, caches[r]);
                model.Forward(prompt, 1, prompt.Length, alone[r]);
            }
            using var step = TensorScope.Begin();
            int[] ids = [1, 2, 3, 4, 5, 6, 7];
            var batched = model.ForwardRows(ids, caches).Data.ToArray();
            for (int r = 0; r < 7; r++)
                Assert.Equal(model.Forward([ids[r]], 1, 1, alone[r]).Data.ToArray(), batched.AsSpan(r * 37, 37).ToArray());
        }
        finally
        {
            foreach (var c in caches.Concat(alone)) c.Dispose();
        }
    }

    [Fact]
    public void Releasing_the_fp32_weights_keeps_the_logits_and_the_decoding_bit_for_bit()
    {
        var model = Model();
        model.Eval();
        model.QuantizeInt8();
        var before = Logits(model);
        float[] Decoded()
        {
            using var noGrad = GradMode.NoGrad();
            using var scope = TensorScope.Begin();
            using var cache = new KvCache(2);
            var first = model.Prefill([1, 2, 3], 1, 3, cache).ToArray();
            return [.. first, .. model.ForwardRows([4], [cache]).ToArray()];
        }
        var decodedBefore = Decoded();
        model.ReleaseFloat32Weights();
        Assert.True(model.Wte.Weight.Float32Released);
        Assert.All(model.Blocks, b => Assert.True(b.Attn.CAttn.Weight.Float32Released));
        Assert.False(model.Wpe!.Weight.Float32Released);                        // fp32 tensors keep their elements
        Assert.Equal(before, Logits(model));
        Assert.Equal(decodedBefore, Decoded());
    }

    [Fact]
    public void A_released_weight_refuses_what_needs_its_fp32_elements()
    {
        var model = Model();
        var fp32 = Model().StateDict();
        var refused = Assert.Throws<InvalidOperationException>(model.ReleaseFloat32Weights);
        Assert.Contains("fp32", refused.Message);
        model.QuantizeInt8();
        model.ReleaseFloat32Weights();
        var read = Assert.Throws<InvalidOperationException>(() => model.Wte.Weight.ToArray());
        Assert.Contains("int8 only", read.Message);
        var load = Assert.Throws<InvalidOperationException>(() => model.LoadStateDict(fp32));
        Assert.Contains("int8 only", load.Message);
        model.Train();
        var train = Assert.Throws<InvalidOperationException>(() => model.Forward(Ids, 2, 20));
        Assert.Contains("int8", train.Message);
    }

    [Fact]
    public void Gradients_through_int8_weights_are_refused()
    {
        var model = Model();
        model.QuantizeInt8();
        var e = Assert.Throws<InvalidOperationException>(() => model.Forward(Ids, 2, 20));
        Assert.Contains("int8", e.Message);
        Assert.Contains("NoGrad", e.Message);
    }

    [Fact]
    public void Bad_int8_files_name_the_tensor()
    {
        using var dir = new TempDirectory();
        var model = Model();
        model.QuantizeInt8();
        var good = SafetensorsFile.Read(Save(model, dir.File("good.safetensors")));

        var noScale = Rewrite(good, e => e.Name == "h.1.mlp.c_fc.weight_scale" ? null : e);
        var error = Assert.Throws<ArgumentException>(() => StateDictFile.Load(Model(), noScale));
        Assert.Contains("'h.1.mlp.c_fc.weight' has no F32 scales", error.Message);

        var minValue = Rewrite(good,
            e => e.Name == "h.0.attn.c_proj.weight" ? e with { Data = [(byte)0x80, .. e.Data.Skip(1)] } : e);
        error = Assert.Throws<ArgumentException>(() => StateDictFile.Load(Model(), minValue));
        Assert.Contains("'h.0.attn.c_proj.weight'", error.Message);
        Assert.Contains("−128", error.Message);

        var badScale = Rewrite(good, e => e.Name == "wte.weight_scale"
            ? e with { Data = BitConverter.GetBytes(float.NaN).Concat(e.Data.Skip(4)).ToArray() }
            : e);
        error = Assert.Throws<ArgumentException>(() => StateDictFile.Load(Model(), badScale));
        Assert.Contains("'wte.weight'", error.Message);
    }

    static string Save(Gpt model, string path) { StateDictFile.Save(model, path); return path; }

    sealed record Stored(string Name, SafetensorsDType DType, int[] Shape, byte[] Data);

    static SafetensorsFile Rewrite(SafetensorsFile file, Func<Stored, Stored?> change)
    {
        var writer = new SafetensorsWriter();
        foreach (var e in file.Entries)
            if (change(new Stored(e.Name, e.DType, e.ShapeToArray(), e.Data.ToArray())) is { } s)
                writer.Add(s.Name, s.DType, s.Shape, s.Data);
        return SafetensorsFile.Read(writer.ToArray());
    }
}
