using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using AttentionSharp.Serving;
using Xunit.Abstractions;

namespace AttentionSharp.Tests.Serving;

/// <summary>
/// 10,000 malformed requests at the server, eight at a time: random bytes, truncated JSON, wrong types, numbers out
/// of range or overflowing, NaN and infinities, deep nesting, empty and over-long prompts, bodies past the size limit,
/// wrong content types, methods and paths. Every one gets a 4xx (never a 5xx, never a dropped connection), and the
/// server still serves a good request afterwards.
/// </summary>
public class ServingFuzzTests(ITestOutputHelper output)
{
    const int Count = 10_000;
    const int BodyLimit = 4096;

    /// <summary>One request: method, path, content type (null: none) and body.</summary>
    sealed record Attempt(HttpMethod Method, string Path, string? ContentType, byte[] Body, string What);

    [Fact]
    public async Task TenThousandMalformedRequestsAreAllAnswered4xxAndTheServerStillServes()
    {
        await using var server = await TestServer.StartAsync(new ServeOptions { MaxBodyBytes = BodyLimit });
        var failures = new ConcurrentQueue<string>();
        var statuses = new ConcurrentDictionary<int, int>();
        var watch = Stopwatch.StartNew();
        await Parallel.ForAsync(0, Count, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
        {
            var attempt = Make(new Random(i), i);
            try
            {
                using var request = new HttpRequestMessage(attempt.Method, attempt.Path);
                if (attempt.Method != HttpMethod.Get || attempt.Body.Length > 0)
                {
                    request.Content = new ByteArrayContent(attempt.Body);
                    if (attempt.ContentType is { } type) request.Content.Headers.TryAddWithoutValidation("Content-Type", type);
                }
                using var response = await server.Http.SendAsync(request);
                int status = (int)response.StatusCode;
                statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
                string body = await response.Content.ReadAsStringAsync();
                if (status is < 400 or >= 500) failures.Enqueue($"#{i} {attempt.What}: {status} {body}");
            }
            catch (Exception e)
            {
                failures.Enqueue($"#{i} {attempt.What}: {e.GetType().Name} {e.Message}");
            }
        });
        output.WriteLine($"{Count} malformed requests in {watch.Elapsed.TotalSeconds:F1} s; statuses: "
                         + string.Join(", ", statuses.OrderBy(p => p.Key).Select(p => $"{p.Key} × {p.Value}")));
        Assert.True(failures.IsEmpty, $"{failures.Count} requests were not answered with a 4xx:\n"
                                      + string.Join("\n", failures.Take(10)));
        var good = await server.Complete(new { prompt = "the cat", max_tokens = 5, seed = 1 });
        Assert.True(good.Status == 200 && good.CompletionTokens == 5, good.Body);
    }

    static readonly string[] Fields =
        ["prompt", "max_tokens", "temperature", "top_p", "top_k", "stop", "seed", "stream", "model"];

    /// <summary>Values of each field's wrong type.</summary>
    static readonly Dictionary<string, string[]> WrongTypes = new()
    {
        ["prompt"] = ["5", "true", "[]", "{}", "[\"a\"]", "[1, 2]"],
        ["max_tokens"] = ["\"5\"", "true", "[]", "{}", "5.5", "1e1", "\"\""],
        ["temperature"] = ["\"1\"", "true", "[]", "{}"],
        ["top_p"] = ["\"0.5\"", "false", "[0.5]"],
        ["top_k"] = ["1.5", "\"3\"", "[]", "true"],
        ["stop"] = ["5", "{}", "[1]", "[[\"a\"]]", "[\"a\", null]", "true"],
        ["seed"] = ["\"7\"", "1.5", "[]", "{}", "1e400", "-1e30"],
        ["stream"] = ["\"true\"", "1", "[]", "{}"],
        ["model"] = ["5", "[]", "{}", "true"],
    };

    /// <summary>Numbers out of each field's range (overflowing, negative, zero, NaN spelled as JSON cannot).</summary>
    static readonly Dictionary<string, string[]> OutOfRange = new()
    {
        ["max_tokens"] = ["0", "-1", "-2147483649", "2147483648", "9223372036854775808", "99999999999999999999999", "1e400",
                          "1000000", "64", "-0"],
        ["temperature"] = ["-0.1", "2.0001", "1e308", "1e400", "-1e400", "NaN", "Infinity", "-Infinity", "nan", "\"NaN\""],
        ["top_p"] = ["0", "-1", "1.0001", "2", "1e400", "NaN", "-0"],
        ["top_k"] = ["-1", "-9223372036854775809", "1e400"],
        ["seed"] = ["18446744073709551616", "NaN", "1e20"],
    };

    static string Valid(Random rng) =>
        $"{{\"prompt\": \"the cat\", \"max_tokens\": {rng.Next(1, 4)}, \"temperature\": 0.5, \"seed\": {rng.Next(100)}}}";

