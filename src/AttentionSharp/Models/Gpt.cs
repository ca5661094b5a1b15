using AttentionSharp.Nn;

namespace AttentionSharp.Models;

/// <summary>
/// A decoder-only Transformer in the GPT-2 layout, read top to bottom as in nanoGPT: embeddings, L pre-LN blocks, final
/// LayerNorm, and a language-model head tied to the token embedding. Parameter names follow Hugging Face's GPT-2
/// (wte, wpe, h.N.ln_1, h.N.attn.c_attn, h.N.attn.c_proj, h.N.ln_2, h.N.mlp.c_fc, h.N.mlp.c_proj, ln_f); Linear weights
/// are stored (out, in) as torch.nn.Linear does (HF's Conv1D stores the transpose).
/// Letters: B batch, T time, C width, NH heads, HS head size, V vocabulary.
/// </summary>
public sealed class Gpt : Module
{
    readonly Generator _dropoutRng;

    public Gpt(GptConfig config, Generator rng)
    {
        Config = config.Validate();
        _dropoutRng = RegisterGenerator("dropout", new Generator(rng.NextUInt64()));
        // Initialisation as GPT-2: N(0, 0.02) for weights and embeddings, zero biases, and residual projections scaled by
        // 1/√(2L) because each block adds two branches to the residual stream.
        Wte = RegisterModule("wte", new Embedding(config.VocabSize, config.Width, rng, std: 0.02f));
        // Positions: GPT-2's learned table wpe, or sinusoids added here, or RoPE / ALiBi inside attention, or nothing.
        if (config.PositionalEncoding == PositionalEncodingKind.Learned)
            Wpe = RegisterModule("wpe", new Embedding(config.ContextLength, config.Width, rng, std: 0.02f));
        else if (config.PositionalEncoding == PositionalEncodingKind.Sinusoidal)
            _sinusoids = new SinusoidalPositionalEncoding(config.Width);
        var h = RegisterModule("h", new ModuleList());
        for (int i = 0; i < config.Layers; i++) Blocks.Add(h.Add(new GptBlock(config, rng, _dropoutRng)));
        LnF = RegisterModule("ln_f", new LayerNorm(config.Width, bias: config.Bias));
    }

    public GptConfig Config { get; }

    /// <summary>The generator dropout draws from (part of a checkpoint's state, for exact resume).</summary>
    public Generator DropoutGenerator => _dropoutRng;

    public Embedding Wte { get; }

    /// <summary>The learned position table; null unless <see cref="GptConfig.PositionalEncoding"/> is Learned.</summary>
    public Embedding? Wpe { get; }

    readonly SinusoidalPositionalEncoding? _sinusoids;
    public List<GptBlock> Blocks { get; } = [];
    public LayerNorm LnF { get; }

    /// <summary>
    /// Token ids (B, T) → logits (B, T, V). With a <paramref name="cache"/> (decoding, under NoGrad) the ids are the T
    /// positions after the cached ones: their keys and values are appended and they attend to everything so far.
    /// <paramref name="firstRow"/> places the batch at rows firstRow… of a larger one for dropout (data-parallel ranks).
    /// </summary>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch, int time, KvCache? cache = null, int firstRow = 0)
    {
        int offset = cache?.Length ?? 0;
        if (offset + time > Config.ContextLength)
            throw new ArgumentException(offset == 0
                ? $"The sequence has {time} tokens but the model's context is {Config.ContextLength}."
                : $"The cache holds {offset} positions; {time} more exceed the model's context of {Config.ContextLength}.");
        if (ids.Length != batch * time) throw new ArgumentException($"Expected {batch}×{time} = {batch * time} ids, got {ids.Length}.");
        if (cache is not null && cache.Layers != Blocks.Count)
            throw new ArgumentException($"The cache has {cache.Layers} layers; the model has {Blocks.Count}.", nameof(cache));
        var x = Wte.Forward(ids, batch, time);                                      // (B, T, C)
        if (Wpe is not null)
        {
            var positions = new int[time];
            for (int t = 0; t < time; t++) positions[t] = offset + t;
            x = x + Wpe.Forward(positions, time);                                   // + (T, C)
        }
        else if (_sinusoids is not null) x = _sinusoids.Forward(x, offset);
        x = x.Dropout(Config.Dropout, Training, _dropoutRng, firstRow);
        for (int i = 0; i < Blocks.Count; i++) x = Blocks[i].Forward(x, cache?[i], firstRow); // (B, T, C)
        return Tensor.LayerNormLinear(x, LnF.Weight, LnF.Bias, LnF.Eps, Wte.Weight, null); // ln_f, then (B, T, V), weights tied with wte
    }

