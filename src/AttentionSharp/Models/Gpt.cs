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
    /// Dropout draws from <see cref="DropoutGenerator"/>, as rows <see cref="Generator.FirstRow"/>… of a larger batch.
    /// </summary>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch, int time, KvCache? cache = null) =>
        Head(Trunk(ids, batch, time, cache));                                      // (B, T, V)

    /// <summary>
    /// Reads B prompts of T tokens each into <paramref name="cache"/> (empty, or holding earlier positions) and returns
    /// the logits of each row's last position only, (B, 1, V): the distribution of the next token, all a generator
    /// needs. The language-model head, which for a large vocabulary costs as much per position as a block, runs on B rows
    /// instead of B·T. Decode under GradMode.NoGrad().
    /// </summary>
    public Tensor Prefill(ReadOnlySpan<int> ids, int batch, int time, KvCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (time < 1) throw new ArgumentException($"A prompt needs at least one token; got {time}.", nameof(time));
        return Head(Trunk(ids, batch, time, cache).Narrow(1, time - 1, 1));       // (B, 1, V)
    }

    /// <summary>ln_f, then the head tied to wte: (B, T, C) → (B, T, V).</summary>
    Tensor Head(Tensor x) => LnF.Deferred(x).Through(Wte.Weight, null);

    /// <summary>Embeddings, positions and the blocks: ids (B, T) → the residual stream after the last block (B, T, C).</summary>
    Tensor Trunk(ReadOnlySpan<int> ids, int batch, int time, KvCache? cache)
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
        x = x.Dropout(Config.Dropout, Training, _dropoutRng);
        for (int i = 0; i < Blocks.Count; i++) x = Blocks[i].Forward(x, cache?[i]);   // (B, T, C)
        return x;
    }

    /// <summary>
    /// One new token for each of B independent sequences, each with its own cache (<paramref name="caches"/>[b] holds
    /// sequence b's positions so far, and the lengths may differ): ids (B) → logits (B, 1, V). This is the decoding step
    /// of a server that batches whatever requests are in flight: the projections run as one product over the B rows,
    /// attention runs per row over its own cache. Row b's logits are bit for bit those of
    /// <c>Forward([ids[b]], 1, 1, caches[b])</c>, whatever the other rows: products of up to
    /// <see cref="Kernels.Gemm.FewRowsMax"/> rows compute each row alone, so larger fp32 batches go through in groups of
    /// that size (int8 products accumulate exactly, so an int8 model takes the whole batch at once). Decode under
    /// GradMode.NoGrad().
    /// </summary>
    public Tensor ForwardRows(ReadOnlySpan<int> ids, IReadOnlyList<KvCache> caches)
    {
        ArgumentNullException.ThrowIfNull(caches);
        if (ids.Length != caches.Count || ids.Length == 0)
            throw new ArgumentException(
                $"Expected one new token per cache, at least one; got {ids.Length} tokens and {caches.Count} caches.");
        for (int b = 0; b < caches.Count; b++)
        {
            if (caches[b].Layers != Blocks.Count)
                throw new ArgumentException($"Cache {b} has {caches[b].Layers} layers; the model has {Blocks.Count}.",
                                            nameof(caches));
            if (caches[b].Length + 1 > Config.ContextLength)
                throw new ArgumentException($"Cache {b} holds {caches[b].Length} positions; one more exceeds the model's " +
                                            $"context of {Config.ContextLength}.", nameof(caches));
        }
        int group = IsQuantized ? ids.Length : Kernels.Gemm.FewRowsMax;          // int8 products are per row at any size
        if (ids.Length <= group) return StepRows(ids, caches);
        var parts = new List<Tensor>();
        for (int start = 0; start < ids.Length; start += group)
        {
            int count = Math.Min(group, ids.Length - start);
            parts.Add(StepRows(ids.Slice(start, count), caches.Skip(start).Take(count).ToArray()));
        }
        return Tensor.Cat(parts, 0);                                                    // (B, 1, V)
    }

    /// <summary><see cref="ForwardRows"/> for one group of rows.</summary>
    Tensor StepRows(ReadOnlySpan<int> ids, IReadOnlyList<KvCache> caches)
    {
        int batch = ids.Length;
        var x = Wte.Forward(ids, batch, 1);                                         // (B, 1, C)
        if (Wpe is not null)
        {
            var positions = new int[batch];
            for (int b = 0; b < batch; b++) positions[b] = caches[b].Length;
            x = x + Wpe.Forward(positions, batch, 1);                               // + (B, 1, C), each row's own position
        }
        else if (_sinusoids is not null)
        {
            var rows = new Tensor[batch];
            for (int b = 0; b < batch; b++) rows[b] = _sinusoids.Forward(x.Narrow(0, b, 1), caches[b].Length);
            x = batch == 1 ? rows[0] : Tensor.Cat(rows, 0);
        }
        var layers = new KvCacheLayer[batch];
        for (int i = 0; i < Blocks.Count; i++)
        {
            for (int b = 0; b < batch; b++) layers[b] = caches[b][i];
            x = Blocks[i].Forward(x, LayerCache.PerRow(layers));                     // (B, 1, C)
        }
        return Head(x);                                                             // (B, 1, V)
    }

    /// <summary>
    /// Makes the model int8 for inference (docs/quantization.md): every projection (c_attn, c_proj, c_fc) and the token
    /// embedding, which is also the language-model head, get one scale per output channel; the position table, norms and
    /// biases stay fp32. Products then run on int8 weights and per-row int8 activations (<see cref="QuantizedWeight"/>).
    /// </summary>
    public void QuantizeInt8()
    {
        foreach (var linear in Modules().OfType<Linear>()) linear.Weight.Quantize();
        Wte.Weight.Quantize();
    }

    /// <summary>
    /// Drops the fp32 elements of every int8 weight (<see cref="Tensor.ReleaseFloat32"/>): an int8 model for inference
    /// then holds its projections and token embedding in a quarter of the memory, and decodes exactly as before. It can
    /// no longer be trained, saved as fp32, exported or have fp32 weights loaded into it.
    /// </summary>
    public void ReleaseFloat32Weights()
    {
        if (!IsQuantized) throw new InvalidOperationException("The model is fp32; quantize it (QuantizeInt8) before " +
            "releasing its fp32 weights.");
        foreach (var p in Parameters()) if (p.Quantized is not null) p.ReleaseFloat32();
    }

    /// <summary>True when the weights are int8 (<see cref="QuantizeInt8"/>, or an int8 checkpoint loaded).</summary>
    public bool IsQuantized => Wte.Weight.Quantized is not null;

    /// <summary>Mean next-token cross-entropy of the logits for (B, T) inputs against (B, T) targets.</summary>
    public Tensor Loss(Tensor logits, ReadOnlySpan<int> targets) => Tensor.CrossEntropy(logits, targets);

    /// <summary>Parameters with their weight-decay flag, by nanoGPT's rule: tensors of rank ≥ 2 (matrices, embeddings) decay; biases and norm gains do not.</summary>
    public IEnumerable<(Tensor Param, bool Decay)> ParameterGroups() => Parameters().Select(p => (p, p.Rank >= 2));
}