    /// <summary>A valid request with <paramref name="field"/> set to the raw JSON <paramref name="value"/>.</summary>
    static string With(string field, string value) =>
        field == "prompt"
            ? $"{{\"prompt\": {value}, \"max_tokens\": 2}}"
            : $"{{\"prompt\": \"the cat\", \"max_tokens\": 2, \"{field}\": {value}}}";

    static Attempt Json(string json, string what) =>
        new(HttpMethod.Post, "/v1/completions", "application/json", Encoding.UTF8.GetBytes(json), what);

    static T Pick<T>(Random rng, IReadOnlyList<T> items) => items[rng.Next(items.Count)];

    static Attempt Make(Random rng, int i)
    {
        switch (i % 16)
        {
            case 0:
                var bytes = new byte[rng.Next(0, 200)];
                rng.NextBytes(bytes);
                return new(HttpMethod.Post, "/v1/completions", "application/json", bytes, "random bytes");
            case 1:
                string valid = Valid(rng);
                return Json(valid[..rng.Next(0, valid.Length)], "truncated JSON");
            case 2:
                string field = Pick(rng, Fields);
                return Json(With(field, Pick(rng, WrongTypes[field])), $"{field} of a wrong type");
            case 3:
                var (name, values) = Pick(rng, OutOfRange.ToArray());
                return Json(With(name, Pick(rng, values)), $"{name} out of range");
            case 4:
                int depth = rng.Next(17, 3000);
                string nested = new string('[', depth) + new string(']', depth);
                return Json(rng.Next(2) == 0 ? nested : With(Pick(rng, Fields), nested), $"nesting {depth} deep");
            case 5:
                return Json(Pick(rng, new[] { With("prompt", "\"\""), "{\"max_tokens\": 3}", "{}",
                                              With("prompt", $"\"{new string('a', rng.Next(64, 2000))}\""),
                                              With("prompt", "null") }), "empty, missing or over-long prompt");
            case 6:
                var big = new string('a', rng.Next(BodyLimit, 3 * BodyLimit));
                return Json(rng.Next(2) == 0 ? With("prompt", $"\"{big}\"") : big, "body past the size limit");
            case 7:
                return new(HttpMethod.Post, "/v1/completions",
                           Pick(rng, new[] { "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                             "application/xml", "garbage///", "application/jsonx", "json" }),
                           Encoding.UTF8.GetBytes(Valid(rng)), "wrong content type");
            case 8:
                var (method, path) = Pick(rng, new[]
                {
                    (HttpMethod.Get, "/v1/completions"), (HttpMethod.Put, "/v1/completions"),
                    (HttpMethod.Delete, "/v1/completions"), (HttpMethod.Patch, "/v1/completions"),
                    (HttpMethod.Options, "/v1/completions"), (HttpMethod.Post, "/v1/models"),
                    (HttpMethod.Put, "/health"), (HttpMethod.Delete, "/v1/models"),
                });
                return new(method, path, "application/json", Encoding.UTF8.GetBytes(Valid(rng)), $"{method} {path}");
            case 9:
                string wrongPath = Pick(rng, new[] { "/", "/v1/completion", "/v2/completions", "/v1/completions/x",
                                                     "/V1/COMPLETIONS", "/v1/chat/completions", $"/{rng.Next()}",
                                                     "/v1/completions%00" });
                return new(HttpMethod.Post, wrongPath, "application/json", Encoding.UTF8.GetBytes(Valid(rng)),
                           $"path {wrongPath}");
            case 10:
                return Json(Pick(rng, new[] { "1", "\"text\"", "[]", "null", "true", "[{\"prompt\": \"a\"}]", "" }),
                            "not an object");
            case 11:
                return Json(With("stop", Pick(rng, new[] { "[\"a\", \"b\", \"c\", \"d\", \"e\"]", "\"\"", "[\"\"]",
                                                           "[\"a\", \"\"]" })),
                            "bad stop strings");
            case 12:
                return Json(With(Pick(rng, new[] { "n", "best_of", "echo", "logprobs", "suffix", "logit_bias", "presence_penalty",
                                                   "frequency_penalty" }),
                                 Pick(rng, new[] { "2", "true", "5", "\"x\"", "{\"1\": 2}", "0.5", "[]" })),
                            "unsupported option");
            case 13:
                return Json(With("model", Pick(rng, new[] { "\"gpt-4\"", "\"\"", "\"\\ud800\"", "\"GPT\"" })), "another model");
            case 14:
                return Json(Pick(rng, new[] { "{\"prompt\": \"a\", \"prompt\": \"b\"}",
                                              "{\"prompt\": \"a\", \"max_tokens\": 1, \"max_tokens\": 2}" }),
                            "a field twice");
            default:
                // A valid request with one byte changed, or cut, or with garbage after it.
                var text = Encoding.UTF8.GetBytes(Valid(rng) + Pick(rng, new[] { "}", "x", ",", " {}", "\u0000" }));
                return new(HttpMethod.Post, "/v1/completions", "application/json", text, "trailing garbage");
        }
    }
}
