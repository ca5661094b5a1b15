using System.Buffers;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace AttentionSharp.Serving;

/// <summary>
/// The HTTP side of the server: POST /v1/completions (whole or as server-sent events), GET /v1/models, GET /health,
/// and a JSON error for anything else. Every request is answered on its own: a failure while handling one becomes its
/// own error response and touches no other.
/// </summary>
sealed class CompletionEndpoints(CompletionEngine engine)
{
    const string Completions = "/v1/completions", Models = "/v1/models", Health = "/health";

    /// <summary>The key of HttpContext.Items that marks a request whose body was read.</summary>
    static readonly object BodyRead = new();

    public async Task Handle(HttpContext context)
    {
        var method = context.Request.Method;
        bool get = HttpMethods.IsGet(method) || HttpMethods.IsHead(method);
        try
        {
            switch (context.Request.Path.Value)
            {
                case Completions when HttpMethods.IsPost(method): await Complete(context); break;
                case Completions: await MethodNotAllowed(context, "POST"); break;
                case Models when get:
                    await Json(context, 200, CompletionJson.Models(engine.Options.ModelName, engine.Context)); break;
                case Health when get:
                    bool up = engine.Accepting;
                    await Json(context, up ? 200 : 503, CompletionJson.Health(up ? "ok" : "stopping")); break;
                case Models or Health: await MethodNotAllowed(context, "GET, HEAD"); break;
                default:
                    await Error(context, new ApiError(404, $"There is no such endpoint; this server answers POST {Completions}, "
                                                           + $"GET {Models} and GET {Health}."));
                    break;
            }
        }
        catch (Exception) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away: nobody to answer; its sequence was cancelled with it.
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            await Error(context, new ApiError(500, $"The server failed on this request: {e.Message}"));
        }
    }

    async Task Complete(HttpContext context)
    {
        var options = engine.Options;
        using var timeout = new CancellationTokenSource(options.Timeout);
        if (!IsJson(context.Request.ContentType))
        {
            await Error(context, new ApiError(415, "The request body must be JSON (Content-Type: application/json)."));
            return;
        }
        if (context.Request.ContentLength > options.MaxBodyBytes)
        {
            await Error(context, TooLarge(options.MaxBodyBytes));
            return;
        }
        CompletionRequest request;
        try { request = engine.Reader.Read(await ReadBody(context)); }
        catch (BadHttpRequestException e)
        {
            await Error(context, e.StatusCode == 413 ? TooLarge(options.MaxBodyBytes) : new ApiError(e.StatusCode, e.Message));
            return;
        }
        catch (ApiErrorException e)
        {
            await Error(context, e.Error);
            return;
        }
        var job = new CompletionJob(request, timeout.Token, context.RequestAborted);
        var submitted = engine.Submit(job);
        if (submitted != SubmitResult.Accepted)
        {
            await Error(context, new ApiError(503, submitted == SubmitResult.QueueFull
                ? $"The server is busy: {options.MaxSequences} sequences decode and {options.MaxQueue} requests wait; try again."
                : "The server is stopping and takes no new requests."));
            return;
        }
        var header = new CompletionJson.Header($"cmpl-{Guid.NewGuid():N}", DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                                               options.ModelName);
        if (!await job.Started)
        {
            var result = await job.Completion;
            await Error(context, result.Failure is { } failure ? new ApiError(500, failure)
                : result.FinishReason == FinishReason.Timeout
                    ? new ApiError(504, $"The request waited in the queue past the timeout of {options.Timeout.TotalSeconds} s.")
                    : new ApiError(503, "The server stopped before the request's turn came."));
            return;
        }
        if (request.Stream) await Stream(context, job, header);
        else
        {
            var result = await job.Completion;
            if (result.Failure is { } failure) await Error(context, new ApiError(500, failure));
            else await Json(context, 200, CompletionJson.Completion(header, result));
        }
    }

    /// <summary>Server-sent events: a chunk per piece of text, a last chunk with finish_reason, then [DONE].</summary>
    static async Task Stream(HttpContext context, CompletionJob job, CompletionJson.Header header)
    {
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        var aborted = context.RequestAborted;
        await response.StartAsync(aborted);
        var writer = response.BodyWriter;
        while (await job.Deltas.WaitToReadAsync(aborted))
        {
            while (job.Deltas.TryRead(out var text)) Event(writer, CompletionJson.Chunk(header, text));
            await writer.FlushAsync(aborted);                                     // every piece ready so far, at once
        }
        var result = await job.Completion;
        Event(writer, result.Failure is { } failure ? CompletionJson.Error(new ApiError(500, failure))
                                                    : CompletionJson.Chunk(header, "", result));
        writer.Write("data: [DONE]\n\n"u8);
        await writer.FlushAsync(aborted);
    }

    static void Event(IBufferWriter<byte> writer, byte[] json)
    {
        writer.Write("data: "u8);
        writer.Write(json);
        writer.Write("\n\n"u8);
    }

    /// <summary>The body, read whole; Kestrel refuses one past the size limit (413) or arriving too slowly.</summary>
    static async Task<ReadOnlyMemory<byte>> ReadBody(HttpContext context)
    {
        context.Items[BodyRead] = true;
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
    }

    /// <summary>True for application/json or a +json type (any charset), and for a body without a Content-Type.</summary>
    static bool IsJson(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType)) return true;
        if (!MediaTypeHeaderValue.TryParse(contentType, out var media) || media.MediaType.Value is not { } type) return false;
        return type.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || type.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }

    static ApiError TooLarge(long limit) => new(413, $"The request body is larger than the limit of {limit} bytes.");

    Task MethodNotAllowed(HttpContext context, string allowed)
    {
        context.Response.Headers.Allow = allowed;
        return Error(context, new ApiError(405, $"{context.Request.Path.Value} answers {allowed} only."));
    }

    Task Error(HttpContext context, ApiError error)
    {
        // A body past the limit is left unread, and Kestrel drops the connection after the response rather than read it:
        // say so, or the client would send its next request into a closing connection.
        var request = context.Request;
        bool tooLong = request.ContentLength is { } length
            ? length > engine.Options.MaxBodyBytes
            : request.Headers.TransferEncoding.Count > 0;
        bool unread = !context.Items.ContainsKey(BodyRead) && tooLong;
        if (error.Status == 413 || unread) context.Response.Headers.Connection = "close";
        return Json(context, error.Status, CompletionJson.Error(error));
    }

    static async Task Json(HttpContext context, int status, byte[] body)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = body.Length;
        await response.Body.WriteAsync(body, context.RequestAborted);
    }
}
