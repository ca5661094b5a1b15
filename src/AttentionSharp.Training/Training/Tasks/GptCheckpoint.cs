using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Models;

namespace AttentionSharp.Training.Tasks;

/// <summary>A GPT checkpoint (ours, or imported from a Hugging Face folder) as a model and its tokenizer.</summary>
public static class GptCheckpoint
{
    /// <summary>Rebuilds the model and tokenizer of a checkpoint or run directory, weights loaded.</summary>
    public static (Gpt Model, ITokenizer Tokenizer) Load(string dir)
    {
        var contents = Checkpoint.ReadContents(dir);
        GptConfig config;
        try { config = GptConfig.FromJson(contents.Config); }
        catch (ArgumentException e)
        {
            throw new CheckpointException($"Checkpoint '{dir}' is not a GPT checkpoint: {e.Message}");
        }
        var tokenizer = ITokenizer.FromJson(contents.TokenizerJson, $"the tokenizer of checkpoint '{dir}'");
        if (tokenizer.VocabSize != config.VocabSize)
            throw new CheckpointException($"Checkpoint '{dir}' is inconsistent: its tokenizer has {tokenizer.VocabSize} ids "
                                          + $"but the model expects {config.VocabSize}.");
        var model = new Gpt(config, new Generator(0));
        Checkpoint.LoadWeights(dir, model);
        return (model, tokenizer);
    }

    /// <summary>
    /// <see cref="Load"/> for inference (sampling, scoring, serving): an int8 checkpoint's model keeps only its int8
    /// weights (<see cref="Gpt.ReleaseFloat32Weights"/>), a quarter of the memory its fp32 copy would take; the memory
    /// loading used is given back.
    /// </summary>
    public static (Gpt Model, ITokenizer Tokenizer) LoadForInference(string dir)
    {
        var (model, tokenizer) = Load(dir);
        if (model.IsQuantized) model.ReleaseFloat32Weights();
        // Reading the file left its tensors (and the constructor's random initial weights) in the pool for reuse; an
        // inference process never needs that much again, so it goes back to the system.
        // An aggressive collection also returns the freed pages to the system: a served int8 GPT-2-shaped model then
        // holds about 150 MB resident rather than a gigabyte (docs/quantization.md).
        StoragePool.Clear();
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        return (model, tokenizer);
    }
}
