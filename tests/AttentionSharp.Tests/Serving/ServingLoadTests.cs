using System.Collections.Concurrent;
using System.Diagnostics;
using AttentionSharp.Serving;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.Serving;

/// <summary>
/// The server under load on the loopback address: 32 concurrent clients, each three short completions, streamed and
/// whole by turns; every request is answered, and each text equals what the same request gets alone (rows of a batched
/// decoding step do not depend on each other). The throughput with 1 and 8 clients is printed, not asserted: speed is
/// measured by `bench serve`.
/// </summary>
public class ServingLoadTests(ITestOutputHelper output)
{
    static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    static readonly string[] Prompts = ["the cat", "a", "on the mat, ", "jury said that", "q", "lorem ipsum dolor "];

    /// <summary>Sixteen different requests: prompts, seeds, token budgets, sampling options and stop strings.</summary>
    static readonly object[] Requests = [.. Enumerable.Range(0, 16).Select(i => new Dictionary<string, object>
    {
        ["prompt"] = Prompts[i % Prompts.Length],
        ["max_tokens"] = 8 + i % 9,
        ["seed"] = 100 + i,
        ["temperature"] = i % 4 == 0 ? 0 : 0.6 + 0.1 * (i % 5),
        ["top_k"] = i % 3 == 0 ? 5 : 0,
        ["top_p"] = i % 5 == 0 ? 0.9 : 1,
        ["stop"] = i % 6 == 0 ? new[] { "e", "xy" } : Array.Empty<string>(),
    })];

    [Fact]
    public async Task ThirtyTwoClientsAreAllAnsweredAndEachTextEqualsItsRunAlone()
    {
        await using var server = await TestServer.StartAsync(new ServeOptions { MaxSequences = 16, MaxQueue = 64 });
        using var deadline = new CancellationTokenSource(Limit);
        var alone = new Reply[Requests.Length];
        for (int i = 0; i < Requests.Length; i++)
        {
            alone[i] = await server.Complete(Requests[i], deadline.Token);
            Assert.True(alone[i].Status == 200, alone[i].Body);
        }

        var replies = new ConcurrentBag<(int Client, int Request, bool Streamed, Reply Reply)>();
        var clients = Enumerable.Range(0, 32).Select(async c =>
        {
            for (int r = 0; r < 3; r++)
            {
                int request = (c * 3 + r) % Requests.Length;
                bool streamed = (c + r) % 2 == 0;
                var reply = streamed ? await server.Stream(Requests[request], deadline.Token)
                                     : await server.Complete(Requests[request], deadline.Token);
                replies.Add((c, request, streamed, reply));
            }
        });
        var watch = Stopwatch.StartNew();
        var all = Task.WhenAll(clients);
        if (await Task.WhenAny(all, Task.Delay(Limit)) != all)
            Assert.Fail($"32 clients × 3 completions were not all answered within {Limit.TotalSeconds} s " +
                        $"({replies.Count} were).");
        await all;
        output.WriteLine($"96 completions from 32 concurrent clients in {watch.Elapsed.TotalSeconds:F2} s");

        Assert.Equal(96, replies.Count);
        foreach (var (client, request, streamed, reply) in replies)
        {
            string what = $"client {client}, request {request} ({(streamed ? "streamed" : "whole")})";
            Assert.True(reply.Status == 200, $"{what}: {reply.Status} {reply.Body}");
            Assert.True(alone[request].Text == reply.Text && alone[request].FinishReason == reply.FinishReason,
                        $"{what}: expected '{alone[request].Text}' ({alone[request].FinishReason}) as alone, "
                        + $"got '{reply.Text}' ({reply.FinishReason})");
            Assert.Equal(alone[request].CompletionTokens, reply.CompletionTokens);
        }
        Assert.Contains(replies, r => r.Reply.FinishReason == FinishReason.Length);
    }

    [Fact]
    public async Task AnInt8ModelGivesEachRequestItsTextAloneUnderLoadToo()
    {
        var model = TestServer.Model();
        model.QuantizeInt8();
        await using var server = await TestServer.StartAsync(new ServeOptions { MaxSequences = 8 }, model);
        var alone = new Reply[8];
        for (int i = 0; i < alone.Length; i++) alone[i] = await server.Complete(Requests[i]);
        var together = await Task.WhenAll(Enumerable.Range(0, 16).Select(c =>
            c % 2 == 0 ? server.Stream(Requests[c % 8]) : server.Complete(Requests[c % 8])));
        for (int c = 0; c < together.Length; c++)
            Assert.True(together[c].Status == 200 && together[c].Text == alone[c % 8].Text,
                        $"client {c}: expected '{alone[c % 8].Text}', got {together[c].Status} '{together[c].Text}'");
    }

    [Fact]
    public async Task ThroughputWithOneAndEightClientsIsPrinted()
    {
        await using var server = await TestServer.StartAsync(new ServeOptions { MaxSequences = 8 });
        var request = new { prompt = "the cat sat", max_tokens = 24, temperature = 0.8 };
        await Rate(server, request, clients: 2, each: 1);                                       // warm-up
        double one = await Rate(server, request, clients: 1, each: 8);
        double eight = await Rate(server, request, clients: 8, each: 4);
        output.WriteLine($"completion tokens/s: 1 client {one:F0}, 8 clients {eight:F0} (ratio {eight / one:F2}); "
                         + $"model L=2 C=32 V={TestServer.Alphabet.Length + 1}, {Environment.ProcessorCount} cores");
    }

    static async Task<double> Rate(TestServer server, object request, int clients, int each)
    {
        var watch = Stopwatch.StartNew();
        var counts = await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            int tokens = 0;
            for (int i = 0; i < each; i++)
            {
                var reply = await server.Complete(request);
                Assert.True(reply.Status == 200, reply.Body);
                tokens += reply.CompletionTokens;
            }
            return tokens;
        }));
        return counts.Sum() / watch.Elapsed.TotalSeconds;
    }
}
