using System.Net;
using System.Text;
using AttentionSharp.Data;
using AttentionSharp.Serving;

namespace AttentionSharp.Tests.Serving;

/// <summary>
/// The engine's limits and endings: a full queue (503), a request that times out waiting (504) or while decoding
/// (finish_reason timeout, the text so far), a client that goes away (its sequence is cancelled), a server that stops
/// (new requests 503, requests in flight finish within the grace, the rest end cancelled).
/// </summary>
public class CompletionEngineTests
{
    /// <summary>A model slow enough that a long completion is still decoding when the test acts on it.</summary>
    static AttentionSharp.Models.Gpt SlowModel() => TestServer.Model(layers: 6, width: 384, context: 1024);

    static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    static CompletionRequest Request(CompletionEngine engine, int maxTokens, string prompt = "the cat") =>
        engine.Reader.Read(Encoding.UTF8.GetBytes($"{{\"prompt\": \"{prompt}\", \"max_tokens\": {maxTokens}, \"seed\": 1}}"));

    [Fact]
    public async Task AFullQueueRefusesAndAQueuedRequestTimesOutUnstarted()
    {
        using var engine = new CompletionEngine(SlowModel(), TestServer.Tokenizer(),
            new ServeOptions { MaxSequences = 1, MaxQueue = 1 });
        using var stop = new CancellationTokenSource();
        var running = new CompletionJob(Request(engine, 1000), abandoned: stop.Token);
        Assert.Equal(SubmitResult.Accepted, engine.Submit(running));
        Assert.True(await running.Started.WaitAsync(Patience));
        await Until(() => engine.ActiveSequences == 1);
        using var timeout = new CancellationTokenSource();
        var waiting = new CompletionJob(Request(engine, 5), timeout.Token);
        Assert.Equal(SubmitResult.Accepted, engine.Submit(waiting));
        Assert.Equal(SubmitResult.QueueFull, engine.Submit(new CompletionJob(Request(engine, 5))));

        timeout.Cancel();
        var result = await waiting.Completion.WaitAsync(Patience);
        Assert.False(await waiting.Started);
        Assert.Equal((FinishReason.Timeout, 0, ""), (result.FinishReason, result.CompletionTokens, result.Text));
        stop.Cancel();
        Assert.Equal(FinishReason.Cancelled, (await running.Completion.WaitAsync(Patience)).FinishReason);
    }

    [Fact]
    public async Task ATimeoutWhileDecodingEndsWithTheTextSoFar()
    {
        // The engine's thread waits inside its third token until the timeout has fired, so the sequence is still
        // decoding when it fires, however the machine schedules the two threads (a reader that fell behind once let a
        // long completion reach its natural end first).
        var tokenizer = new GatedTokenizer(holdAt: 3);
        using var engine = new CompletionEngine(TestServer.Model(), tokenizer, new ServeOptions());
        using var timeout = new CancellationTokenSource();
        var job = new CompletionJob(Request(engine, 50), timeout.Token);
        engine.Submit(job);
        await tokenizer.Reached.WaitAsync(Patience);
        timeout.Cancel();
        tokenizer.Release();
        var pieces = new StringBuilder();
        using var patience = new CancellationTokenSource(Patience);
        await foreach (var piece in job.Deltas.ReadAllAsync(patience.Token)) pieces.Append(piece);
        var result = await job.Completion.WaitAsync(Patience);
        Assert.Equal((FinishReason.Timeout, 3), (result.FinishReason, result.CompletionTokens));
        Assert.Equal(result.Text, pieces.ToString());
        Assert.Equal(3, result.Text.Length);
    }

    [Fact]
    public async Task ARequestPastTheTimeoutBeforeItsTurnGets504()
    {
        // The clock starts with the request's headers; a body sent after the timeout reaches the engine too late.
        await using var server = await TestServer.StartAsync(new ServeOptions { Timeout = TimeSpan.FromMilliseconds(100) });
        foreach (bool stream in new[] { false, true })
        {
            using var content = new SlowContent(
                $"{{\"prompt\": \"the cat\", \"max_tokens\": 5, \"stream\": {(stream ? "true" : "false")}}}");
            using var response = await server.Http.PostAsync("/v1/completions", content);
            Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
            Assert.Contains("waited in the queue past the timeout of 0.1 s", await response.Content.ReadAsStringAsync());
        }
    }

