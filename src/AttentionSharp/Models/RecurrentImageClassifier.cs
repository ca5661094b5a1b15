// Source: the row-by-row sequential MNIST baseline (Le, Jaitly and Hinton, "A Simple Way to Initialize Recurrent
// Networks of Rectified Linear Units", 2015, §4.1, here with its 28 rows as steps rather than 784 pixels).
using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>
/// A recurrent image classifier, the baseline beside the Vision Transformer: the image is read row by row (H steps of
/// Ch·W values) by L (bi)directional RNN, LSTM or GRU layers; the mean of the last layer's states over all rows is
/// classified by a linear layer. Letters: B batch, Ch channels, H = W side, D directions, Hd hidden units.
/// </summary>
/// <remarks>Parameter names: {rnn|lstm|gru}.… as torch.nn's, head.{weight, bias}.</remarks>
public sealed class RecurrentImageClassifier : ImageClassifier
{
    readonly Generator _dropoutRng;

    public RecurrentImageClassifier(RecurrentImageClassifierConfig config, Generator rng)
    {
        Config = config.Validate();
        _dropoutRng = RegisterGenerator("dropout", new Generator(rng.NextUInt64()));
        Recurrent = RegisterModule(config.Cell, RecurrentBase.Create(config.Cell, new RecurrentConfig
        {
            InputSize = config.Channels * config.ImageSize, HiddenSize = config.HiddenSize, Layers = config.Layers,
            Bidirectional = config.Bidirectional, BatchFirst = true, Dropout = config.Dropout,
        }, rng, _dropoutRng));
        Head = RegisterModule("head", new Linear(config.Directions * config.HiddenSize, config.Classes, rng));
    }

    public RecurrentImageClassifierConfig Config { get; }
    public override int Channels => Config.Channels;
    public override int ImageSize => Config.ImageSize;
    public override int Classes => Config.Classes;

    /// <summary>The recurrent stack over the rows.</summary>
    public RecurrentBase Recurrent { get; }

    /// <summary>The classifier on the mean state: (Classes, D·Hd).</summary>
    public Linear Head { get; }

    /// <summary>Images (B, Ch, H, W) → class logits (B, Classes).</summary>
    public override Tensor Forward(Tensor images)
    {
        CheckImages(images);
        int b = images.Size(0), side = ImageSize;
        var rows = images.Permute(0, 2, 1, 3).Reshape(b, side, Channels * side);   // (B, H, Ch·W): one step per row
        var states = Recurrent.ForwardSequence(rows);                                // (B, H, D·Hd)
        var pooled = states.Mean(1);                                                 // (B, D·Hd): the mean over rows
        return Head.Forward(pooled.Dropout(Config.Dropout, Training, _dropoutRng));  // (B, Classes)
    }
}
