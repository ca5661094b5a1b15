using System.Diagnostics;
using AttentionSharp.Data;
using AttentionSharp.Models;
using AttentionSharp.Training;

namespace AttentionSharp.Experiments;

/// <summary>Word error of one model on the test words of one length range.</summary>
public sealed record LengthBucketResult(string Lengths, int Words, double WordErrorRate, double PhonemeErrorRate);

/// <summary>One sequence-to-sequence model trained on G2P, with its error overall and by word length.</summary>
public sealed record BottleneckResult(string Model, long Parameters, int Steps, double Seconds, double WordErrorRate, double PhonemeErrorRate,
    IReadOnlyList<LengthBucketResult> ByLength);

/// <summary>
/// The fixed-size bottleneck, measured: an LSTM encoder–decoder whose decoder sees only the encoder's final state, the
/// same with (Luong) attention over every encoder state, and the Transformer encoder–decoder, trained for the same time
/// on grapheme-to-phoneme (CMUdict), then scored greedily on test words by length. Without attention the whole word must
/// pass through one vector, so long words should suffer most.
/// </summary>
public static class Bottleneck
{
    /// <summary>Word-length ranges (letters) of the report.</summary>
    public static readonly (int Min, int Max)[] Buckets = [(1, 4), (5, 6), (7, 8), (9, 10), (11, int.MaxValue)];

    public static string BucketName((int Min, int Max) b) => b.Max == int.MaxValue ? $"{b.Min}+" : $"{b.Min}–{b.Max}";

    public static List<BottleneckResult> Run(IReadOnlyList<CmuEntry> train, IReadOnlyList<CmuEntry> test, G2pVocabulary vocabulary,
        double secondsPerModel, ulong seed, Action<string>? log = null, CancellationToken cancel = default)
    {
        if (secondsPerModel <= 0) throw new ArgumentException($"The training time per model must be positive; got {secondsPerModel}.");
        var trainSet = new G2pDataset(train, vocabulary);
        var results = new List<BottleneckResult>();
        foreach (var (name, build) in Models(vocabulary))
        {
            cancel.ThrowIfCancellationRequested();
            var rng = new Generator(seed);
            var (model, module) = build(rng);
            var options = new TrainOptions
            {
                Steps = 1_000_000, Minutes = secondsPerModel / 60, Batch = 64, LearningRate = name == "Transformer" ? 1e-3f : 2e-3f,
                WarmupSteps = 200, WeightDecay = 0.01f, EvalInterval = 0, Seed = seed,
            }.Validate();
            var batches = new Training.Tasks.Seq2SeqBatches(model, trainSet, options.Batch, 1, seed ^ 0x5DEECE66DUL);
            var trainer = new Trainer(module, module.Parameters().Select(p => (p, p.Rank >= 2)), batches, options);
            var clock = Stopwatch.StartNew();
            trainer.Run(_ => { }, _ => { }, cancel);
            double seconds = clock.Elapsed.TotalSeconds;
            module.Eval();
            int maxLength = test.Max(e => e.Word.Length) + 8;
            var all = G2pScoring.Score(model, new G2pDataset(test, vocabulary), beamWidth: 1, maxLength);
            var byLength = Buckets.Select(b =>
            {
                var words = test.Where(e => e.Word.Length >= b.Min && e.Word.Length <= b.Max).ToList();
                if (words.Count == 0) return new LengthBucketResult(BucketName(b), 0, double.NaN, double.NaN);
                var rates = G2pScoring.Score(model, new G2pDataset(words, vocabulary), beamWidth: 1, maxLength);
                return new LengthBucketResult(BucketName(b), words.Count, rates.WordErrorRate, rates.PhonemeErrorRate);
            }).ToList();
            results.Add(new BottleneckResult(name, module.ParameterCount(), trainer.Step, seconds, all.WordErrorRate, all.PhonemeErrorRate, byLength));
            log?.Invoke($"bottleneck {name,-22} {trainer.Step} steps in {seconds:F0} s: WER {all.WordErrorRate:P1}, PER {all.PhonemeErrorRate:P1}; by length " +
                        string.Join(", ", byLength.Select(r => $"{r.Lengths}: {r.WordErrorRate:P0}")));
        }
        return results;
    }

    /// <summary>The three models, each about a million parameters.</summary>
    static IEnumerable<(string Name, Func<Generator, (ISequenceToSequence, Nn.Module)> Build)> Models(G2pVocabulary v)
    {
        RecurrentSeq2SeqConfig Lstm(Seq2SeqAttention attention) => new()
        {
            SourceVocabSize = v.SourceSize, TargetVocabSize = v.TargetSize, Cell = Kernels.RecurrentCell.Lstm, EmbeddingSize = 128, HiddenSize = 256,
            Layers = 2, BidirectionalEncoder = true, Attention = attention, Dropout = 0f,
            PadId = G2pVocabulary.PadId, BosId = G2pVocabulary.BosId, EosId = G2pVocabulary.EosId,
        };
        yield return ("LSTM, no attention", rng => { var m = new RecurrentSeq2Seq(Lstm(Seq2SeqAttention.None), rng); return (m, m); });
        yield return ("LSTM + attention", rng => { var m = new RecurrentSeq2Seq(Lstm(Seq2SeqAttention.General), rng); return (m, m); });
#pragma warning disable format
        yield return ("Transformer", rng =>
        {
            var m = new EncoderDecoder(new EncoderDecoderConfig
            {
                SourceVocabSize = v.SourceSize, TargetVocabSize = v.TargetSize, ShareEmbeddings = false, TieOutput = true,
                EncoderLayers = 3, DecoderLayers = 3, Width = 128, Heads = 4, FeedForwardWidth = 512, Dropout = 0f, NormFirst = true,
                LabelSmoothing = 0.1f, PadId = G2pVocabulary.PadId, BosId = G2pVocabulary.BosId, EosId = G2pVocabulary.EosId,
            }, rng);
            return (m, m);
        });
#pragma warning restore format
    }
}
