namespace AttentionSharp.Nn;

/// <summary>The shape of a stack of recurrent layers (<see cref="Rnn"/>, <see cref="Lstm"/>, <see cref="Gru"/>), as torch.nn.RNN's arguments.</summary>
public sealed record RecurrentConfig
{
    /// <summary>I (input_size): features of each input step.</summary>
    public int InputSize { get; init; } = 32;

    /// <summary>H (hidden_size): units of each layer and direction.</summary>
    public int HiddenSize { get; init; } = 64;

    /// <summary>L (num_layers): layers stacked; layer l &gt; 0 reads the D·H outputs of layer l − 1.</summary>
    public int Layers { get; init; } = 1;

    /// <summary>Whether each layer has the biases b_ih and b_hh (PyTorch: yes).</summary>
    public bool Bias { get; init; } = true;

    /// <summary>
    /// True: inputs and outputs are (B, T, ·), the library's layout everywhere — PyTorch's default is false (T, B, ·),
    /// so set it to false for that layout. The initial and final states are (L·D, B, H) either way, as in PyTorch.
    /// </summary>
    public bool BatchFirst { get; init; } = true;

    /// <summary>D = 2 when true: each layer also reads the sequence backwards and concatenates both directions' outputs.</summary>
    public bool Bidirectional { get; init; }

    /// <summary>Dropout probability on the outputs of every layer but the last, during training (PyTorch's dropout).</summary>
    public float Dropout { get; init; }

    /// <summary>D: 1, or 2 when bidirectional.</summary>
    public int Directions => Bidirectional ? 2 : 1;

    /// <summary>Throws with the field, its value and the rule when the configuration cannot work.</summary>
    public RecurrentConfig Validate()
    {
        if (InputSize <= 0) throw new ArgumentException($"RecurrentConfig.InputSize must be positive; got {InputSize}.");
        if (HiddenSize <= 0) throw new ArgumentException($"RecurrentConfig.HiddenSize must be positive; got {HiddenSize}.");
        if (Layers <= 0) throw new ArgumentException($"RecurrentConfig.Layers must be positive; got {Layers}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"RecurrentConfig.Dropout must be in [0, 1); got {Dropout}.");
        return this;
    }
}
