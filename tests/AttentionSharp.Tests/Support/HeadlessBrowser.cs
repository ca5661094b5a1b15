using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace AttentionSharp.Tests.Support;

/// <summary>
/// A headless Chromium driven over the DevTools protocol (a WebSocket of JSON messages): open a page, run script in it,
/// take a screenshot, and collect every console error and uncaught exception the page produces.
/// </summary>
public sealed class HeadlessBrowser : IAsyncDisposable
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    readonly Process _process;
    readonly TempDirectory _profile;
    readonly ClientWebSocket _socket = new();
    readonly ConcurrentDictionary<int, TaskCompletionSource<JsonObject>> _pending = new();
    readonly ConcurrentQueue<JsonObject> _events = new();
    readonly CancellationTokenSource _stop = new();
    Task? _receiver;
    int _nextId;

    HeadlessBrowser(Process process, TempDirectory profile) { _process = process; _profile = profile; }

    /// <summary>Chromium's executable found on PATH (chromium, chromium-browser, google-chrome), or null.</summary>
    public static string? Executable { get; } = FindOnPath("chromium", "chromium-browser", "google-chrome");

    /// <summary>Console errors, uncaught exceptions and error log entries so far, one line each.</summary>
    public IReadOnlyList<string> Errors => _events.Select(Describe).OfType<string>().ToList();

    public static async Task<HeadlessBrowser> StartAsync()
    {
        var exe = Executable ?? throw new InvalidOperationException("Chromium is not installed (Debian: apt-get install chromium).");
        var profile = new TempDirectory();
        var info = new ProcessStartInfo(exe)
        {
            RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                                  "--hide-scrollbars", "--window-size=1000,800", "--remote-debugging-port=0", $"--user-data-dir={profile.Path}", "about:blank" })
            info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        var browser = new HeadlessBrowser(process, profile);
        try
        {
            // Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" on stderr.
            var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is { } line && line.Contains("DevTools listening on ", StringComparison.Ordinal))
                    found.TrySetResult(line[(line.IndexOf("ws://", StringComparison.Ordinal))..].Trim());
            };
            process.OutputDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            var browserUrl = new Uri(await found.Task.WaitAsync(Timeout));
            using var http = new HttpClient();
            var targets = JsonNode.Parse(await http.GetStringAsync(new Uri($"http://{browserUrl.Authority}/json/list")))!.AsArray();
            var page = targets.First(t => t!["type"]!.GetValue<string>() == "page")!;
            await browser._socket.ConnectAsync(new Uri(page["webSocketDebuggerUrl"]!.GetValue<string>()), CancellationToken.None).WaitAsync(Timeout);
            browser._receiver = Task.Run(browser.ReceiveAsync);
            await browser.SendAsync("Runtime.enable");
            await browser.SendAsync("Log.enable");
            await browser.SendAsync("Page.enable");
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    /// <summary>Opens a local file and waits for its load event.</summary>
    public async Task OpenAsync(string path)
    {
        int before = _events.Count;
        await SendAsync("Page.navigate", new JsonObject { ["url"] = new Uri(Path.GetFullPath(path)).AbsoluteUri });
        var deadline = DateTime.UtcNow + Timeout;
        while (!_events.Skip(before).Any(e => e["method"]?.GetValue<string>() == "Page.loadEventFired"))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"'{path}' did not finish loading.");
            await Task.Delay(20);
        }
    }

    /// <summary>Runs <paramref name="expression"/> in the page and returns its value (JSON-serialisable values only).</summary>
    public async Task<JsonNode?> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new JsonObject { ["expression"] = expression, ["returnByValue"] = true, ["awaitPromise"] = true });
        if (result["exceptionDetails"] is { } details) throw new InvalidOperationException($"The page threw: {details.ToJsonString()}");
        return result["result"]!["value"]?.DeepClone();
    }

    /// <summary>A PNG screenshot of the viewport.</summary>
    public async Task<byte[]> ScreenshotAsync()
    {
        var result = await SendAsync("Page.captureScreenshot", new JsonObject { ["format"] = "png" });
        return Convert.FromBase64String(result["data"]!.GetValue<string>());
    }

    async Task<JsonObject> SendAsync(string method, JsonObject? parameters = null)
    {
        int id = Interlocked.Increment(ref _nextId);
        var reply = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? new JsonObject() };
        await _socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);
        var answer = await reply.Task.WaitAsync(Timeout);
        if (answer["error"] is { } error) throw new InvalidOperationException($"{method} failed: {error.ToJsonString()}");
        return answer["result"]!.AsObject();
    }

    async Task ReceiveAsync()
    {
        var buffer = new byte[1 << 16];
        using var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open)
            {
                var part = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (part.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, part.Count);
                if (!part.EndOfMessage) continue;
                var json = JsonNode.Parse(message.ToArray())!.AsObject();
                message.SetLength(0);
                if (json["id"] is { } id && _pending.TryRemove(id.GetValue<int>(), out var waiting)) waiting.TrySetResult(json);
                else _events.Enqueue(json);
            }
        }
        catch (OperationCanceledException) { }
        catch (WebSocketException) { }
    }

    static string? Describe(JsonObject e) => e["method"]?.GetValue<string>() switch
    {
        "Runtime.exceptionThrown" => "uncaught: " + e["params"]!["exceptionDetails"]!.ToJsonString(),
        "Runtime.consoleAPICalled" when e["params"]!["type"]!.GetValue<string>() is "error" or "assert" =>
            "console." + e["params"]!["type"] + ": " + e["params"]!["args"]!.ToJsonString(),
        "Log.entryAdded" when e["params"]!["entry"]!["level"]!.GetValue<string>() == "error" =>
            "log: " + e["params"]!["entry"]!["text"] + " " + e["params"]!["entry"]!["url"],
        _ => null,
    };

    static string? FindOnPath(params string[] names)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            foreach (var name in names)
                if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { if (_socket.State == WebSocketState.Open) await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (Exception e) when (e is WebSocketException or TimeoutException or OperationCanceledException) { }
        if (_receiver is not null) await Task.WhenAny(_receiver, Task.Delay(2000));
        _socket.Dispose();
        try { if (!_process.HasExited) { _process.Kill(entireProcessTree: true); await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)); } }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException) { }
        _process.Dispose();
        _stop.Dispose();
        try { _profile.Dispose(); } catch (IOException) { }   // Chromium may still be writing its profile as it exits
    }
}

/// <summary>
/// A test that needs a real browser: it runs where Chromium is on PATH and is skipped, saying why, where it is not —
/// unless ATTN_REQUIRE_BROWSER=1 (as in CI, which installs Chromium), where a missing browser fails it.
/// </summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (HeadlessBrowser.Executable is null && Environment.GetEnvironmentVariable("ATTN_REQUIRE_BROWSER") != "1")
            Skip = "Chromium is not on PATH (Debian: apt-get install chromium); the HTML viewer's browser tests need it.";
    }
}
