using AttentionSharp.Autograd;
using AttentionSharp.Kernels;
using AttentionSharp.Nn;
using AdamW = AttentionSharp.Training.AdamW;
using Embedding = AttentionSharp.Nn.Embedding;

namespace AttentionSharp.Gpu;

/// <summary>
/// <see cref="GpuRecurrentClassifier"/> against the CPU engine from the same weights and batches, as
/// <see cref="GpuGptCheck"/> checks the GPT: the CPU side is the modules' own forward pass (embedding, the recurrent
/// stack, the head on the last step, cross-entropy — <c>attn compare</c>'s recurrent models) and backward. Compared: the
/// logits and loss, every parameter's gradient by name, then training steps as the comparison trains (the clip
/// coefficient folded into AdamW, decay on rank ≥ 2) — the gradient norm and every parameter after each step. The
/// tolerances are <see cref="GpuGptCheck"/>'s.
/// </summary>
public static class GpuRecurrentCheck
{
    /// <summary>
    /// Builds the CPU modules for <paramref name="cell"/> (seeded), uploads them, and compares; one comparison per tensor,
    /// in order: logits, loss, each gradient, then per step its gradient norm and each parameter.
    /// </summary>
    public static IReadOnlyList<GpuComparison> Compare(GpuDevice device, RecurrentCell cell, int vocab, int embedding,
        int hidden, int layers, int classes, int batch, int time, int steps = 2, ulong seed = 4242)
    {
        ArgumentNullException.ThrowIfNull(device);
        var rng = new Generator(seed);
        var emb = new Embedding(vocab, embedding, rng);
        var config = new RecurrentConfig { InputSize = embedding, HiddenSize = hidden, Layers = layers, BatchFirst = true };
        RecurrentBase recurrent = cell switch
        {
            RecurrentCell.Lstm => new Lstm(config, rng),
            RecurrentCell.Gru => new Gru(config, rng),
            _ => new Rnn(config, rng),
        };
        var head = new Linear(hidden, classes, rng);
        using var gpu = GpuRecurrentClassifier.From(device, emb, recurrent, head);
        var named = GpuRecurrentClassifier.NamedParameters(emb, recurrent, head).ToList();
        var optimizer = new AdamW(named.Select(p => (p.Parameter, p.Parameter.Rank >= 2)), 0f, weightDecay: 0.01f);
        var data = new Generator(seed + 1);
        string where = $"{cell} L{layers} {device.Kind}/{device.Shapes}";
        return GpuGptCheck.CompareSteps(gpu, optimizer, named, batch, time, steps, where,
            () =>
            {
                var ids = new int[batch * time];
                var labels = new int[batch];
                for (int i = 0; i < ids.Length; i++) ids[i] = data.NextInt(vocab);
                for (int i = 0; i < labels.Length; i++) labels[i] = data.NextInt(classes);
                return (ids, labels);
            },
            ids =>
            {
                var states = recurrent.ForwardSequence(emb.Forward(ids, batch, time));   // (B, T, H)
                return head.Forward(states.Select(1, time - 1));
            },
            (l, labels) => Tensor.CrossEntropy(l, labels));
    }
}
