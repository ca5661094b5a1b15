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
}
