using AttentionSharp.Gpu;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Training;

namespace AttentionSharp.Tests.Gpu;

/// <summary>
/// Tensors on a device (<see cref="Device"/>): moving them, the operations a device runs under autograd, and AdamW with
/// clipping on the device, each against the CPU engine, on ILGPU's CPU accelerator.
/// </summary>
[Collection(GpuCollection.Name)]
[Trait("Category", "Gpu")]
public class DeviceTensorTests(GpuFixture fixture)
{
    readonly GpuDevice _device = fixture.Simulator;

    // Sums in another order (the GEMM's tiles, atomics in the parameter sums) than the CPU's: within float rounding.
    const double Atol = 2e-5, Rtol = 1e-4;

    /// <summary>
    /// Embeddings and positions, a pre-LN feed-forward block (LayerNorm inside the first product, GELU inside the
    /// second, the residual in the sum), a final LayerNorm, a GELU layer and a head tied to the embeddings: every
    /// operation a device runs, through the library's modules.
    /// </summary>
    sealed class TinyModel : Module
    {
        public TinyModel(Generator rng, int vocab = 23, int context = 6, int width = 12)
        {
            Wte = RegisterModule("wte", new AttentionSharp.Nn.Embedding(vocab, width, rng, 0.5f));
            Wpe = RegisterModule("wpe", new AttentionSharp.Nn.Embedding(context, width, rng, 0.5f));
            Ln1 = RegisterModule("ln_1", new AttentionSharp.Nn.LayerNorm(width));
            Ffn = RegisterModule("mlp", new FeedForward(width, 3 * width, FeedForwardActivation.GeluTanh, rng));
            LnF = RegisterModule("ln_f", new AttentionSharp.Nn.LayerNorm(width));
            Hidden = RegisterModule("hidden", new Linear(width, width, rng));
            // LayerNorm's weight and bias away from 1 and 0, so their gradients are not a special case.
            foreach (var norm in new[] { Ln1, LnF })
            {
                using var w = Tensor.Uniform(rng, 0.5f, 1.5f, width);
                using var b = Tensor.Uniform(rng, -0.3f, 0.3f, width);
                norm.Weight.CopyFrom_(w);
                norm.Bias!.CopyFrom_(b);
            }
        }

        public AttentionSharp.Nn.Embedding Wte { get; }
        public AttentionSharp.Nn.Embedding Wpe { get; }
        public AttentionSharp.Nn.LayerNorm Ln1 { get; }
        public FeedForward Ffn { get; }
        public AttentionSharp.Nn.LayerNorm LnF { get; }
        public Linear Hidden { get; }

        public Tensor Forward(int[] ids, int batch, int time)
        {
            var positions = Enumerable.Range(0, time).ToArray();
            var x = Wte.Forward(ids, batch, time) + Wpe.Forward(positions, time);      // (B, T, C) + (T, C)
            x = x + Ffn.ForwardBranch(Ln1.Deferred(x));
            var h = Hidden.Forward(LnF.Forward(x)).Gelu();
            return Tensor.Linear(h, Wte.Weight);                                       // (B, T, V)
        }
    }