    /// <summary>Mean next-token cross-entropy of the logits for (B, T) inputs against (B, T) targets.</summary>
    public Tensor Loss(Tensor logits, ReadOnlySpan<int> targets) => Tensor.CrossEntropy(logits, targets);

    /// <summary>Parameters with their weight-decay flag, by nanoGPT's rule: tensors of rank ≥ 2 (matrices, embeddings) decay; biases and norm gains do not.</summary>
    public IEnumerable<(Tensor Param, bool Decay)> ParameterGroups() => Parameters().Select(p => (p, p.Rank >= 2));
}

/// <summary>
/// One pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)); each normalisation runs inside the projection that reads
/// it and each residual sum inside the projection that ends the branch, so neither is held as an activation of its own.
/// </summary>
public sealed class GptBlock : Module
{
    public GptBlock(GptConfig config, Generator rng, Generator dropoutRng)
    {
        Ln1 = RegisterModule("ln_1", new LayerNorm(config.Width, bias: config.Bias));
        Attn = RegisterModule("attn", new CausalSelfAttention(config, rng, dropoutRng));
        Ln2 = RegisterModule("ln_2", new LayerNorm(config.Width, bias: config.Bias));
        Mlp = RegisterModule("mlp", new GptMlp(config, rng, dropoutRng));
    }

    public LayerNorm Ln1 { get; }
    public CausalSelfAttention Attn { get; }
    public LayerNorm Ln2 { get; }
    public GptMlp Mlp { get; }

    /// <summary>(B, T, C) → (B, T, C); <paramref name="firstRow"/> as in <see cref="Gpt.Forward"/>.</summary>
    public Tensor Forward(Tensor x, KvCacheLayer? cache = null, int firstRow = 0)
    {
        x = Attn.Forward(x, cache, firstRow, residual: x, norm: Ln1);
        return Mlp.Forward(x, firstRow, residual: x, norm: Ln2);
    }
}

/// <summary>The feed-forward branch: c_proj(GELU(c_fc(x))), 4C hidden units, GELU in its tanh form as GPT-2.</summary>
public sealed class GptMlp : Module
{
    readonly float _dropout;
    readonly Generator _dropoutRng;

    public GptMlp(GptConfig config, Generator rng, Generator dropoutRng)
    {
        CFc = RegisterModule("c_fc", GptInit.Linear(config.Width, 4 * config.Width, rng, config.Bias, 0.02f));
        CProj = RegisterModule("c_proj", GptInit.Linear(4 * config.Width, config.Width, rng, config.Bias, 0.02f / MathF.Sqrt(2 * config.Layers)));
        _dropout = config.Dropout;
        _dropoutRng = RegisterGenerator("dropout", dropoutRng);
    }

    public Linear CFc { get; }
    public Linear CProj { get; }

    /// <summary>
    /// c_proj(GELU(c_fc(x))) [+ residual], GELU's output formed again in backward instead of kept (see
    /// Tensor.GeluLinear); without dropout the residual is added inside c_proj's product. With <paramref name="norm"/>,
    /// x is normalised by it first, inside c_fc (see Tensor.LayerNormLinear).
    /// </summary>
    public Tensor Forward(Tensor x, int firstRow = 0, Tensor? residual = null, LayerNorm? norm = null)
    {
        var h = norm is null ? CFc.Forward(x) : norm.ForwardThrough(CFc, x);
        if (residual is not null && !(Training && _dropout > 0))
            return Tensor.GeluLinear(h, CProj.Weight, CProj.Bias, Kernels.GeluApproximation.Tanh, residual);
        var y = Tensor.GeluLinear(h, CProj.Weight, CProj.Bias, Kernels.GeluApproximation.Tanh).Dropout(_dropout, Training, _dropoutRng, firstRow);
        return residual is null ? y : residual + y;
    }
}

/// <summary>
/// Multi-head causal self-attention: Q, K, V from one fused projection c_attn, heads split,
/// Attention(Q, K, V) = softmax(QKᵀ/√d_k + M)·V with M = −∞ above the diagonal, heads merged, output projection c_proj (W^O).
/// </summary>
public sealed class CausalSelfAttention : Module
{
    readonly int _heads, _width;
    readonly float _dropout;
    readonly Generator _dropoutRng;
    readonly RotaryEmbedding? _rotary;
    readonly float[]? _alibiSlopes;
    readonly AttentionPattern _pattern;