    /// <summary>A JSON body sent half a second after the request's headers.</summary>
    sealed class SlowContent(string json) : HttpContent
    {
        readonly byte[] _bytes = Encoding.UTF8.GetBytes(json);

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            await stream.FlushAsync();
            await Task.Delay(500);
            await stream.WriteAsync(_bytes);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _bytes.Length;
            return true;
        }
    }

    [Fact]
    public async Task AClientThatGoesAwayCancelsItsSequence()
    {
        // Counted in tokens, not time: under a loaded test run the engine and the client slow down together.
        await using var server = await TestServer.StartAsync(new ServeOptions(), SlowModel());
        const string body = "{\"prompt\": \"the cat\", \"max_tokens\": 1000, \"stream\": true}";
        Assert.Equal(1000, (await server.Stream(body)).CompletionTokens);
        long before = server.Server.Engine.CompletionTokens;
        Assert.Equal(1000, before);

        // A client that closes its connection at once when a response is disposed, instead of draining it.
        var handler = new SocketsHttpHandler { MaxResponseDrainSize = 0, ResponseDrainTimeout = TimeSpan.Zero };
        using var client = new HttpClient(handler)
        {
            BaseAddress = server.Http.BaseAddress,
        };
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions"))
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var stream = await response.Content.ReadAsStreamAsync();
            Assert.True(await stream.ReadAsync(new byte[16]) > 0);
            await Until(() => server.Server.Engine.ActiveSequences == 1);
        }
        await Until(() => server.Server.Engine.ActiveSequences == 0);
        long drawn = server.Server.Engine.CompletionTokens - before;
        Assert.True(drawn < 1000, $"The sequence drew all its {drawn} tokens although its client went away.");
        Assert.Equal(200, (await server.Complete(new { prompt = "a", max_tokens = 2 })).Status);
    }

    [Fact]
    public async Task AStoppingServerRefusesNewRequestsAndLetsThoseInFlightFinish()
    {
        await using var server =
            await TestServer.StartAsync(new ServeOptions { ShutdownGrace = TimeSpan.FromSeconds(60) }, SlowModel());
        var body = new { prompt = "the cat", max_tokens = 300, seed = 2 };
        var expected = await server.Complete(body);
        var inFlight = server.Stream(body);
        await Until(() => server.Server.Engine.ActiveSequences == 1);

        server.Server.Engine.StopAccepting();
        using (var health = await server.Http.GetAsync("/health"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Equal("{\"status\":\"stopping\"}", await health.Content.ReadAsStringAsync());
        }
        var refused = await server.Complete(new { prompt = "a", max_tokens = 2 });
        Assert.Equal(503, refused.Status);
        Assert.Contains("stopping", refused.Message);

        await server.Server.StopAsync();
        Assert.Equal(0, server.Server.Engine.ActiveSequences);
        var reply = await inFlight.WaitAsync(Patience);
        Assert.Equal((expected.Text, FinishReason.Length, 300), (reply.Text, reply.FinishReason, reply.CompletionTokens));
    }

    [Fact]
    public async Task RequestsThatOutliveTheGraceEndCancelledWithTheirText()
    {
        await using var server = await TestServer.StartAsync(new ServeOptions { ShutdownGrace = TimeSpan.Zero }, SlowModel());
        var streamed = server.Stream(new { prompt = "the cat", max_tokens = 1000 });
        var whole = server.Complete(new { prompt = "the jury", max_tokens = 1000 });
        await Until(() => server.Server.Engine.ActiveSequences == 2);
        await server.Server.StopAsync();
        foreach (var reply in new[] { await streamed, await whole })
        {
            Assert.Equal((200, FinishReason.Cancelled), (reply.Status, reply.FinishReason));
            Assert.InRange(reply.CompletionTokens, 1, 999);
            Assert.Equal(reply.CompletionTokens, reply.Text.Length);
        }
    }

    /// <summary>
    /// The test alphabet's tokenizer, except that the engine's thread, decoding a continuation of
    /// <paramref name="holdAt"/> tokens for the first time, waits there until <see cref="Release"/> (at most
    /// <see cref="Patience"/>): the step drawing that token is then certainly still under way when the test acts.
    /// </summary>
    sealed class GatedTokenizer(int holdAt) : ITokenizer
    {
        readonly CharTokenizer _inner = TestServer.Tokenizer();
        readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly ManualResetEventSlim _release = new();

        /// <summary>Completes when the engine's thread has stopped at the gate.</summary>
        public Task Reached => _reached.Task;

        public void Release() => _release.Set();

        public int VocabSize => _inner.VocabSize;
        public int[] Encode(string text) => _inner.Encode(text);
        public string ToJson() => _inner.ToJson();
        public void Save(string path) => _inner.Save(path);

        public string Decode(ReadOnlySpan<int> ids)
        {
            if (ids.Length == holdAt && Thread.CurrentThread.Name == "completion engine" && _reached.TrySetResult())
                _release.Wait(Patience);
            return _inner.Decode(ids);
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds; fails after <see cref="Patience"/>.</summary>
    static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"The engine did not reach the state expected within {Patience.TotalSeconds} s.");
            await Task.Delay(2);
        }
    }
}
