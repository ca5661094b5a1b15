using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using AttentionSharp.IO;
using AttentionSharp.Serving;
using AttentionSharp.Tests.Cli;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Serving;

/// <summary>
/// attn serve as a real process: it prints the URL it listens on, answers completions, and SIGTERM drains it (the
/// request in flight gets its last chunk and [DONE]) before it exits with code 0; bad limits are refused by name.
/// </summary>
public partial class ServeCommandTests
{
    static readonly TimeSpan Limit = TimeSpan.FromMinutes(1);

    /// <summary>A checkpoint of the test model, large enough that 1000 tokens take a while.</summary>
    static string SaveCheckpoint(TempDirectory dir)
    {
        var model = TestServer.Model(layers: 6, width: 384, context: 1024);
        string path = dir.File("tiny-gpt");
        Checkpoint.Save(path, model, new Checkpoint.Contents(model.Config.ToJson(), TestServer.Tokenizer().ToJson(),
                                                             new JsonObject { ["step"] = 0 }, null));
        return path;
    }

    [GeneratedRegex(@"Serving .* on (http://127\.0\.0\.1:\d+) \(model 'tiny-gpt', context 1024\)")]
    private static partial Regex ServingLine();

    [Fact]
    public async Task SigtermCancelsWhatIsInFlightAnswersItAndExitsCleanly()
    {
        using var dir = new TempDirectory();
        string checkpoint = SaveCheckpoint(dir);
        using var process = AttnProcess.Start(["serve", "--checkpoint", checkpoint, "--port", "0", "--shutdown-grace", "0"]);
        var errors = process.StandardError.ReadToEndAsync();
        try
        {
            string first = await process.StandardOutput.ReadLineAsync().WaitAsync(Limit) ?? "";
            var match = ServingLine().Match(first);
            if (!match.Success) Assert.Fail($"attn serve printed '{first}'; {await Finish(process, errors)}");
            using var http = new HttpClient { BaseAddress = new Uri(match.Groups[1].Value), Timeout = Limit };
            Assert.Equal("{\"status\":\"ok\"}", await http.GetStringAsync("/health"));

            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
            {
                Content = new StringContent("{\"prompt\": \"the cat\", \"max_tokens\": 1000, \"stream\": true}",
                                            Encoding.UTF8, "application/json"),
            };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            var events = new StringBuilder((await reader.ReadLineAsync())!).Append('\n');   // the first piece of text
            using (var kill = Process.Start("kill", ["-TERM", $"{process.Id}"])!) await kill.WaitForExitAsync();
            events.Append(await reader.ReadToEndAsync().WaitAsync(Limit));

            var reply = TestServer.ParseEvents(events.ToString());
            Assert.Equal(FinishReason.Cancelled, reply.FinishReason);
            Assert.InRange(reply.CompletionTokens, 1, 999);
            Assert.True(process.WaitForExit(Limit), "attn serve did not exit after SIGTERM.");
            Assert.Equal(0, process.ExitCode);
            string rest = await process.StandardOutput.ReadToEndAsync();
            Assert.Contains("Stopped: every request in flight was answered.", rest);
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    [Theory]
    [InlineData("--max-prompt-tokens", "5000",
                "--max-prompt-tokens must be in [1, 1023] (the model's context is 1024); got 5000")]
    [InlineData("--max-tokens", "0", "--max-tokens must be in [1, 1023]")]
    [InlineData("--max-sequences", "0", "--max-sequences must be at least 1; got 0")]
    [InlineData("--timeout", "-1", "--timeout must be a number of seconds ≥ 0; got -1")]
    [InlineData("--host", "example.com",
                "--host must be an IP address (such as 127.0.0.1 or 0.0.0.0) or localhost; got 'example.com'")]
    public void BadLimitsAreRefusedByName(string option, string value, string message)
    {
        using var dir = new TempDirectory();
        var (code, output) = AttnProcess.Run("serve", "--checkpoint", SaveCheckpoint(dir), "--port", "0", option, value);
        Assert.Equal(2, code);
        Assert.Contains(message, output);
    }

    static async Task<string> Finish(Process process, Task<string> errors)
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        return await errors;
    }
}
