using System.Net;
using AttentionSharp.Data;
using AttentionSharp.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace AttentionSharp.Serving;

/// <summary>
/// The completions server: Kestrel on <see cref="ServeOptions.Host"/>:<see cref="ServeOptions.Port"/> in front of a
/// <see cref="CompletionEngine"/>. A stop (Ctrl-C, SIGTERM, or <see cref="StopAsync"/>) drains it: new requests get 503
/// and Kestrel stops listening, requests in flight run on for <see cref="ServeOptions.ShutdownGrace"/>, those still
/// running then end with finish_reason cancelled, and the host waits until each has had its answer.
/// </summary>
public sealed class CompletionServer : IAsyncDisposable
{
    /// <summary>How long Kestrel waits past the grace for the cancelled requests' last responses.</summary>
    static readonly TimeSpan LastResponses = TimeSpan.FromSeconds(10);

    readonly WebApplication _app;
    readonly Lock _gate = new();
    Timer? _grace;
    bool _stopped;

    CompletionServer(WebApplication app, CompletionEngine engine)
    {
        _app = app;
        Engine = engine;
    }

    public CompletionEngine Engine { get; }

    /// <summary>Where the server listens, such as http://127.0.0.1:8000 (the port chosen when 0 was asked for).</summary>
    public string Url { get; private set; } = "";

    /// <summary>Serves <paramref name="model"/> with <paramref name="tokenizer"/>; returns once listening.</summary>
    public static async Task<CompletionServer> StartAsync(Gpt model, ITokenizer tokenizer, ServeOptions options,
                                                          CancellationToken cancellationToken = default)
    {
        var engine = new CompletionEngine(model, tokenizer, options);
        options = engine.Options;
        try
        {
            // The empty builder reads no configuration files or environment: the options are all there is.
            var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
            builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
            {
                kestrel.AddServerHeader = false;
                kestrel.Limits.MaxRequestBodySize = options.MaxBodyBytes;
                kestrel.Listen(Address(options.Host), options.Port);
            });
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownGrace + LastResponses);
            builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
            var app = builder.Build();
            var server = new CompletionServer(app, engine);
            app.Run(new CompletionEndpoints(engine).Handle);
            app.Lifetime.ApplicationStopping.Register(server.Drain);
            await app.StartAsync(cancellationToken);
            server.Url = app.Urls.First().Replace("[::]", "localhost", StringComparison.Ordinal);
            return server;
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    /// <summary>Completes when a stop signal (Ctrl-C, SIGTERM) or <see cref="StopAsync"/> has drained the server.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) =>
        _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Drains the server as a stop signal does and returns once every request has been answered.</summary>
    public async Task StopAsync()
    {
        lock (_gate)
        {
            if (_stopped) return;
            _stopped = true;
        }
        await _app.StopAsync();
    }

    /// <summary>The first moment of a stop: refuse new requests, and cancel what still runs once the grace is over.</summary>
    void Drain()
    {
        Engine.StopAccepting();
        lock (_gate) _grace ??= new Timer(_ => Engine.CancelAll(), null, Engine.Options.ShutdownGrace, Timeout.InfiniteTimeSpan);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
        lock (_gate) _grace?.Dispose();
        Engine.Dispose();
    }

    static IPAddress Address(string host) => host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(host);
}