    static (int[] Ids, int[] Targets) Batch(Generator rng, int batch, int time, int vocab)
    {
        var ids = new int[batch * time];
        var targets = new int[batch * time];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = (int)(rng.NextUInt64() % (ulong)vocab);
            targets[i] = (int)(rng.NextUInt64() % (ulong)vocab);
        }
        targets[3] = -100;   // one ignored position
        return (ids, targets);
    }

    static void Close(float[] expected, float[] actual, string what, double atol = Atol, double rtol = Rtol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= atol + rtol * Math.Abs(expected[i]),
                $"{what}[{i}]: CPU {expected[i]}, device {actual[i]}");
    }

    /// <summary>
    /// Every parameter's gradient of the model on the device against the CPU model's, by name; the gradients' tolerance
    /// of GpuGptCheck by default.
    /// </summary>
    void CloseGradients(Module cpu, Module gpu, double atol = GpuGptCheck.GradientAtol, double rtol = GpuGptCheck.GradientRtol)
    {
        foreach (var ((name, c), (_, g)) in cpu.NamedParameters().Zip(gpu.NamedParameters()))
        {
            Assert.True(g.Grad is not null && ReferenceEquals(g.Grad.Device, _device), $"{name} has no gradient on the device");
            Close(c.Grad!.ToArray(), g.Grad.ToArray(), name, atol, rtol);
        }
    }

    [Fact]
    public void ATensorMovesToTheDeviceAndBack()
    {
        using var host = Tensor.Randn(new Generator(1), 3, 5);
        using var onDevice = host.To(_device);
        Assert.Same(_device, onDevice.Device);
        Assert.True(host.Device.IsCpu);
        Assert.Equal(host.ToArray(), onDevice.ToArray());
        using var back = onDevice.To(Device.Cpu);
        Assert.Equal(host.ToArray(), back.ToArray());
        Assert.Same(host, host.To(Device.Cpu));
        Assert.Contains($"on {_device.Name}", onDevice.ToString());
        using var view = onDevice.Reshape(15);
        Assert.Equal(host.ToArray(), view.ToArray());
        using var scalar = Tensor.Scalar(2.5f).To(_device);
        Assert.Equal(2.5f, scalar.Item());
    }

    [Fact]
    public void AModelMovesToTheDeviceAndBackWithItsGradients()
    {
        var model = new TinyModel(new Generator(5));
        var before = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.ToArray());
        var references = model.Parameters().ToList();
        model.To(_device);
        using (var loss = Tensor.CrossEntropy(model.Forward([1, 2, 3], 1, 3).Reshape(3, 23), [4, 5, 6])) loss.Backward();
        var gradients = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad!.ToArray());
        model.To(Device.Cpu);
        Assert.Equal(references, model.Parameters().ToList());   // the same objects, moved in place
        foreach (var (name, p) in model.NamedParameters())
        {
            Assert.True(p.Device.IsCpu && p.Grad!.Device.IsCpu, name);
            Assert.Equal(before[name], p.ToArray());
            Assert.Equal(gradients[name], p.Grad.ToArray());
        }
    }

    [Fact]
    public void WhatADeviceDoesNotRunIsRefusedWithASentence()
    {
        using var a = Tensor.Randn(new Generator(2), 4, 4).To(_device);
        using var b = Tensor.Randn(new Generator(3), 4, 4);
        var cpuOnly = Assert.Throws<InvalidOperationException>(() => a.Softmax());
        Assert.Contains($"is on {_device.Name}", cpuOnly.Message);
        Assert.Contains("To(Device.Cpu)", cpuOnly.Message);
        var mixed = Assert.Throws<InvalidOperationException>(() => Tensor.Linear(a, b));
        Assert.Contains("move them to one device", mixed.Message);
        Assert.Contains("Add: its operands are on", Assert.Throws<InvalidOperationException>(() => a + b).Message);
        Assert.Throws<NotSupportedException>(() => a * a);
    }

    [Fact]
    public void AModelOnTheDeviceComputesTheCpusLossAndGradients()
    {
        const int batch = 2, time = 6, vocab = 23;
        var cpu = new TinyModel(new Generator(7));
        var gpu = new TinyModel(new Generator(7));
        gpu.To(_device);
        Assert.All(gpu.Parameters(), p => Assert.Same(_device, p.Device));
        var (ids, targets) = Batch(new Generator(8), batch, time, vocab);

        using var cpuLoss = Tensor.CrossEntropy(cpu.Forward(ids, batch, time).Reshape(batch * time, vocab), targets);
        using var logits = gpu.Forward(ids, batch, time);
        Assert.Same(_device, logits.Device);
        using var gpuLoss = Tensor.CrossEntropy(logits.Reshape(batch * time, vocab), targets);
        Close([cpuLoss.Item()], [gpuLoss.Item()], "loss");
        cpuLoss.Backward();
        gpuLoss.Backward();
        CloseGradients(cpu, gpu, Atol, Rtol);
    }

    [Fact]
    public void AdamWWithClippingStepsTheDeviceModelAsTheCpuOne()
    {
        const int batch = 3, time = 5, vocab = 23;
        var cpu = new TinyModel(new Generator(11));
        var gpu = new TinyModel(new Generator(11));
        gpu.To(_device);
        var cpuOptimizer = new AdamW(cpu.Parameters().Select(p => (p, p.Rank >= 2)), lr: 1e-2f, weightDecay: 0.1f);
        var gpuOptimizer = new AdamW(gpu.Parameters().Select(p => (p, p.Rank >= 2)), lr: 1e-2f, weightDecay: 0.1f);
        var rng = new Generator(12);
        for (int step = 0; step < 3; step++)
        {
            var (ids, targets) = Batch(rng, batch, time, vocab);
            float norm = 0, deviceNorm = 0;
            foreach (var (model, optimizer) in new[] { ((Module)cpu, cpuOptimizer), (gpu, gpuOptimizer) })
            {
                var tiny = (TinyModel)model;
                optimizer.ZeroGrad();
                using var loss = Tensor.CrossEntropy(tiny.Forward(ids, batch, time).Reshape(batch * time, vocab), targets);
                loss.Backward();
                var (n, coefficient) = GradientClipping.ClipCoefficient(model.Parameters(), 0.5f);   // clipping active
                Assert.True(coefficient < 1f);
                if (ReferenceEquals(model, cpu)) norm = n; else deviceNorm = n;
                optimizer.LearningRate = 1e-2f * (step + 1);
                optimizer.Step(coefficient);
            }
            Close([norm], [deviceNorm], $"gradient norm at step {step + 1}");
        }
        foreach (var ((name, c), (_, g)) in cpu.NamedParameters().Zip(gpu.NamedParameters()))
            Close(c.ToArray(), g.ToArray(), $"{name} after 3 steps", atol: 1e-4, rtol: 1e-3);
        for (int i = 0; i < cpu.Parameters().Count(); i++)
        {
            var (cm, cv) = cpuOptimizer.Moments(i);
            var (gm, gv) = gpuOptimizer.Moments(i);
            Close(cm, gm, $"m of parameter {i}", atol: 1e-4, rtol: 1e-3);
            Close(cv, gv, $"v of parameter {i}", atol: 1e-6, rtol: 1e-3);
        }
    }

    [Fact]
    public void MomentsSetOnTheHostReachTheDevice()
    {
        var model = new TinyModel(new Generator(13));
        model.To(_device);
        var optimizer = new AdamW(model.Parameters());
        int count = model.Parameters().First().Count;
        var m = Enumerable.Range(0, count).Select(i => i * 0.5f).ToArray();
        var v = Enumerable.Range(0, count).Select(i => i * 0.25f).ToArray();
        optimizer.SetMoments(0, m, v);
        Array.Clear(optimizer.Moments(0).M);   // a copy: the device keeps its own
        Assert.Equal(m, optimizer.Moments(0).M);
        Assert.Equal(v, optimizer.Moments(0).V);
        Assert.Throws<ArgumentException>(() => optimizer.SetMoments(0, m[1..], v));
    }

    [Fact]
    public void GradientsFlowBackThroughACopyToTheDevice()
    {
        using var w = Tensor.Randn(new Generator(14), 4, 3);
        w.RequiresGrad = true;
        using var x = Tensor.Randn(new Generator(15), 5, 3).To(_device);
        using var y = Tensor.Linear(x, w.To(_device));
        using var loss = Tensor.CrossEntropy(y, [0, 1, 2, 3, 0]);
        loss.Backward();
        Assert.True(w.Grad!.Device.IsCpu);
        using var wc = w.Detach();
        wc.RequiresGrad = true;
        using var xc = x.To(Device.Cpu);
        using var expected = Tensor.CrossEntropy(Tensor.Linear(xc, wc), [0, 1, 2, 3, 0]);
        expected.Backward();
        Close(wc.Grad!.ToArray(), w.Grad.ToArray(), "dW");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AGptOnTheDeviceTrainsAsTheCpuOne(bool bias)
    {
        // GPT-2's layout through the library's own Gpt, moved with Module.To: fused attention from c_attn on the device,
        // the tied head; logits, loss, every gradient, then three clipped AdamW steps (GpuGptCheck's loop and tolerances).
        var config = new GptConfig { Layers = 2, Width = 32, Heads = 4, ContextLength = 16, VocabSize = 37, Bias = bias };
        var results = GpuGptCheck.CompareAutograd(_device, config, batch: 3, time: 16);
        int parameters = new Gpt(config, new Generator(1)).NamedParameters().Count();
        // Logits, loss and the gradients; then per step the norm and the parameters.
        Assert.Equal(2 + parameters + 3 * (1 + parameters), results.Count);
        var failed = results.Where(r => !r.Passed).ToList();
        Assert.True(failed.Count == 0, string.Join(Environment.NewLine, failed));
    }

    [Fact]
    public void AttentionWithKeyPaddingOnTheDeviceMatchesTheCpu()
    {
        const int b = 2, t = 7, heads = 2, hs = 8;
        using var qkvHost = Tensor.Randn(new Generator(31), b, t, 3 * heads * hs);
        var padding = new bool[b * t];
        padding[5] = padding[6] = padding[t + 2] = true;
        var options = new AttentionOptions { KeyPadding = padding };
        using var cpuQkv = qkvHost.Detach();
        cpuQkv.RequiresGrad = true;
        using var gpuQkv = qkvHost.To(_device);
        gpuQkv.RequiresGrad = true;
        using var weights = Tensor.Randn(new Generator(32), b, t, heads * hs);
        using var gpuWeights = weights.To(_device);
        using var cpuY = Tensor.PackedSelfAttention(cpuQkv, heads, options);
        using var gpuY = Tensor.PackedSelfAttention(gpuQkv, heads, options);
        Close(cpuY.ToArray(), gpuY.ToArray(), "output");
        // A loss that weighs the output elements differently: each output row scored against B·T random rows, then
        // cross-entropy with row r's target r.
        var rows = Enumerable.Range(0, b * t).ToArray();
        using var cpuLoss = Tensor.CrossEntropy(
            Tensor.Linear(cpuY.Reshape(b * t, heads * hs), weights.Reshape(b * t, heads * hs)), rows);
        using var gpuLoss = Tensor.CrossEntropy(
            Tensor.Linear(gpuY.Reshape(b * t, heads * hs), gpuWeights.Reshape(b * t, heads * hs)), rows);
        cpuLoss.Backward(); gpuLoss.Backward();
        Close(cpuQkv.Grad!.ToArray(), gpuQkv.Grad!.ToArray(), "dqkv");
        var refused = Assert.Throws<NotSupportedException>(() =>
            Tensor.PackedSelfAttention(gpuQkv, heads, new AttentionOptions { Causal = true, Window = 3 }));
        Assert.Contains("a sliding window runs on the CPU only", refused.Message);
    }

    [Fact]
    public void StepsAfterTheSecondTakeAllTheirDeviceMemoryFromTheCache()
    {
        using var device = GpuDevice.CpuSimulator();
        var config = new GptConfig { Layers = 1, Width = 16, Heads = 2, ContextLength = 8, VocabSize = 11 };
        var model = new Gpt(config, new Generator(41));
        model.To(device);
        var optimizer = new AdamW(model.ParameterGroups());
        var (ids, targets) = Batch(new Generator(42), 2, 8, config.VocabSize);
        var backend = (GpuBackend)device.Backend;
        long Step()
        {
            using (TensorScope.Begin())
            {
                optimizer.ZeroGrad();
                var loss = model.Loss(model.Forward(ids, 2, 8), targets);
                loss.Backward();
                optimizer.Step();
            }
            return backend.DriverAllocations;
        }
        // The first step's gradients keep blocks its activations had freed, so the second asks the driver for a few
        // more; from then on the cache serves every step.
        long first = Step(), second = Step(), third = Step(), fourth = Step();
        Assert.True(first > 0 && second >= first);
        Assert.Equal((second, second), (third, fourth));
    }

    [Fact]
    public void CheckpointsAreTheSameFilesOnBothDevices()
    {
        var config = new GptConfig { Layers = 1, Width = 16, Heads = 2, ContextLength = 8, VocabSize = 11 };
        var dir = Directory.CreateTempSubdirectory("attn-device-").FullName;
        try
        {
            var onDevice = new Gpt(config, new Generator(51));
            onDevice.To(_device);
            string fromDevice = Path.Combine(dir, "device.safetensors"), fromCpu = Path.Combine(dir, "cpu.safetensors");
            AttentionSharp.IO.StateDictFile.Save(onDevice, fromDevice);
            AttentionSharp.IO.StateDictFile.Save(new Gpt(config, new Generator(51)), fromCpu);
            Assert.Equal(File.ReadAllBytes(fromCpu), File.ReadAllBytes(fromDevice));

            var other = new Gpt(config, new Generator(52));
            other.To(_device);
            AttentionSharp.IO.StateDictFile.Load(other, fromCpu);   // a CPU checkpoint into a model on the device
            foreach (var ((name, a), (_, b)) in onDevice.NamedParameters().Zip(other.NamedParameters()))
            {
                Assert.Same(_device, b.Device);
                Assert.True(a.ToArray().SequenceEqual(b.ToArray()), name);
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData(PositionalEncodingKind.Learned, 0f)]
    [InlineData(PositionalEncodingKind.Rotary, 0.1f)]   // as attn train --task mlm's preset
    public void ABertOnTheDeviceComputesTheCpusMaskedWordLossAndGradients(PositionalEncodingKind positions, float dropout)
    {
        // A post-LN BERT with key padding: its Q, K and V weights joined on the device (Cat), attention with padding,
        // GELU's erf form, the tied masked-word head, dropout with the CPU's masks.
        var config = new BertConfig
        {
            VocabSize = 29, MaxPositions = 9, Layers = 2, Heads = 2, Width = 16, IntermediateSize = 24, Dropout = dropout,
            AttentionDropout = dropout, PadTokenId = 0, PositionalEncoding = positions,
        };
        const int batch = 2, time = 9;
        var cpu = new Bert(config, new Generator(61));
        var gpu = new Bert(config, new Generator(61));
        gpu.To(_device);
        var rng = new Generator(62);
        var ids = Enumerable.Range(0, batch * time).Select(_ => 1 + rng.NextInt(config.VocabSize - 1)).ToArray();
        ids[7] = ids[8] = ids[time + 8] = 0;   // padding at the ends of the rows
        var segments = Enumerable.Range(0, batch * time).Select(i => i % time < 4 ? 0 : 1).ToArray();
        var labels = Enumerable.Repeat(Bert.IgnoreIndex, batch * time).ToArray();
        labels[1] = 5; labels[4] = 17; labels[time + 2] = 3; labels[time + 6] = 28;

        using var cpuLogits = cpu.MlmLogits(cpu.Forward(ids, batch, time, segments));
        using var gpuLogits = gpu.MlmLogits(gpu.Forward(ids, batch, time, segments));
        Close(cpuLogits.ToArray(), gpuLogits.ToArray(), "logits");
        using var cpuLoss = cpu.MlmLoss(cpuLogits, labels);
        using var gpuLoss = gpu.MlmLoss(gpuLogits, labels);
        Close([cpuLoss.Item()], [gpuLoss.Item()], "loss");
        cpuLoss.Backward();
        gpuLoss.Backward();
        CloseGradients(cpu, gpu);
    }

    [Fact]
    public void StridedViewsOnTheDeviceCopyAndPassGradientsAsOnTheCpu()
    {
        // Permute, narrow and select give strided views; a product reads them dense (Contiguous gathers them on the
        // device) and their gradients are scattered back into the source's places.
        using var host = Tensor.Randn(new Generator(71), 3, 4, 5);
        using var weight = Tensor.Randn(new Generator(72), 6, 3);
        Tensor Loss(Tensor x, Tensor w)
        {
            var a = x.Permute(2, 1, 0).Narrow(1, 1, 2);                  // (5, 2, 3), strided
            var b = x.Select(1, 2);                                      // (3, 5), strided
            var logits = Tensor.Cat([Tensor.Linear(a.Reshape(10, 3), w), Tensor.Linear(b.Transpose(0, 1), w)], 0);
            return Tensor.CrossEntropy(logits, Enumerable.Range(0, 15).Select(i => i % 6).ToArray());   // (15, 6)
        }
        using var cpuX = host.Detach(); cpuX.RequiresGrad = true;
        using var cpuW = weight.Detach(); cpuW.RequiresGrad = true;
        using var gpuX = host.To(_device); gpuX.RequiresGrad = true;
        using var gpuW = weight.To(_device); gpuW.RequiresGrad = true;
        using var view = gpuX.Permute(2, 0, 1);
        Assert.Equal(host.Permute(2, 0, 1).ToArray(), view.ToArray());
        using var cpuLoss = Loss(cpuX, cpuW);
        using var gpuLoss = Loss(gpuX, gpuW);
        Close([cpuLoss.Item()], [gpuLoss.Item()], "loss");
        cpuLoss.Backward(); gpuLoss.Backward();
        Close(cpuX.Grad!.ToArray(), gpuX.Grad!.ToArray(), "dx");
        Close(cpuW.Grad!.ToArray(), gpuW.Grad!.ToArray(), "dW");
    }

    [Fact]
    public void AVisionTransformerOnTheDeviceComputesTheCpusLossAndGradients()
    {
        // Patches cut on the device (a gathered permutation of the images), the class token joined with Cat, learned
        // positions, pre-LN encoder layers, the class token's row selected for the head.
        var config = new VisionTransformerConfig
        {
            ImageSize = 8, PatchSize = 4, Channels = 1, Classes = 5, Layers = 2, Heads = 2, Width = 16, MlpWidth = 24,
        };
        var cpu = new VisionTransformer(config, new Generator(81));
        var gpu = new VisionTransformer(config, new Generator(81));
        gpu.To(_device);
        using var images = Tensor.Randn(new Generator(82), 3, 1, 8, 8);
        using var onDevice = images.To(_device);
        int[] labels = [0, 3, 4];
        using var cpuLogits = cpu.Forward(images);
        using var gpuLogits = gpu.Forward(onDevice);
        Close(cpuLogits.ToArray(), gpuLogits.ToArray(), "logits");
        using var cpuLoss = Tensor.CrossEntropy(cpuLogits, labels);
        using var gpuLoss = Tensor.CrossEntropy(gpuLogits, labels);
        cpuLoss.Backward(); gpuLoss.Backward();
        CloseGradients(cpu, gpu);
    }

    [Fact]
    public void DropoutOnTheDeviceDropsWhatTheCpuDrops()
    {
        using var host = Tensor.Randn(new Generator(91), 6, 50);
        using var cpuX = host.Detach(); cpuX.RequiresGrad = true;
        using var gpuX = host.To(_device); gpuX.RequiresGrad = true;
        var cpuRng = new Generator(92) { FirstRow = 3 };   // rows 3… of a larger batch, as a data-parallel rank draws
        var gpuRng = new Generator(92) { FirstRow = 3 };
        using var cpuY = cpuX.Dropout(0.4f, training: true, cpuRng);
        using var gpuY = gpuX.Dropout(0.4f, training: true, gpuRng);
        var (expected, actual) = (cpuY.ToArray(), gpuY.ToArray());
        Assert.Equal(expected.Select(v => v == 0), actual.Select(v => v == 0));   // the same elements dropped
        Close(expected, actual, "y");
        Assert.Equal(cpuRng.NextUInt64(), gpuRng.NextUInt64());                 // one draw each
        using var weights = Tensor.Randn(new Generator(93), 6, 50);
        using var cpuLoss = Tensor.CrossEntropy(Tensor.Linear(cpuY, weights), [0, 1, 2, 3, 4, 5]);
        using var gpuLoss = Tensor.CrossEntropy(Tensor.Linear(gpuY, weights.To(_device)), [0, 1, 2, 3, 4, 5]);
        cpuLoss.Backward(); gpuLoss.Backward();
        Close(cpuX.Grad!.ToArray(), gpuX.Grad!.ToArray(), "dx");
    }

    [Theory]
    [InlineData(PositionalEncodingKind.Learned)]
    [InlineData(PositionalEncodingKind.Rotary)]
    [InlineData(PositionalEncodingKind.Sinusoidal)]
    [InlineData(PositionalEncodingKind.None)]
    public void AGptWithDropoutOnTheDeviceComputesTheCpusLossAndGradients(PositionalEncodingKind positions)
    {
        // Dropout on the embeddings, the attention weights and both residual branches: the CPU's masks on the device;
        // rotary positions turn the query and key heads inside the fused projection, sinusoidal ones are added.
        var config = new GptConfig
        {
            Layers = 2, Width = 32, Heads = 4, ContextLength = 16, VocabSize = 37, Dropout = 0.2f,
            PositionalEncoding = positions,
        };
        const int batch = 2, time = 16;
        var cpu = new Gpt(config, new Generator(95));
        var gpu = new Gpt(config, new Generator(95));
        gpu.To(_device);
        var (ids, targets) = Batch(new Generator(96), batch, time, config.VocabSize);
        using var cpuLogits = cpu.Forward(ids, batch, time);
        using var gpuLogits = gpu.Forward(ids, batch, time);
        Close(cpuLogits.ToArray(), gpuLogits.ToArray(), "logits");
        using var cpuLoss = cpu.Loss(cpuLogits, targets);
        using var gpuLoss = gpu.Loss(gpuLogits, targets);
        cpuLoss.Backward(); gpuLoss.Backward();
        CloseGradients(cpu, gpu);
        Assert.Equal(cpu.DropoutGenerator.NextUInt64(), gpu.DropoutGenerator.NextUInt64());
    }

    [Fact]
    public void AnomalyModeNamesTheOperationWhoseDeviceOutputIsNotFinite()
    {
        using var x = Tensor.FromArray([1f, float.NaN, 2f, 3f], 2, 2).To(_device);
        using var w = Tensor.Randn(new Generator(97), 3, 2).To(_device);
        w.RequiresGrad = true;
        using var anomaly = AttentionSharp.Autograd.GradMode.DetectAnomaly();
        var e = Assert.Throws<AttentionSharp.Autograd.NonFiniteException>(() => Tensor.Linear(x, w));
        Assert.Equal("Linear", e.Operation);
    }
}
