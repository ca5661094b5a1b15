using System.Text.Json;
using AttentionSharp.Data;
using AttentionSharp.Generation;

namespace AttentionSharp.Serving;

/// <summary>
/// A completion request, read and checked: the prompt and its token ids, how many tokens to generate at most, how to
/// sample them, the stop strings, the sampler's seed and whether the text is streamed.
/// </summary>
public sealed record CompletionRequest(string Prompt, int[] PromptIds, int MaxTokens, SamplingOptions Sampling,
                                       IReadOnlyList<string> Stop, ulong Seed, bool Stream);

/// <summary>
/// Reads the JSON body of POST /v1/completions (the OpenAI completions shape) into a <see cref="CompletionRequest"/>.
/// Every problem becomes a 400 (404 for another model) whose param names the field; nothing the body holds makes it
/// throw anything else. Fields it does not know are ignored; OpenAI's fields this server does not implement (n,
/// best_of, echo, logprobs, suffix, presence_penalty, frequency_penalty, logit_bias) are accepted only with the value
/// that leaves the result unchanged.
/// </summary>
public sealed class CompletionRequestReader(ITokenizer tokenizer, int context, ServeOptions options)
{
    /// <summary>max_tokens when the request leaves it out (cut to the room the prompt leaves in the context).</summary>
    public const int DefaultMaxTokens = 16;

    /// <summary>The largest temperature accepted, as OpenAI's API.</summary>
    public const double MaxTemperature = 2;

    /// <summary>The most stop strings a request may give, as OpenAI's API.</summary>
    public const int MaxStops = 4;

    /// <summary>How deep JSON may nest; the request itself needs 3 levels.</summary>
    const int MaxDepth = 16;

    static readonly JsonDocumentOptions JsonOptions = new() { MaxDepth = MaxDepth };

    readonly int _promptLimit = options.PromptLimit(context);
    readonly int _completionLimit = options.CompletionLimit(context);

