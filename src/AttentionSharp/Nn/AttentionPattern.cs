// Sources: Beltagy et al., "Longformer: The Long-Document Transformer" (2020); Katharopoulos et al., "Transformers are
// RNNs" (2020).
using System.Globalization;
using System.Text.Json.Nodes;

namespace AttentionSharp.Nn;

/// <summary>Which attention a layer computes.</summary>
public enum AttentionKind
{
    /// <summary>
    /// softmax(QKᵀ/√d_k + M)·V over every key the masks allow (FlashAttention path): O(T²) time, O(T) memory.
    /// </summary>
    Full,

    /// <summary>Full attention restricted to a sliding window, plus optional global tokens (Longformer): O(T·w) time.</summary>
    SlidingWindow,

    /// <summary>
    /// φ(Q)·(φ(K)ᵀV) normalised, φ = elu + 1 (Katharopoulos et al.): O(T·HS²) time, a different function.
    /// </summary>
    Linear,
}

/// <summary>
/// The attention of a model's layers: full, sliding-window (window w and global-token positions) or linear; written as
/// "full", "sliding:W", "sliding:W:G1,G2,…" or "linear" on the command line and in <see cref="ToString"/>.
/// </summary>
/// <remarks>
/// Linear attention forms no weights, so it takes no attention dropout (the residual dropout still applies) and no
/// additive bias (ALiBi), and no key padding.
/// </remarks>
public sealed record AttentionPattern
{
    /// <summary>The kind of attention.</summary>
    public AttentionKind Kind { get; init; }

    /// <summary>
    /// w for <see cref="AttentionKind.SlidingWindow"/>: a query at position p sees keys j with |p − j| &lt; w (the last
    /// w under the causal mask).
    /// </summary>
    public int Window { get; init; }

    /// <summary>
    /// Positions of global tokens for <see cref="AttentionKind.SlidingWindow"/>: they see and are seen by every position.
    /// </summary>
    public IReadOnlyList<int> GlobalTokens { get; init; } = [];

    /// <summary>Full attention.</summary>
    public static AttentionPattern Full { get; } = new();

    /// <summary>Linear attention.</summary>
    public static AttentionPattern LinearAttention { get; } = new() { Kind = AttentionKind.Linear };

    /// <summary>A sliding window of <paramref name="window"/> with the given global positions.</summary>
    public static AttentionPattern Sliding(int window, params int[] globalTokens) =>
        new() { Kind = AttentionKind.SlidingWindow, Window = window, GlobalTokens = globalTokens };

    /// <summary>
    /// Throws with the field and the rule when the pattern cannot work for sequences of up to
    /// <paramref name="maxLength"/>.
    /// </summary>
    public AttentionPattern Validate(string owner, int maxLength)
    {
        if (!Enum.IsDefined(Kind)) throw new ArgumentException($"{owner}.Attention has the unknown kind {(int)Kind}.");
        if (Kind == AttentionKind.SlidingWindow && Window < 1)
            throw new ArgumentException(
                $"{owner}.Attention is a sliding window, which needs a window of at least 1; got {Window}.");
        if (Kind != AttentionKind.SlidingWindow && (Window != 0 || GlobalTokens.Count > 0))
            throw new ArgumentException($"{owner}.Attention is {Kind}; a window and global tokens belong to a sliding window.");
        foreach (int g in GlobalTokens)
            if (g < 0 || g >= maxLength)
                throw new ArgumentException(
                    $"{owner}.Attention's global token position {g} is outside the context [0, {maxLength}).");
        return this;
    }

    /// <summary>
    /// Attention of (B, NH, Tq, HS) queries over (B, NKV, Tk, HS) keys and values as this pattern computes it, given the
    /// masks and dropout of full attention. Global positions at or beyond Tk are not there yet (decoding) and are left out.
    /// </summary>
    public Tensor Attend(Tensor q, Tensor k, Tensor v, AttentionOptions options)
    {
        if (Kind != AttentionKind.Linear) return Tensor.ScaledDotProductAttention(q, k, v, Restrict(options, k.Size(2)));
        if (options.AdditiveMask is not null || !options.KeyPadding.IsEmpty || !options.QueryLengths.IsEmpty)
            throw new ArgumentException("Linear attention forms no weights, so it takes no additive mask (ALiBi), key padding " +
                                        "or query lengths; only the causal mask.");
        return Tensor.LinearAttention(q, k, v, options.Causal);
    }