/// <summary>
/// One pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)). Each normalisation runs inside the projection that
/// reads it and each residual sum inside the projection that ends the branch (see <see cref="LinearInput"/> and
/// <see cref="Branch"/>), so neither is held as an activation of its own.
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

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor Forward(Tensor x, LayerCache cache = default)
    {
        x = x + Attn.Forward(Ln1.Deferred(x), cache);
        x = x + Mlp.Forward(Ln2.Deferred(x));
        return x;
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

    /// <summary>Dropout(c_proj(GELU(c_fc(x)))): (B, T, C) → (B, T, C); GELU's output is formed again in backward.</summary>
    public Branch Forward(LinearInput x)
    {
        var h = x.Through(CFc);                                                      // (B, T, 4C)
        return Branch.GeluProjection(CProj, h, Kernels.GeluApproximation.Tanh, Training ? _dropout : 0f, _dropoutRng);
    }
}

/// <summary>
/// Multi-head causal self-attention: Q, K, V from one fused projection c_attn, then the shared
/// <see cref="AttentionCore"/> computes Attention(Q, K, V) = softmax(QKᵀ/√d_k + M)·V per head, M = −∞ above the
/// diagonal (or the configured pattern and positions), heads merged, and the output projection c_proj (W^O).
/// </summary>
public sealed class CausalSelfAttention : Module
{
    readonly float _dropout;
    readonly Generator _dropoutRng;
    readonly AttentionCore _core;

    public CausalSelfAttention(GptConfig config, Generator rng, Generator dropoutRng)
    {
        _dropout = config.Dropout; _dropoutRng = RegisterGenerator("dropout", dropoutRng);
        _core = new AttentionCore(config.AttentionConfig, dropoutRng);
        CAttn = RegisterModule("c_attn", GptInit.Linear(config.Width, 3 * config.Width, rng, config.Bias, 0.02f));
        CProj = RegisterModule("c_proj", GptInit.Linear(config.Width, config.Width, rng, config.Bias, 0.02f / MathF.Sqrt(2 * config.Layers)));
    }

    public Linear CAttn { get; }
    public Linear CProj { get; }

    /// <summary>
    /// Dropout(c_proj(attention(x))): (B, T, C) → (B, T, C); with a cache, k and v are appended to it and the queries
    /// see every cached position (bottom-right aligned causal mask).
    /// </summary>
    public Branch Forward(LinearInput x, LayerCache cache = default)
    {
        var qkv = x.Through(CAttn);                                                  // (B, T, 3C): [Q K V]
        var y = _core.SelfAttention(qkv, AttentionMask.CausalOnly, cache, Training); // (B, T, C), heads merged
        return Branch.Projection(CProj, y, Training ? _dropout : 0f, _dropoutRng);
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
