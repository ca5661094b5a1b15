namespace AttentionSharp.Serving;

/// <summary>
/// An error as a client sees it: an HTTP status and the body
/// <c>{"error": {"message": …, "type": …, "param": …}}</c>, where param names the request field at fault (or is null).
/// Client errors (4xx) have type invalid_request_error, the server's own (5xx) server_error.
/// </summary>
public sealed record ApiError(int Status, string Message, string? Param = null)
{
    public string Type => Status < 500 ? "invalid_request_error" : "server_error";
}

/// <summary>Thrown while a request is read; the handler answers with its <see cref="ApiError"/>.</summary>
sealed class ApiErrorException(ApiError error) : Exception(error.Message)
{
    public ApiError Error { get; } = error;

    public static ApiErrorException BadRequest(string param, string message) => new(new ApiError(400, message, param));
}
