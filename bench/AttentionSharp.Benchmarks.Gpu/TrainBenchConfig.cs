using AttentionSharp.Models;

namespace AttentionSharp.Benchmarks;

/// <summary>One model shape to train: L, NH, C, T, B, V.</summary>
/// <remarks>
/// FLOPs per step follow PaLM's model-FLOPs count (as nanoGPT's estimate_mfu): 6·N per token for the weights, N
/// counting every parameter but the position table (the tied wte counts once, as the LM head), plus 12·L·C·T per token
/// for attention (QKᵀ and A·V, forward and backward, without halving for the causal mask). The CPU and the GPU training
/// benchmarks both divide it by the step time and their peak to give MFU.
/// </remarks>
public sealed record TrainBenchConfig(string Name, int Layers, int Heads, int Width, int Context, int Batch, int Vocab)
{
    public static IReadOnlyList<TrainBenchConfig> All { get; } =
    [
        new("tiny", 2, 2, 32, 16, 2, 37),
        new("baby", 4, 4, 128, 64, 12, 65),
        // The main job's default model (attn train): 4 layers, width 128, context 128, batch 32, and its vocabulary of
        // 2,048 byte-level BPE ids.
        new("main", 4, 4, 128, 128, 32, 2048),
        new("char-small", 6, 6, 384, 256, 64, 65),
        new("gpt2-124M", 12, 12, 768, 64, 4, 50257),
        new("gpt2-124M-1024", 12, 12, 768, 1024, 16, 50257),
    ];

    /// <summary>The CPU benchmark's default: the shapes two cores train in seconds per step.</summary>
    public static IReadOnlyList<string> CpuDefault { get; } = ["baby", "main", "char-small", "gpt2-124M"];

    /// <summary>
    /// The GPU benchmark's default: the CPU's, and GPT-2 124M at B = 16, T = 1024 (tiny is for checking the command).
    /// </summary>
    public static IReadOnlyList<string> GpuDefault { get; } = ["baby", "main", "char-small", "gpt2-124M", "gpt2-124M-1024"];

    public GptConfig Gpt => new() { VocabSize = Vocab, ContextLength = Context, Layers = Layers, Heads = Heads, Width = Width };

    public int TokensPerStep => Batch * Context;

    /// <summary>Model FLOPs of one step: (6·N + 12·L·C·T) per token, N the parameters without the position table.</summary>
    public double StepFlops(long parametersWithoutWpe) =>
        (6.0 * parametersWithoutWpe + 12.0 * Layers * Width * Context) * TokensPerStep;

    /// <summary>The configuration named <paramref name="name"/>, or an error naming the ones there are.</summary>
    public static TrainBenchConfig Named(string name) => All.FirstOrDefault(c => c.Name == name)
        ?? throw new ArgumentException(
            $"Unknown configuration '{name}'; expected one of {string.Join(", ", All.Select(c => c.Name))}.");
}