    /// <summary>The request in <paramref name="body"/>; throws <see cref="ApiErrorException"/> naming the field.</summary>
    public CompletionRequest Read(ReadOnlyMemory<byte> body)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(body, JsonOptions); }
        catch (JsonException e)
        {
            throw new ApiErrorException(new ApiError(400, $"The request body is not valid JSON: {e.Message}"));
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ApiErrorException(new ApiError(400, $"The request body must be a JSON object; got {Kind(root)}."));
            var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
                if (!fields.TryAdd(property.Name, property.Value))
                    throw ApiErrorException.BadRequest(property.Name, $"{property.Name} is given more than once.");
            return Read(fields);
        }
    }

    CompletionRequest Read(Dictionary<string, JsonElement> fields)
    {
        if (Field(fields, "model") is { } model && Text(model, "model") != options.ModelName)
            throw new ApiErrorException(new ApiError(404, $"This server serves the model '{options.ModelName}' only.", "model"));
        Neutral(fields, "n", v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n == 1, "1");
        Neutral(fields, "best_of", v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n == 1, "1");
        Neutral(fields, "echo", v => v.ValueKind == JsonValueKind.False, "false");
        Neutral(fields, "logprobs", v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n == 0, "0");
        Neutral(fields, "suffix", v => v.ValueKind == JsonValueKind.String && v.ValueEquals(""), "an empty string");
        Neutral(fields, "presence_penalty", v => v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == 0, "0");
        Neutral(fields, "frequency_penalty", v => v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == 0, "0");
        Neutral(fields, "logit_bias", v => v.ValueKind == JsonValueKind.Object && !v.EnumerateObject().Any(), "an empty object");

        string prompt = Field(fields, "prompt") is { } p
            ? Text(p, "prompt") : throw ApiErrorException.BadRequest("prompt", "prompt is required (a string).");
        if (prompt.Length == 0) throw ApiErrorException.BadRequest("prompt", "prompt must not be empty.");
        var ids = Encode(prompt);
        int room = context - ids.Length;
        int maxTokens = Math.Min(DefaultMaxTokens, Math.Min(_completionLimit, room));
        if (Field(fields, "max_tokens") is { } m)
        {
            if (m.ValueKind != JsonValueKind.Number || !m.TryGetInt64(out long asked))
                throw ApiErrorException.BadRequest("max_tokens", $"max_tokens must be a whole number; got {Kind(m)}.");
            if (asked < 1) throw ApiErrorException.BadRequest("max_tokens", $"max_tokens must be at least 1; got {asked}.");
            if (asked > _completionLimit)
                throw ApiErrorException.BadRequest("max_tokens", $"max_tokens must be at most {_completionLimit}; got {asked}.");
            if (asked > room)
                throw ApiErrorException.BadRequest("max_tokens", $"The prompt's {ids.Length} tokens and max_tokens {asked} "
                                                                 + $"exceed the model's context of {context}; ask for at most {room}.");
            maxTokens = (int)asked;
        }
        var sampling = new SamplingOptions
        {
            Temperature = (float)Number(fields, "temperature", 1, 0, MaxTemperature, "in [0, 2]", lowOpen: false),
            TopP = (float)Number(fields, "top_p", 1, 0, 1, "in (0, 1]", lowOpen: true),
            TopK = TopK(fields),
        };
        return new CompletionRequest(prompt, ids, maxTokens, sampling, Stops(fields), Seed(fields),
                                     Field(fields, "stream") is { } s ? Bool(s, "stream") : false);
    }

    int[] Encode(string prompt)
    {
        int[] ids;
        try { ids = tokenizer.Encode(prompt); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw ApiErrorException.BadRequest("prompt", $"prompt cannot be tokenized: {e.Message}");
        }
        if (ids.Length == 0) throw ApiErrorException.BadRequest("prompt", "prompt encodes to no tokens.");
        if (ids.Length > _promptLimit)
            throw ApiErrorException.BadRequest("prompt", $"prompt is {ids.Length} tokens long; the limit is {_promptLimit} "
                                                         + $"(the model's context is {context}).");
        return ids;
    }

    static JsonElement? Field(Dictionary<string, JsonElement> fields, string name) =>
        fields.TryGetValue(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    static void Neutral(Dictionary<string, JsonElement> fields, string name, Func<JsonElement, bool> neutral, string value)
    {
        if (Field(fields, name) is { } v && !neutral(v))
            throw ApiErrorException.BadRequest(name, $"{name} is not supported by this server; leave it out or give {value}.");
    }

    static double Number(Dictionary<string, JsonElement> fields, string name, double fallback, double low, double high,
                         string range, bool lowOpen)
    {
        if (Field(fields, name) is not { } v) return fallback;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double x) || !double.IsFinite(x))
            throw ApiErrorException.BadRequest(name, $"{name} must be a number {range}; got {Kind(v)}.");
        if (x > high || x < low || (lowOpen && x == low))
            throw ApiErrorException.BadRequest(name, $"{name} must be {range}; got {x}.");
        return x;
    }

    static int TopK(Dictionary<string, JsonElement> fields)
    {
        if (Field(fields, "top_k") is not { } v) return 0;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long k))
            throw ApiErrorException.BadRequest("top_k", $"top_k must be a whole number ≥ 0; got {Kind(v)}.");
        if (k < 0) throw ApiErrorException.BadRequest("top_k", $"top_k must be ≥ 0 (0 keeps every token); got {k}.");
        return (int)Math.Min(k, int.MaxValue);
    }

    static string[] Stops(Dictionary<string, JsonElement> fields)
    {
        if (Field(fields, "stop") is not { } v) return [];
        if (v.ValueKind == JsonValueKind.String) return [StopString(v)];
        if (v.ValueKind != JsonValueKind.Array)
            throw ApiErrorException.BadRequest("stop", $"stop must be a string or an array of strings; got {Kind(v)}.");
        if (v.GetArrayLength() > MaxStops)
            throw ApiErrorException.BadRequest("stop", $"stop may hold at most {MaxStops} strings; got {v.GetArrayLength()}.");
        return [.. v.EnumerateArray().Select(StopString)];
    }

    static string StopString(JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.String)
            throw ApiErrorException.BadRequest("stop", $"stop must be a string or an array of strings; it holds {Kind(v)}.");
        string s = Text(v, "stop");
        return s.Length > 0 ? s : throw ApiErrorException.BadRequest("stop", "A stop string must not be empty.");
    }

    static ulong Seed(Dictionary<string, JsonElement> fields)
    {
        if (Field(fields, "seed") is not { } v) return unchecked((ulong)Random.Shared.NextInt64(long.MinValue, long.MaxValue));
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long signed)) return unchecked((ulong)signed);
        if (v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out ulong unsigned)) return unsigned;
        throw ApiErrorException.BadRequest("seed", $"seed must be a whole number (64 bits); got {Kind(v)}.");
    }

    static string Text(JsonElement v, string name)
    {
        if (v.ValueKind != JsonValueKind.String)
            throw ApiErrorException.BadRequest(name, $"{name} must be a string; got {Kind(v)}.");
        try { return v.GetString()!; }
        catch (InvalidOperationException)
        {
            throw ApiErrorException.BadRequest(name, $"{name} is not valid text (a lone surrogate escape).");
        }
    }

    static bool Bool(JsonElement v, string name) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw ApiErrorException.BadRequest(name, $"{name} must be true or false; got {Kind(v)}."),
    };

    /// <summary>What a JSON value is, for messages; a number is quoted as written when it is short.</summary>
    static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => v.GetRawText() is { Length: <= 24 } raw ? $"the number {raw}" : "a long number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
