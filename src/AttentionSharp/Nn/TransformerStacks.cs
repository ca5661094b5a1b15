namespace AttentionSharp.Nn;

/// <summary>
/// What the encoder and decoder stacks share: positions added to the (B, T, C) input (Sinusoidal, Learned; Rotary and
/// ALiBi act inside attention), dropout on the sum (Vaswani et al. 2017, §5.4), L layers, and an optional final
/// LayerNorm. Parameter names: positions.weight (learned positions), layers.N.…, norm.
/// </summary>
public abstract class TransformerStack<TLayer> : Module where TLayer : Module
{
    readonly Generator _dropoutRng;

    private protected TransformerStack(TransformerConfig config, Generator rng,
        Func<TransformerConfig, Generator, Generator, TLayer> newLayer)
    {
        Config = config.Validate();
        _dropoutRng = RegisterGenerator("dropout", new Generator(rng.NextUInt64()));
        if (PositionalEncoding.Create(config.PositionalEncoding, config.Width, config.MaxLength, rng) is { } positions)
            Positions = RegisterModule("positions", positions);
        var list = RegisterModule("layers", new ModuleList());
        for (int i = 0; i < config.Layers; i++) Layers.Add(list.Add(newLayer(config, rng, _dropoutRng)));
        if (config.FinalNorm) Norm = RegisterModule("norm", new LayerNorm(config.Width, config.LayerNormEps, config.Bias));
    }

    public TransformerConfig Config { get; }
    public PositionalEncoding? Positions { get; }
    public List<TLayer> Layers { get; } = [];
    public LayerNorm? Norm { get; }

    /// <summary>Dropout(x + PE(offset …)): the input of the first layer.</summary>
    private protected Tensor Embed(Tensor x, int offset) =>
        (Positions?.Forward(x, offset) ?? x).Dropout(Config.Dropout, Training, _dropoutRng);

    /// <summary>The final LayerNorm, when there is one.</summary>
    private protected Tensor Finish(Tensor x) => Norm?.Forward(x) ?? x;
}

/// <summary>L encoder layers over (B, T, C) embeddings (see <see cref="TransformerStack{TLayer}"/>).</summary>
public sealed class TransformerEncoder(TransformerConfig config, Generator rng)
    : TransformerStack<TransformerEncoderLayer>(config, rng, static (c, r, d) => new TransformerEncoderLayer(c, r, d))
{
    /// <summary>
    /// (B, T, C) embeddings → (B, T, C); <paramref name="mask"/> carries key padding or an additive mask. With
    /// <see cref="AttentionMask.Packing"/>, the layers run on the sequences packed after the positions are added, and the
    /// output is packed: (1, N, C).
    /// </summary>
    public Tensor Forward(Tensor x, AttentionMask? mask = null)
    {
        x = Embed(x, 0);
        if (mask?.Packing is { } packing) x = packing.Pack(x);                               // (1, N, C)
        foreach (var layer in Layers) x = layer.Forward(x, mask);                            // (B, T, C) or (1, N, C)
        return Finish(x);
    }
}

/// <summary>
/// L decoder layers over (B, T, C) target embeddings and a (B, Tm, C) memory (see <see cref="TransformerStack{TLayer}"/>).
/// With a <see cref="KvCache"/> from <see cref="NewCache"/>, each call feeds only the new positions.
/// </summary>
public sealed class TransformerDecoder(TransformerConfig config, Generator rng)
    : TransformerStack<TransformerDecoderLayer>(config, rng, static (c, r, d) => new TransformerDecoderLayer(c, r, d))
{
    /// <summary>An empty cache with one entry per layer, for incremental decoding.</summary>
    public KvCache NewCache() => new(Layers.Count);

    /// <summary>
    /// (B, T, C) target embeddings → (B, T, C). With <paramref name="cache"/>, x holds the positions from cache.Length on
    /// (usually one), and their keys and values are appended; decode under GradMode.NoGrad(). With
    /// <see cref="AttentionMask.Packing"/> in <paramref name="selfMask"/>, the layers run on the target sequences packed
    /// after the positions are added (the cross-attention's queries too), and the output is packed: (1, N, C); a
    /// packed memory says so in <paramref name="memoryMask"/>'s <see cref="AttentionMask.KeyPacking"/>.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor memory, AttentionMask? selfMask = null, AttentionMask? memoryMask = null,
        KvCache? cache = null)
    {
        if (cache is not null && cache.Layers != Layers.Count)
            throw new ArgumentException($"The K/V cache has {cache.Layers} layers but the decoder has {Layers.Count}.",
                nameof(cache));
        x = Embed(x, cache?.Length ?? 0);
        if (selfMask?.Packing is { } packing)
        {
            x = packing.Pack(x);                                                              // (1, N, C)
            memoryMask = (memoryMask ?? AttentionMask.None) with { Packing = packing };
        }
        for (int i = 0; i < Layers.Count; i++)
            x = Layers[i].Forward(x, memory, selfMask, memoryMask, cache?[i]);              // (B, T, C) or (1, N, C)
        return Finish(x);
    }
}
