using AttentionSharp.Data;
using AttentionSharp.Models;

namespace AttentionSharp.Training;

/// <summary>Decodes grapheme-to-phoneme words and scores the pronunciations (phoneme and word error rates).</summary>
public static class G2pScoring
{
    /// <summary>
    /// Pronounces every word of <paramref name="words"/> and scores the predictions: greedy decoding in batches of words of
    /// one length when <paramref name="beamWidth"/> is 1, else beam search over the same batches (the best hypothesis by score).
    /// Outputs are cut at <paramref name="maxLength"/> phonemes.
    /// </summary>
    public static G2pErrorRates Score(ISequenceToSequence model, G2pDataset words, int beamWidth, int maxLength, double lengthPenalty = 0, int batchSize = 128)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(words);
        if (beamWidth <= 0) throw new ArgumentOutOfRangeException(nameof(beamWidth), beamWidth, "The beam width must be positive.");
        var rates = new G2pErrorRates();
        foreach (var group in words.WordBatches(batchSize))
        {
            int length = group[0].Source.Length;
            if (beamWidth == 1)
            {
                var result = model.Greedy(group.SelectMany(w => w.Source).ToArray(), group.Count, length, maxLength);
                for (int i = 0; i < group.Count; i++) rates.Add<int>(WithoutEos(result.Tokens[i], model.EosId), group[i].References);
            }
            else
            {
                var beams = model.BeamSearchBatch(group.SelectMany(w => w.Source).ToArray(), group.Count, length, beamWidth, maxLength, lengthPenalty);
                for (int i = 0; i < group.Count; i++) rates.Add<int>(WithoutEos(beams[i][0].Tokens, model.EosId), group[i].References);
            }
        }
        return rates;
    }

    static int[] WithoutEos(int[] tokens, int eos) => tokens.Length > 0 && tokens[^1] == eos ? tokens[..^1] : tokens;
}
