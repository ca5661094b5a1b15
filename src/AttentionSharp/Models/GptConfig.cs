using System.Text.Json.Nodes;

namespace AttentionSharp.Models;

/// <summary>The shape of a decoder-only Transformer (GPT-2 layout: pre-LN blocks, learned positions, tied embeddings).</summary>
public sealed record GptConfig
{
    /// <summary>V: the number of token ids.</summary>
    public int VocabSize { get; init; } = 50257;

    /// <summary>The longest sequence the model reads (the size of the position table).</summary>
    public int ContextLength { get; init; } = 1024;

    /// <summary>L: the number of Transformer blocks.</summary>
    public int Layers { get; init; } = 12;

    /// <summary>NH: attention heads per block; HS = C / NH.</summary>
    public int Heads { get; init; } = 12;

    /// <summary>C (d_model): the width of the residual stream.</summary>
    public int Width { get; init; } = 768;

    /// <summary>Dropout probability on embeddings, attention weights and residual branches during training.</summary>
    public float Dropout { get; init; }

    /// <summary>Whether Linear and LayerNorm layers have biases (GPT-2: yes).</summary>
    public bool Bias { get; init; } = true;

    /// <summary>How positions enter: a learned table wpe (GPT-2), sinusoids added to the embeddings, rotary q/k (RoPE), ALiBi biases, or none.</summary>
    public Nn.PositionalEncodingKind PositionalEncoding { get; init; } = Nn.PositionalEncodingKind.Learned;

    /// <summary>What each block's attention computes: full (GPT-2), a causal sliding window with global tokens, or causal linear attention.</summary>
    public Nn.AttentionPattern Attention { get; init; } = Nn.AttentionPattern.Full;

    /// <summary>Each block's attention: causal self-attention of NH heads with these positions and this pattern.</summary>
    public Nn.MultiHeadAttentionConfig AttentionConfig => new()
    {
        Width = Width, Heads = Heads, Dropout = Dropout, Bias = Bias,
        PositionalEncoding = PositionalEncoding, Attention = Attention,
    };

    /// <summary>GPT-2 small, 124M parameters.</summary>
    public static GptConfig Gpt2Small => new();

    /// <summary>A character-level model small enough to train on two CPU cores in minutes.</summary>
    public static GptConfig CharSmall(int vocabSize) => new() { VocabSize = vocabSize, ContextLength = 128, Layers = 4, Heads = 4, Width = 128 };

    /// <summary>Throws with the field, its value and the rule when the configuration cannot work.</summary>
    public GptConfig Validate()
    {
        if (VocabSize <= 0) throw new ArgumentException($"GptConfig.VocabSize must be positive; got {VocabSize}.");
        if (ContextLength <= 0) throw new ArgumentException($"GptConfig.ContextLength must be positive; got {ContextLength}.");
        if (Layers <= 0) throw new ArgumentException($"GptConfig.Layers must be positive; got {Layers}.");
        if (Heads <= 0) throw new ArgumentException($"GptConfig.Heads must be positive; got {Heads}.");
        if (Width <= 0 || Width % Heads != 0) throw new ArgumentException($"GptConfig.Width ({Width}) must be a positive multiple of Heads ({Heads}).");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"GptConfig.Dropout must be in [0, 1); got {Dropout}.");
        if (!Enum.IsDefined(PositionalEncoding)) throw new ArgumentException($"GptConfig.PositionalEncoding {PositionalEncoding} is not one of {string.Join(", ", Enum.GetNames<Nn.PositionalEncodingKind>())}.");
        if (PositionalEncoding == Nn.PositionalEncodingKind.Rotary && (Width / Heads) % 2 != 0)
            throw new ArgumentException($"GptConfig.PositionalEncoding Rotary needs an even head size; Width / Heads = {Width} / {Heads} = {Width / Heads}.");
        Attention.Validate(nameof(GptConfig), ContextLength);
        if (Attention.Kind == Nn.AttentionKind.Linear && PositionalEncoding == Nn.PositionalEncodingKind.Alibi)
            throw new ArgumentException("GptConfig: linear attention forms no scores for ALiBi to bias; use learned, sinusoidal, rotary or no positions with it.");
        return this;
    }

    /// <summary>The configuration with Hugging Face GPT2Config field names (n_positions, n_embd, n_layer, n_head, vocab_size).</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["model_type"] = "gpt2",
            ["vocab_size"] = VocabSize,
            ["n_positions"] = ContextLength,
            ["n_layer"] = Layers,
            ["n_head"] = Heads,
            ["n_embd"] = Width,
            ["dropout"] = Dropout,
            ["bias"] = Bias,
            ["position_embedding_type"] = PositionalEncoding.ToString().ToLowerInvariant(),
        };
        Attention.WriteJson(json);
        return json;
    }

    /// <summary>Reads <see cref="ToJson"/>'s output; a missing or mistyped field is named in the error.</summary>
    public static GptConfig FromJson(JsonObject json)
    {
        if (!(json["model_type"] is JsonValue type && type.TryGetValue<string>(out var typeName) && typeName == "gpt2"))
            throw new ArgumentException($"The configuration is for model_type '{json["model_type"]}', not gpt2.");
        int Int(string name) => json[name] is JsonValue v && v.TryGetValue<int>(out var i)
            ? i : throw new ArgumentException($"The configuration's '{name}' is missing or not an integer.");
        float dropout = json["dropout"] is JsonValue d && d.TryGetValue<float>(out var f) ? f : 0f;
        bool bias = json["bias"] is not JsonValue b || !b.TryGetValue<bool>(out var x) || x;
        var positions = Nn.PositionalEncodingKind.Learned;
        if (json["position_embedding_type"] is JsonValue pe && pe.TryGetValue<string>(out var peName)
            && !Enum.TryParse(peName, ignoreCase: true, out positions))
            throw new ArgumentException($"The configuration's 'position_embedding_type' '{peName}' is not one of {string.Join(", ", Enum.GetNames<Nn.PositionalEncodingKind>())}.");
        return new GptConfig
        {
            VocabSize = Int("vocab_size"), ContextLength = Int("n_positions"), Layers = Int("n_layer"),
            Heads = Int("n_head"), Width = Int("n_embd"), Dropout = dropout, Bias = bias, PositionalEncoding = positions,
            Attention = Nn.AttentionPattern.ReadJson(json, "gpt2"),
        }.Validate();
    }
}
