using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Cli.Tasks;

/// <summary>
/// `attn train --task pos`: part-of-speech tagging of the Brown corpus with the 12 universal tags, by a BERT encoder
/// (--model transformer, from scratch or from an mlm checkpoint with --init) or a bidirectional recurrent tagger
/// (--model lstm, gru or rnn). Both read each word's id and its spelling (suffixes and shape), which is what tags words
/// never seen in training. Reports token accuracy overall and on unseen words: on validation while training, on test at
/// the end and in `attn eval`; `attn predict` tags a sentence.
/// </summary>
static class PosTask
{
    public static int Evaluate(string checkpointDir, string? data, string? jsonPath, string? cache)
    {
        if (data is not null && !Directory.Exists(data))
            throw new DataSourceException($"--data for a pos checkpoint is a directory of tagged text in the Brown corpus's NLTK layout; '{{data}}' is not a directory.");
        var (network, vocabulary) = TaggerNetwork.Load(checkpointDir);
        var split = (data is null ? BrownCorpus.Fetch(DataCache.Resolve(cache), Console.Out) : BrownCorpus.Load(data)).Split();
        var test = TaggingDataset.Build(split.Test, vocabulary, TaggingDataset.WordSet(split.Train), TaggerNetwork.MaxLength);
        var (loss, accuracy) = TaggerEvaluation.Evaluate(network.Model, network.Logits, test.Batches(32));
        Console.WriteLine($"{data ?? "The Brown corpus"}, test split: {test.WordCount:N0} words, {accuracy.UnseenTotal:N0} of them unseen in training; model {network.Description}.");
        Console.WriteLine($"loss {loss:F4}, {TaggingTask.Describe(accuracy)}");
        if (jsonPath is not null)
            File.WriteAllText(jsonPath, new JsonObject { ["accuracy"] = accuracy.Accuracy, ["unseen_accuracy"] = accuracy.UnseenAccuracy }
                .ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>`attn predict`: tags <paramref name="input"/>, split into words as the Brown corpus is, and prints word/TAG.</summary>
    public static int Predict(string checkpointDir, string input, string? cache)
    {
        var (network, vocabulary) = TaggerNetwork.Load(checkpointDir);
        var words = BrownWords.Tokenize(input);
        if (words.Count == 0) throw new ArgumentException("--input holds no words to tag.");
        var tags = new List<string>();
        for (int start = 0; start < words.Count; start += TaggerNetwork.MaxLength)
        {
            var piece = words.Skip(start).Take(TaggerNetwork.MaxLength).ToArray();
            var batch = TaggingDataset.FromSentences([TaggingDataset.Untagged(piece, vocabulary)]).Batches(1).Single();
            network.Model.Eval();
            using (Autograd.GradMode.NoGrad())
            using (TensorScope.Begin())
            {
                var logits = network.Logits(batch).ToArray();               // (1, T, K)
                for (int t = 0; t < piece.Length; t++)
                {
                    var row = logits.AsSpan(t * UniversalTags.Count, UniversalTags.Count);
                    tags.Add(UniversalTags.Names[System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row)]);
                }
            }
        }
        Console.WriteLine(string.Join(" ", words.Select((w, i) => $"{w}/{tags[i]}")));
        return 0;
    }

    /// <summary>`attn viz`: the BERT tagger's self-attention over the words of a sentence, each labelled with its predicted tag.</summary>
    public static Visualization.AttentionView Visualize(string checkpointDir, VizInput input, string? cache)
    {
        if (input.Text is not { } text) throw new ArgumentException($"Checkpoint '{checkpointDir}' is a POS tagger: it reads --text, not --image.");
        var (network, vocabulary) = TaggerNetwork.Load(checkpointDir);
        if (network.Model is not AttentionSharp.Models.Bert)
            throw new ArgumentException($"Checkpoint '{checkpointDir}' is a recurrent tagger ({network.Description}): it has no attention layers to draw. Train one with --model transformer.");
        var words = BrownWords.Tokenize(text);
        if (words.Count == 0) throw new ArgumentException("--text holds no words.");
        if (words.Count > TaggerNetwork.MaxLength) throw new ArgumentException($"The sentence has {words.Count} words but the tagger reads at most {TaggerNetwork.MaxLength}; give a shorter one.");
        var batch = TaggingDataset.FromSentences([TaggingDataset.Untagged([.. words], vocabulary)]).Batches(1).Single();
        network.Model.Eval();
        using var probe = Visualization.AttentionProbe.Start();
        float[] logits;
        using (Autograd.GradMode.NoGrad())
        using (TensorScope.Begin()) logits = network.Logits(batch).ToArray();
        var labels = words.Select((w, t) => $"{w}/{UniversalTags.Names[System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits.AsSpan(t * UniversalTags.Count, UniversalTags.Count))]}").ToList();
        return Visualization.AttentionView.SelfAttention($"BERT tagger attention on \"{VizCommand.Shorten(text)}\"", probe.Records, labels);
    }
}