    /// <summary>
    /// The options of softmax attention with this pattern's window and its global positions below <paramref name="keyLength"/>
    /// (unchanged for full attention); linear attention has no such options.
    /// </summary>
    public AttentionOptions Restrict(AttentionOptions options, int keyLength) => Kind switch
    {
        AttentionKind.Full => options,
        AttentionKind.SlidingWindow =>
            options with { Window = Window, GlobalTokens = GlobalTokens.Where(g => g < keyLength).ToArray() },
        _ => throw new InvalidOperationException(
            "Linear attention is not softmax attention: it forms no weights and takes no window."),
    };

    /// <summary>
    /// How many keys a K/V cache must pass to causal attention: a sliding window without global tokens sees only the last w
    /// positions, so the cache may drop older ones; null (keep all) otherwise — a global query looks at every earlier key.
    /// </summary>
    public int? CacheWindow => Kind == AttentionKind.SlidingWindow && GlobalTokens.Count == 0 ? Window : null;

    /// <summary>"full", "sliding:W", "sliding:W:G1,G2,…" or "linear".</summary>
    public override string ToString() => Kind switch
    {
        AttentionKind.SlidingWindow when GlobalTokens.Count > 0 => $"sliding:{Window}:{string.Join(',', GlobalTokens)}",
        AttentionKind.SlidingWindow => $"sliding:{Window}",
        AttentionKind.Linear => "linear",
        _ => "full",
    };

    /// <summary>Reads <see cref="ToString"/>'s form; the error names what was expected.</summary>
    public static AttentionPattern Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Trim().ToLowerInvariant().Split(':');
        static int Number(string s, string text) => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new ArgumentException($"The attention '{text}' has '{s}' where a non-negative whole number belongs; " +
                                          "expected full, sliding:W, sliding:W:G1,G2,… or linear.");
        return parts switch
        {
            ["full"] => Full,
            ["linear"] => LinearAttention,
            ["sliding" or "sliding_window", var w] => Sliding(Number(w, text)),
            ["sliding" or "sliding_window", var w, var g] =>
                Sliding(Number(w, text), [.. g.Split(',').Select(x => Number(x, text))]),
            _ => throw new ArgumentException($"The attention '{text}' is unknown; expected full, sliding:W, " +
                                             "sliding:W:G1,G2,… (W the window, G the global positions) or linear."),
        };
    }

    /// <summary>
    /// The JSON fields: attention_type ("full", "sliding_window", "linear"), attention_window and global_tokens when
    /// sliding.
    /// </summary>
    public void WriteJson(JsonObject json)
    {
        json["attention_type"] = Kind switch
        {
            AttentionKind.SlidingWindow => "sliding_window",
            AttentionKind.Linear => "linear",
            _ => "full",
        };
        if (Kind != AttentionKind.SlidingWindow) return;
        json["attention_window"] = Window;
        json["global_tokens"] = new JsonArray([.. GlobalTokens.Select(g => (JsonNode)g)]);
    }

    /// <summary>Reads <see cref="WriteJson"/>'s fields; a configuration without them has full attention.</summary>
    public static AttentionPattern ReadJson(JsonObject json, string owner)
    {
        string type = json["attention_type"] switch
        {
            null => "full",
            JsonValue value when value.TryGetValue<string>(out var s) => s,
            var other => throw new ArgumentException($"The {owner} configuration's 'attention_type' is {other}; " +
                                                     "expected \"full\", \"sliding_window\" or \"linear\"."),
        };
        switch (type)
        {
            case "full": return Full;
            case "linear": return LinearAttention;
            case "sliding_window":
                int window = json["attention_window"] is JsonValue w && w.TryGetValue<int>(out var n)
                    ? n
                    : throw new ArgumentException($"The {owner} configuration's 'attention_window' is missing or not " +
                                                  "an integer (attention_type is sliding_window).");
                var global = new List<int>();
                if (json["global_tokens"] is JsonArray array)
                    foreach (var item in array)
                        global.Add(item is JsonValue gv && gv.TryGetValue<int>(out var g)
                            ? g
                            : throw new ArgumentException(
                                $"The {owner} configuration's 'global_tokens' holds {item}; expected integer positions."));
                else if (json["global_tokens"] is not null)
                    throw new ArgumentException($"The {owner} configuration's 'global_tokens' is not an array of positions.");
                return Sliding(window, [.. global]);
            default:
                throw new ArgumentException(
                    $"The {owner} configuration's 'attention_type' is '{type}'; expected full, sliding_window or linear.");
        }
    }

    public bool Equals(AttentionPattern? other) =>
        other is not null && Kind == other.Kind && Window == other.Window && GlobalTokens.SequenceEqual(other.GlobalTokens);

    public override int GetHashCode() => HashCode.Combine(Kind, Window, GlobalTokens.Count);
}
