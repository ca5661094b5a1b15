using System.Net;
using System.Text;
using System.Text.Json;
using AttentionSharp.Serving;

namespace AttentionSharp.Tests.Serving;

/// <summary>One server for the API tests: the default limits on the test model (context 64).</summary>
public sealed class ApiServer : IAsyncLifetime
{
    internal TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Server = await TestServer.StartAsync(new ServeOptions { ModelName = "tiny", MaxBodyBytes = 8192 });

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// The HTTP API: the shapes of completions, chunks, the model list and health; stop strings and seeds; and every bad
/// request answered with a 4xx whose JSON error names the field.
/// </summary>
public class CompletionApiTests(ApiServer fixture) : IClassFixture<ApiServer>
{
    TestServer Server => fixture.Server;

    [Theory]
    [InlineData("{\"max_tokens\": 3}", "prompt", "prompt is required")]
    [InlineData("{\"prompt\": \"\"}", "prompt", "prompt must not be empty")]
    [InlineData("{\"prompt\": 5}", "prompt", "prompt must be a string; got the number 5")]
    [InlineData("{\"prompt\": [\"a\"]}", "prompt", "prompt must be a string; got an array")]
    [InlineData("{\"prompt\": \"the cat\", \"max_tokens\": 0}", "max_tokens", "max_tokens must be at least 1; got 0")]
    [InlineData("{\"prompt\": \"the cat\", \"max_tokens\": -5}", "max_tokens", "max_tokens must be at least 1; got -5")]
    [InlineData("{\"prompt\": \"the cat\", \"max_tokens\": 1e400}", "max_tokens", "max_tokens must be a whole number")]
    [InlineData("{\"prompt\": \"the cat\", \"max_tokens\": 99999999999999999999}", "max_tokens", "must be a whole number")]
    [InlineData("{\"prompt\": \"the cat\", \"max_tokens\": 2.5}", "max_tokens",
                "max_tokens must be a whole number; got the number 2.5")]
    [InlineData("{\"prompt\": \"the cat\", \"max_tokens\": \"8\"}", "max_tokens",
                "max_tokens must be a whole number; got a string")]
    [InlineData("{\"prompt\": \"the cat\", \"max_tokens\": 100}", "max_tokens", "max_tokens must be at most 63; got 100")]
    [InlineData("{\"prompt\": \"the cat\", \"max_tokens\": 60}", "max_tokens",
                "The prompt's 7 tokens and max_tokens 60 exceed the model's context of 64; ask for at most 57")]
    [InlineData("{\"prompt\": \"the cat\", \"temperature\": 2.5}", "temperature", "temperature must be in [0, 2]; got 2.5")]
    [InlineData("{\"prompt\": \"the cat\", \"temperature\": -1}", "temperature", "temperature must be in [0, 2]; got -1")]
    [InlineData("{\"prompt\": \"the cat\", \"temperature\": \"hot\"}", "temperature", "temperature must be a number in [0, 2]")]
    [InlineData("{\"prompt\": \"the cat\", \"top_p\": 0}", "top_p", "top_p must be in (0, 1]; got 0")]
    [InlineData("{\"prompt\": \"the cat\", \"top_p\": 1.5}", "top_p", "top_p must be in (0, 1]; got 1.5")]
    [InlineData("{\"prompt\": \"the cat\", \"top_k\": -2}", "top_k", "top_k must be ≥ 0 (0 keeps every token); got -2")]
    [InlineData("{\"prompt\": \"the cat\", \"stop\": 3}", "stop", "stop must be a string or an array of strings")]
    [InlineData("{\"prompt\": \"the cat\", \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", "stop",
                "stop may hold at most 4 strings; got 5")]
    [InlineData("{\"prompt\": \"the cat\", \"stop\": [\"\"]}", "stop", "A stop string must not be empty")]
    [InlineData("{\"prompt\": \"the cat\", \"seed\": 1.5}", "seed", "seed must be a whole number (64 bits)")]
    [InlineData("{\"prompt\": \"the cat\", \"stream\": \"yes\"}", "stream", "stream must be true or false; got a string")]
    [InlineData("{\"prompt\": \"the cat\", \"n\": 3}", "n", "n is not supported by this server; leave it out or give 1")]
    [InlineData("{\"prompt\": \"the cat\", \"echo\": true}", "echo", "echo is not supported")]
    [InlineData("{\"prompt\": \"a\", \"prompt\": \"b\"}", "prompt", "prompt is given more than once")]
    public async Task ABadFieldIsAnswered400NamingIt(string body, string param, string message)
    {
        var reply = await Server.Complete(body);
        Assert.Equal(400, reply.Status);
        Assert.Equal(param, reply.Param);
        Assert.Contains(message, reply.Message);
        Assert.Equal("invalid_request_error",
                     JsonDocument.Parse(reply.Body).RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task APromptLongerThanTheContextIsRefusedByName()
    {
        var reply = await Server.Complete(new { prompt = new string('a', 64) });
        Assert.Equal((400, "prompt"), (reply.Status, reply.Param));
        Assert.Contains("prompt is 64 tokens long; the limit is 63 (the model's context is 64)", reply.Message);
        // Without max_tokens, the default shrinks to the room the prompt leaves.
        reply = await Server.Complete(new { prompt = new string('a', 60), seed = 1 });
        Assert.Equal((200, 4), (reply.Status, reply.CompletionTokens));
    }

    [Theory]
    [InlineData("not json", "The request body is not valid JSON")]
    [InlineData("[1, 2]", "The request body must be a JSON object; got an array")]
    [InlineData("{\"prompt\": \"a\"", "The request body is not valid JSON")]
    public async Task MalformedJsonIsAnswered400(string body, string message)
    {
        var reply = await Server.Complete(body);
        Assert.Equal((400, null), (reply.Status, reply.Param));
        Assert.Contains(message, reply.Message);
    }

    [Fact]
    public async Task WrongModelsMethodsPathsTypesAndSizesGetTheirStatus()
    {
        var reply = await Server.Complete(new { model = "gpt-4", prompt = "a" });
        Assert.Equal((404, "model"), (reply.Status, reply.Param));
        Assert.Equal(200, (await Server.Complete(new { model = "tiny", prompt = "a", max_tokens = 1 })).Status);

        using (var get = await Server.Http.GetAsync("/v1/completions"))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
            Assert.Equal("POST", get.Content.Headers.Allow.Single());
            Assert.Contains("answers POST only", await get.Content.ReadAsStringAsync());
        }
        using (var nowhere = await Server.Http.PostAsync("/v1/chat/completions", new StringContent("{}")))
            Assert.Equal(HttpStatusCode.NotFound, nowhere.StatusCode);
        using (var form = await Server.Http.PostAsync("/v1/completions",
                   new StringContent("{\"prompt\": \"a\"}", Encoding.UTF8, "text/plain")))
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, form.StatusCode);
        using (var large = await Server.Post(new { prompt = new string('a', 9000) }))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.StatusCode);
            Assert.Contains("larger than the limit of 8192 bytes", await large.Content.ReadAsStringAsync());
        }
        // Without a Content-Type the body is read as JSON.
        using (var bare = await Server.Http.PostAsync("/v1/completions",
                   new ByteArrayContent("{\"prompt\": \"a\", \"max_tokens\": 1}"u8.ToArray())))
            Assert.Equal(HttpStatusCode.OK, bare.StatusCode);
    }

    [Fact]
    public async Task ModelsAndHealthDescribeTheServer()
    {
        using var models = JsonDocument.Parse(await Server.Http.GetStringAsync("/v1/models"));
        var model = models.RootElement.GetProperty("data")[0];
        Assert.Equal("list", models.RootElement.GetProperty("object").GetString());
        Assert.Equal(("tiny", "model", "attentionsharp", 64),
                     (model.GetProperty("id").GetString(), model.GetProperty("object").GetString(),
                      model.GetProperty("owned_by").GetString(), model.GetProperty("context_length").GetInt32()));
        Assert.Equal("{\"status\":\"ok\"}", await Server.Http.GetStringAsync("/health"));
    }

    [Fact]
    public async Task ACompletionHasTheOpenAiShapeAndASeedReproducesIt()
    {
        var body = new { prompt = "the cat", max_tokens = 12, seed = 42, temperature = 0.9, top_k = 10, top_p = 0.95 };
        var reply = await Server.Complete(body);
        Assert.Equal((200, FinishReason.Length, 12), (reply.Status, reply.FinishReason, reply.CompletionTokens));
        using var document = JsonDocument.Parse(reply.Body);
        var root = document.RootElement;
        Assert.StartsWith("cmpl-", root.GetProperty("id").GetString());
        Assert.Equal("tiny", root.GetProperty("model").GetString());
        Assert.True(root.GetProperty("created").GetInt64() > 1_600_000_000);
        Assert.Equal(0, root.GetProperty("choices")[0].GetProperty("index").GetInt32());
        var usage = root.GetProperty("usage");
        Assert.Equal((7, 12, 19), (usage.GetProperty("prompt_tokens").GetInt32(),
                                  usage.GetProperty("completion_tokens").GetInt32(),
                                  usage.GetProperty("total_tokens").GetInt32()));
        Assert.Equal(12, reply.Text.Length);                                    // one character per token
        Assert.Equal(reply.Text, (await Server.Complete(body)).Text);
        Assert.Equal(reply.Text, (await Server.Stream(body)).Text);
        var reseeded = await Server.Complete(new { prompt = "the cat", max_tokens = 12, seed = 43, temperature = 0.9 });
        Assert.NotEqual(reply.Text, reseeded.Text);
    }

    [Fact]
    public async Task AStopStringEndsTheTextBeforeItStreamedOrNot()
    {
        var full = await Server.Complete(new { prompt = "the cat", max_tokens = 40, seed = 5 });
        string stop = full.Text[10..12];
        string expected = full.Text[..full.Text.IndexOf(stop, StringComparison.Ordinal)];
        var body = new { prompt = "the cat", max_tokens = 40, seed = 5, stop = new[] { "never there", stop } };
        var whole = await Server.Complete(body);
        var streamed = await Server.Stream(body);
        Assert.Equal((expected, FinishReason.Stop), (whole.Text, whole.FinishReason));
        Assert.Equal((expected, FinishReason.Stop), (streamed.Text, streamed.FinishReason));
        Assert.Equal(whole.CompletionTokens, streamed.CompletionTokens);
    }
}
