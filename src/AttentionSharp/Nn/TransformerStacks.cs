namespace AttentionSharp.Nn;

/// <summary>
/// L encoder layers over (B, T, C) embeddings: positions added (Sinusoidal, Learned; Rotary and ALiBi act inside
/// attention), dropout on the sum (Vaswani et al. 2017, §5.4), the layers, and an optional final LayerNorm. Parameter
/// names: positions.weight (learned positions), layers.N.…, norm.
/// </summary>
public sealed class TransformerEncoder : Module
{
    readonly Generator _dropoutRng;

    public TransformerEncoder(TransformerConfig config, Generator rng)
    {
        Config = config.Validate();
        _dropoutRng = new Generator(rng.NextUInt64());
        if (PositionalEncoding.Create(config.PositionalEncoding, config.Width, config.MaxLength, rng) is { } positions)
            Positions = RegisterModule("positions", positions);
        var list = RegisterModule("layers", new ModuleList());
        for (int i = 0; i < config.Layers; i++) Layers.Add(list.Add(new TransformerEncoderLayer(config, rng, _dropoutRng)));
        if (config.FinalNorm) Norm = RegisterModule("norm", new LayerNorm(config.Width, config.LayerNormEps, config.Bias));
    }

    public TransformerConfig Config { get; }
    public PositionalEncoding? Positions { get; }
    public List<TransformerEncoderLayer> Layers { get; } = [];
    public LayerNorm? Norm { get; }

    /// <summary>(B, T, C) embeddings → (B, T, C); <paramref name="mask"/> carries key padding or an additive mask.</summary>
    public Tensor Forward(Tensor x, AttentionMask? mask = null)
    {
        x = (Positions?.Forward(x) ?? x).Dropout(Config.Dropout, Training, _dropoutRng);
        foreach (var layer in Layers) x = layer.Forward(x, mask);                            // (B, T, C)
        return Norm?.Forward(x) ?? x;
    }
}

/// <summary>
/// L decoder layers over (B, T, C) target embeddings and a (B, Tm, C) memory, laid out as <see cref="TransformerEncoder"/>.
/// With a <see cref="KvCache"/> from <see cref="NewCache"/>, each call feeds only the new positions.
/// </summary>
public sealed class TransformerDecoder : Module
{
    readonly Generator _dropoutRng;

    public TransformerDecoder(TransformerConfig config, Generator rng)
    {
        Config = config.Validate();
        _dropoutRng = new Generator(rng.NextUInt64());
        if (PositionalEncoding.Create(config.PositionalEncoding, config.Width, config.MaxLength, rng) is { } positions)
            Positions = RegisterModule("positions", positions);
        var list = RegisterModule("layers", new ModuleList());
        for (int i = 0; i < config.Layers; i++) Layers.Add(list.Add(new TransformerDecoderLayer(config, rng, _dropoutRng)));
        if (config.FinalNorm) Norm = RegisterModule("norm", new LayerNorm(config.Width, config.LayerNormEps, config.Bias));
    }

    public TransformerConfig Config { get; }
    public PositionalEncoding? Positions { get; }
    public List<TransformerDecoderLayer> Layers { get; } = [];
    public LayerNorm? Norm { get; }

    /// <summary>An empty cache with one entry per layer, for incremental decoding.</summary>
    public KvCache NewCache() => new(Layers.Count);

    /// <summary>
    /// (B, T, C) target embeddings → (B, T, C). With <paramref name="cache"/>, x holds the positions from cache.Length on
    /// (usually one), and their keys and values are appended; decode under GradMode.NoGrad().
    /// </summary>
    public Tensor Forward(Tensor x, Tensor memory, AttentionMask? selfMask = null, AttentionMask? memoryMask = null, KvCache? cache = null)
    {
        if (cache is not null && cache.Layers != Layers.Count)
            throw new ArgumentException($"The K/V cache has {cache.Layers} layers but the decoder has {Layers.Count}.", nameof(cache));
        int offset = cache?.Length ?? 0;
        x = (Positions?.Forward(x, offset) ?? x).Dropout(Config.Dropout, Training, _dropoutRng);
        for (int i = 0; i < Layers.Count; i++) x = Layers[i].Forward(x, memory, selfMask, memoryMask, cache?[i]);
        return Norm?.Forward(x) ?? x;
    }
}
