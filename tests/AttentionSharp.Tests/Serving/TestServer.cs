using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Autograd;
using AttentionSharp.Data;
using AttentionSharp.Models;
using AttentionSharp.Serving;

namespace AttentionSharp.Tests.Serving;

/// <summary>A completion as the client saw it: status, text, finish_reason, completion tokens, the raw body.</summary>
sealed record Reply(int Status, string Text, string? FinishReason, int CompletionTokens, string Body)
{
    /// <summary>The error's param (null when the body has none).</summary>
    public string? Param =>
        Error().TryGetProperty("param", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;

    public string Message => Error().GetProperty("message").GetString()!;

    JsonElement Error() => JsonDocument.Parse(Body).RootElement.GetProperty("error");
}

/// <summary>
/// A small random GPT over a character vocabulary, served in-process on 127.0.0.1 with a free port, and the client
/// calls the tests make: a whole completion, a streamed one (server-sent events, checked for their shape), any request.
/// </summary>
sealed class TestServer : IAsyncDisposable
{
    public const string Alphabet = "abcdefghijklmnopqrstuvwxyz .,";

    TestServer(CompletionServer server)
    {
        Server = server;
        var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 64, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        Http = new HttpClient(handler) { BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromMinutes(2) };
    }

    public CompletionServer Server { get; }

    public HttpClient Http { get; }

    public static CharTokenizer Tokenizer() => CharTokenizer.Train(Alphabet);

    /// <summary>
    /// A GPT over <see cref="Alphabet"/> with weights drawn wide (std 0.3), so its distributions are far from uniform
    /// and texts differ with prompt and seed.
    /// </summary>
    public static Gpt Model(int layers = 2, int width = 32, int context = 64, ulong seed = 3)
    {
        var config = new GptConfig
        {
            VocabSize = Alphabet.Length + 1, ContextLength = context, Layers = layers, Heads = 2, Width = width,
        };
        var model = new Gpt(config, new Generator(seed));
        var rng = new Generator(seed + 1);
        using (GradMode.NoGrad())
            foreach (var p in model.Parameters().Where(p => p.Rank >= 2))
            {
                using var w = Tensor.Normal(rng, 0f, 0.3f, p.Shape);
                p.CopyFrom_(w);
            }
        return model;
    }

    public static async Task<TestServer> StartAsync(ServeOptions? options = null, Gpt? model = null) =>
        new(await CompletionServer.StartAsync(model ?? Model(), Tokenizer(), (options ?? new ServeOptions()) with { Port = 0 }));

    /// <summary>POST /v1/completions with <paramref name="body"/> (an object, serialised, or a JSON string).</summary>
    public async Task<Reply> Complete(object body, CancellationToken cancellation = default)
    {
        using var response = await Post(body, cancellation);
        string text = await response.Content.ReadAsStringAsync(cancellation);
        if (response.StatusCode != HttpStatusCode.OK) return new Reply((int)response.StatusCode, "", null, 0, text);
        using var document = JsonDocument.Parse(text);
        var root = document.RootElement;
        Assert.Equal("text_completion", root.GetProperty("object").GetString());
        var choice = root.GetProperty("choices")[0];
        int tokens = root.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        return new Reply(200, choice.GetProperty("text").GetString()!, choice.GetProperty("finish_reason").GetString(),
                         tokens, text);
    }

    /// <summary>The same with "stream": true: the pieces of text joined, finish_reason and usage from the last chunk.</summary>
    public async Task<Reply> Stream(object body, CancellationToken cancellation = default)
    {
        var streamed = (body is string json ? JsonNode.Parse(json) : JsonSerializer.SerializeToNode(body))!.AsObject();
        streamed["stream"] = true;
        using var response = await Post(streamed.ToJsonString(), cancellation);
        string text = await response.Content.ReadAsStringAsync(cancellation);
        if (response.StatusCode != HttpStatusCode.OK) return new Reply((int)response.StatusCode, "", null, 0, text);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return ParseEvents(text);
    }

    /// <summary>Reads server-sent events: data chunks, the last with finish_reason and usage, then [DONE].</summary>
    public static Reply ParseEvents(string events)
    {
        var data = events.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(data, e => Assert.StartsWith("data: ", e));
        Assert.True(data.Length >= 2 && data[^1] == "data: [DONE]", $"The stream does not end with [DONE]:\n{events}");
        var joined = new StringBuilder();
        string? finish = null;
        int tokens = 0;
        foreach (var e in data[..^1])
        {
            using var chunk = JsonDocument.Parse(e["data: ".Length..]);
            var choice = chunk.RootElement.GetProperty("choices")[0];
            Assert.Null(finish);                                              // nothing after the last chunk
            joined.Append(choice.GetProperty("text").GetString());
            if (choice.GetProperty("finish_reason").ValueKind == JsonValueKind.String)
            {
                finish = choice.GetProperty("finish_reason").GetString();
                tokens = chunk.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
            }
        }
        Assert.NotNull(finish);
        return new Reply(200, joined.ToString(), finish, tokens, events);
    }

    public Task<HttpResponseMessage> Post(object body, CancellationToken cancellation = default)
    {
        string json = body as string ?? JsonSerializer.Serialize(body);
        return Http.PostAsync("/v1/completions", new StringContent(json, Encoding.UTF8, "application/json"), cancellation);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}
