using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Cli.Tasks;

/// <summary>
/// `attn train --task mlm`: masked-word pre-training of the BERT encoder on the Brown training sentences (BERT's
/// corruption of 15 % of the words), with the pos task's vocabulary, so `attn train --task pos --init RUN` can start the
/// tagger from it. `attn eval` reports the loss and the accuracy of recovering the masked words of the test split.
/// </summary>
static class MlmTask
{
    public const string Name = "mlm";

    public static int Evaluate(string checkpointDir, string? data, string? jsonPath, string? cache)
    {
        if (data is not null) throw new ArgumentException("An mlm checkpoint is evaluated on the Brown corpus test split; --data is not used.");
        var (model, vocabulary) = Load(checkpointDir);
        var split = BrownCorpus.Fetch(DataCache.Resolve(cache), Console.Out).Split();
        var test = TaggingDataset.Build(split.Test, vocabulary, TaggingDataset.WordSet(split.Train), TaggerNetwork.MaxLength);
        var rng = new Generator(TaggingTask.EvalMaskSeed);
        var (loss, accuracy) = TaggerEvaluation.Evaluate(model, b => TaggingTask.MlmLogits(model, b), test.Batches(32).Select(b => MaskedWords.Mask(b, vocabulary.Count, rng)).ToList());
        Console.WriteLine($"The Brown corpus test split: {test.WordCount:N0} words, {accuracy.Total:N0} of them masked (15%, fixed draws).");
        Console.WriteLine($"masked-word loss {loss:F4} (perplexity {Math.Exp(loss):F1}), {TaggingTask.Describe(accuracy)}");
        if (jsonPath is not null)
            File.WriteAllText(jsonPath, new JsonObject { ["loss"] = loss, ["accuracy"] = accuracy.Accuracy }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>The BERT and the word vocabulary of an mlm checkpoint (or run directory).</summary>
    public static (Bert Model, WordVocabulary Vocabulary) Load(string checkpointDir)
    {
        var contents = Checkpoint.ReadContents(checkpointDir);
        var network = contents.Config["network"] as JsonObject ?? throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' has no \"network\" object.");
        var model = new Bert(BertConfig.FromJson(network), new Generator(0));
        Checkpoint.LoadWeights(checkpointDir, model);
        return (model, WordVocabulary.FromJson(contents.TokenizerJson, $"the vocabulary of checkpoint '{checkpointDir}'"));
    }
}
