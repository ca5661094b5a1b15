using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace AttentionSharp.Serving;

/// <summary>
/// The server's JSON bodies, in the OpenAI completions shape: a completion, a streamed chunk, the model list, an
/// error, the health status. Text is written as UTF-8 with only what JSON requires escaped (the bodies are never
/// embedded in HTML); a lone surrogate a decoder may leave becomes U+FFFD.
/// </summary>
public static class CompletionJson
{
    static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The names a completion's body shares with each of its streamed chunks.</summary>
    public sealed record Header(string Id, long Created, string Model);

    /// <summary>A whole completion: one choice, its text and finish_reason, and the token counts.</summary>
    public static byte[] Completion(Header header, CompletionResult result) => Write(w =>
    {
        Begin(w, header);
        Choice(w, result.Text, result.FinishReason);
        Usage(w, result);
        w.WriteEndObject();
    });

    /// <summary>
    /// A streamed chunk: the text added since the previous one; the last chunk (a <paramref name="result"/>) carries
    /// finish_reason and the token counts.
    /// </summary>
    public static byte[] Chunk(Header header, string text, CompletionResult? result = null) => Write(w =>
    {
        Begin(w, header);
        Choice(w, text, result?.FinishReason);
        if (result is not null) Usage(w, result);
        w.WriteEndObject();
    });

    /// <summary>GET /v1/models: the one model served.</summary>
    public static byte[] Models(string model, int context) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        w.WriteStartObject();
        w.WriteString("id", model);
        w.WriteString("object", "model");
        w.WriteString("owned_by", "attentionsharp");
        w.WriteNumber("context_length", context);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    });

    /// <summary>{"error": {"message", "type", "param"}}.</summary>
    public static byte[] Error(ApiError error) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteString("message", Clean(error.Message));
        w.WriteString("type", error.Type);
        if (error.Param is { } param) w.WriteString("param", Clean(param));
        else w.WriteNull("param");
        w.WriteEndObject();
        w.WriteEndObject();
    });

    /// <summary>GET /health: {"status": "ok"} or {"status": "stopping"}.</summary>
    public static byte[] Health(string status) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("status", status);
        w.WriteEndObject();
    });

    static void Begin(Utf8JsonWriter w, Header header)
    {
        w.WriteStartObject();
        w.WriteString("id", header.Id);
        w.WriteString("object", "text_completion");
        w.WriteNumber("created", header.Created);
        w.WriteString("model", header.Model);
    }

    static void Choice(Utf8JsonWriter w, string text, string? finishReason)
    {
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteString("text", Clean(text));
        w.WriteNull("logprobs");
        if (finishReason is null) w.WriteNull("finish_reason");
        else w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
    }

    static void Usage(Utf8JsonWriter w, CompletionResult result)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", result.PromptTokens);
        w.WriteNumber("completion_tokens", result.CompletionTokens);
        w.WriteNumber("total_tokens", result.PromptTokens + result.CompletionTokens);
        w.WriteEndObject();
    }

    static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, Options)) body(writer);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary><paramref name="text"/> with every lone surrogate replaced by U+FFFD (JSON text must be valid UTF-16).</summary>
    static string Clean(string text)
    {
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF')) return text;
        var chars = text.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) { i++; continue; }
            if (char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }
}