    public CausalSelfAttention(GptConfig config, Generator rng, Generator dropoutRng)
    {
        _heads = config.Heads; _width = config.Width; _dropout = config.Dropout; _dropoutRng = RegisterGenerator("dropout", dropoutRng); _pattern = config.Attention;
        if (config.PositionalEncoding == PositionalEncodingKind.Rotary) _rotary = new RotaryEmbedding(config.Width / config.Heads);
        if (config.PositionalEncoding == PositionalEncodingKind.Alibi) _alibiSlopes = Alibi.Slopes(config.Heads);
        CAttn = RegisterModule("c_attn", GptInit.Linear(config.Width, 3 * config.Width, rng, config.Bias, 0.02f));
        CProj = RegisterModule("c_proj", GptInit.Linear(config.Width, config.Width, rng, config.Bias, 0.02f / MathF.Sqrt(2 * config.Layers)));
    }

    public Linear CAttn { get; }
    public Linear CProj { get; }

    /// <summary>
    /// (B, T, C) → (B, T, C); with a cache, k and v are appended to it and the queries see every cached position. With
    /// <paramref name="residual"/> the result is residual + attention, the sum formed in c_proj's product when no dropout
    /// lies between them; with <paramref name="norm"/>, x is normalised by it first, inside c_attn.
    /// </summary>
    public Tensor Forward(Tensor x, KvCacheLayer? cache = null, int firstRow = 0, Tensor? residual = null, LayerNorm? norm = null)
    {
        int b = x.Size(0), t = x.Size(1), c = _width, hs = c / _heads;
        // ALiBi's bias −m_h·(i − j) over the keys attended (all of them but for a cache trimmed to a window)
        AttentionOptions Options(int keys) => new()
        {
            AdditiveMask = _alibiSlopes is null ? null : Alibi.Bias(_alibiSlopes, t, keys),
            Causal = true, // bottom-right aligned: with a cache, the new queries see all earlier positions
            Dropout = Training ? _dropout : 0f, DropoutRng = _dropoutRng, DropoutFirstBatch = firstRow,
        };
        Tensor y;
        if (cache is null && _rotary is null && _pattern.Kind != AttentionKind.Linear)
        {
            // Training and whole-sequence evaluation: the heads are read in place from the c_attn output.
            y = Tensor.PackedSelfAttention(Qkv(x, norm), _heads, _pattern.Restrict(Options(t), t));  // (B, T, C)
            return Project(y, residual, firstRow);
        }
        var qkv = Qkv(x, norm).Split([c, c, c], 2);                                  // 3 × (B, T, C)
        var q = qkv[0].Reshape(b, t, _heads, hs).Transpose(1, 2);                       // (B, NH, T, HS)
        var k = qkv[1].Reshape(b, t, _heads, hs).Transpose(1, 2);
        var v = qkv[2].Reshape(b, t, _heads, hs).Transpose(1, 2);
        int offset = cache?.Length ?? 0;
        if (_rotary is not null) { q = _rotary.Apply(q, offset); k = _rotary.Apply(k, offset); } // RoPE at positions offset…
        if (cache is not null && _pattern.Kind == AttentionKind.Linear) y = cache.AttendLinear(q, k, v); // the recurrent state
        else
        {
            if (cache is not null) (k, v) = cache.Append(k, v, _pattern.CacheWindow);      // (B, NH, T_so_far, HS), or the window's
            y = _pattern.Attend(q, k, v, Options(k.Size(2)));                               // full or windowed softmax, or linear
        }                                                                                   // y: (B, NH, T, HS)
        y = y.Transpose(1, 2).Reshape(b, t, c);                                             // (B, T, C)
        return Project(y, residual, firstRow);
    }

    /// <summary>c_attn(x), or c_attn(norm(x)).</summary>
    Tensor Qkv(Tensor x, LayerNorm? norm) => norm is null ? CAttn.Forward(x) : norm.ForwardThrough(CAttn, x);

    /// <summary>[residual +] Dropout(c_proj(y)).</summary>
    Tensor Project(Tensor y, Tensor? residual, int firstRow)
    {
        if (residual is not null && !(Training && _dropout > 0)) return Tensor.Linear(y, CProj.Weight, CProj.Bias, residual);
        var branch = CProj.Forward(y).Dropout(_dropout, Training, _dropoutRng, firstRow);
        return residual is null ? branch : residual + branch;
    }
}

/// <summary>GPT-2's initialisation of a Linear layer: weight ~ N(0, std²), bias 0.</summary>
internal static class GptInit
{
    public static Linear Linear(int inFeatures, int outFeatures, Generator rng, bool bias, float std)
    {
        var layer = new Linear(inFeatures, outFeatures, rng, bias);
        using (Autograd.GradMode.NoGrad())
        {
            using var w = Tensor.Normal(rng, 0f, std, outFeatures, inFeatures);
            layer.Weight.CopyFrom_(w);
            layer.Bias?.Fill_(0f);
        }
        return layer;
    }
}
