using AttentionSharp.Nn;

namespace AttentionSharp.Experiments;

/// <summary>The sequence models compared: the Transformer and the recurrent networks it replaced.</summary>
public enum SequenceModelKind { Rnn, Lstm, Gru, Transformer }

/// <summary>
/// Token ids (B, T) → embeddings (B, T, E) → a body reading left to right (an RNN, LSTM or GRU layer, or Transformer
/// encoder layers with sinusoidal positions) → a linear head on the last position → class logits (B, K). The recurrent
/// bodies are sized so the model has about as many parameters as the Transformer (<see cref="Create"/>).
/// </summary>
public sealed class SequenceClassifier : Module
{
    readonly RecurrentBase? _recurrent;
    readonly TransformerEncoder? _encoder;

    SequenceClassifier(SequenceModelKind kind, int vocab, int classes, int embedding, int hidden, int maxLength, Generator rng)
    {
        Kind = kind;
        Embedding = RegisterModule("embedding", new Embedding(vocab, embedding, rng));
        var recurrent = new RecurrentConfig { InputSize = embedding, HiddenSize = hidden, BatchFirst = true };
        switch (kind)
        {
            case SequenceModelKind.Rnn: _recurrent = RegisterModule("rnn", new Rnn(recurrent, rng)); break;
            case SequenceModelKind.Lstm: _recurrent = RegisterModule("lstm", new Lstm(recurrent, rng)); break;
            case SequenceModelKind.Gru: _recurrent = RegisterModule("gru", new Gru(recurrent, rng)); break;
            case SequenceModelKind.Transformer:
                _encoder = RegisterModule("encoder", new TransformerEncoder(TransformerShape(embedding, maxLength), rng));
                break;
            default: throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown sequence model.");
        }
        Head = RegisterModule("head", new Linear(kind == SequenceModelKind.Transformer ? embedding : hidden, classes, rng));
        HiddenSize = hidden;
    }

    public SequenceModelKind Kind { get; }
    public Embedding Embedding { get; }
    public Linear Head { get; }

    /// <summary>
    /// The recurrent body (<see cref="Rnn"/>, <see cref="Lstm"/> or <see cref="Gru"/>); null for the Transformer.
    /// </summary>
    public RecurrentBase? Recurrent => _recurrent;

    /// <summary>The recurrent state size, or the Transformer's width.</summary>
    public int HiddenSize { get; }

    /// <summary>The Transformer body of the comparison: 2 pre-LN layers, 4 heads, feed-forward 2·E, no dropout.</summary>
    static TransformerConfig TransformerShape(int width, int maxLength) => new()
    {
        Layers = 2, Width = width, Heads = 4, FeedForwardWidth = 2 * width, Activation = FeedForwardActivation.Gelu, Dropout = 0f,
        NormFirst = true, FinalNorm = true, PositionalEncoding = PositionalEncodingKind.Sinusoidal, MaxLength = maxLength,
    };

    /// <summary>
    /// A model of <paramref name="kind"/> with embeddings of <paramref name="embedding"/>; a recurrent body gets the state
    /// size whose parameter count is closest to the Transformer's of the same embedding, so the comparison is at matched
    /// parameters.
    /// </summary>
    public static SequenceClassifier Create(SequenceModelKind kind, int vocab, int classes, int embedding, int maxLength, Generator rng)
    {
        if (embedding % 4 != 0) throw new ArgumentException($"The embedding size must divide into 4 heads; got {embedding}.", nameof(embedding));
        if (kind == SequenceModelKind.Transformer) return new SequenceClassifier(kind, vocab, classes, embedding, embedding, maxLength, rng);
        long target = TransformerParameters(vocab, classes, embedding);
        int gates = kind switch { SequenceModelKind.Lstm => 4, SequenceModelKind.Gru => 3, _ => 1 };
        // vocab·E + G·(H·E + H·H + 2H) + (H + 1)·K, increasing in H: the first H at or above the target, or the one below.
        long Count(int h) => (long)vocab * embedding + gates * ((long)h * embedding + (long)h * h + 2L * h) + (h + 1L) * classes;
        int hidden = 1;
        while (Count(hidden) < target) hidden++;
        if (hidden > 1 && target - Count(hidden - 1) < Count(hidden) - target) hidden--;
        return new SequenceClassifier(kind, vocab, classes, embedding, hidden, maxLength, rng);
    }

    static long TransformerParameters(int vocab, int classes, int embedding)
    {
        var probe = new SequenceClassifier(SequenceModelKind.Transformer, vocab, classes, embedding, embedding, 1, new Generator(0));
        return probe.ParameterCount();
    }

    /// <summary>Token ids (B, T) → embeddings (B, T, E).</summary>
    public Tensor Embed(ReadOnlySpan<int> ids, int batch, int time) => Embedding.Forward(ids, batch, time);

    /// <summary>Embeddings (B, T, E) → class logits (B, K) read at the last position.</summary>
    public Tensor Forward(Tensor embedded)
    {
        int t = embedded.Size(1);
        Tensor states = Kind switch                                                    // (B, T, H) or (B, T, E)
        {
            SequenceModelKind.Rnn => ((Rnn)_recurrent!).Forward(embedded).Output,
            SequenceModelKind.Lstm => ((Lstm)_recurrent!).Forward(embedded).Output,
            SequenceModelKind.Gru => ((Gru)_recurrent!).Forward(embedded).Output,
            _ => _encoder!.Forward(embedded, AttentionMask.CausalOnly),
        };
        return Head.Forward(states.Select(1, t - 1));                                  // (B, K)
    }

    /// <summary>Token ids (B, T) → class logits (B, K).</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch, int time) => Forward(Embed(ids, batch, time));
}
