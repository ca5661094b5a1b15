using System.CommandLine;
using AttentionSharp.Serving;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Cli;

/// <summary>
/// `attn serve`: a GPT checkpoint behind an HTTP completions server (<see cref="CompletionServer"/>) until Ctrl-C or
/// SIGTERM, which drain it (requests in flight finish within the grace, the rest are cancelled) before exit code 0.
/// </summary>
static class ServeCommand
{
    static readonly ServeOptions Defaults = new();

    static readonly Option<string> Checkpoint = new("--checkpoint")
    {
        Description = "Checkpoint (or run) directory of a GPT, written by attn train or attn import.", Required = true,
    };
    static readonly Option<string> Host = new("--host")
    {
        Description = "Address to listen on: an IP address (0.0.0.0 for every interface) or localhost.",
        DefaultValueFactory = _ => Defaults.Host,
    };
    static readonly Option<int> Port = new("--port")
    {
        Description = "TCP port; 0 picks a free one (the URL printed at start says which).",
        DefaultValueFactory = _ => Defaults.Port,
    };
    static readonly Option<string?> ModelName = new("--model-name")
    {
        Description = "The model's id in /v1/models and responses (default: the checkpoint directory's name).",
    };
    static readonly Option<int?> MaxPromptTokens = new("--max-prompt-tokens")
    {
        Description = "Longest prompt in tokens (default: the model's context − 1).",
    };
    static readonly Option<int?> MaxTokens = new("--max-tokens")
    {
        Description = "Most completion tokens a request may ask for (default: the model's context − 1); prompt plus "
                    + "max_tokens must fit the context.",
    };
    static readonly Option<int> MaxSequences = new("--max-sequences")
    {
        Description = "Requests decoded together; the rest wait in the queue.",
        DefaultValueFactory = _ => Defaults.MaxSequences,
    };
    static readonly Option<int> MaxQueue = new("--max-queue")
    {
        Description = "Requests that may wait; past that a request gets 503.", DefaultValueFactory = _ => Defaults.MaxQueue,
    };
    static readonly Option<long> MaxBodyBytes = new("--max-body-bytes")
    {
        Description = "Largest request body in bytes (413 past it).", DefaultValueFactory = _ => Defaults.MaxBodyBytes,
    };
    static readonly Option<double> Timeout = new("--timeout")
    {
        Description = "Seconds a request may take, queue included; then it ends with finish_reason timeout (504 if it "
                    + "was still waiting).",
        DefaultValueFactory = _ => Defaults.Timeout.TotalSeconds,
    };
    static readonly Option<double> ShutdownGrace = new("--shutdown-grace")
    {
        Description = "Seconds requests in flight may run on after Ctrl-C or SIGTERM before they are cancelled.",
        DefaultValueFactory = _ => Defaults.ShutdownGrace.TotalSeconds,
    };

    public static Command Create()
    {
        var command = new Command("serve", "Serve a GPT checkpoint over HTTP: POST /v1/completions (OpenAI style, "
                                           + "streamed or not), GET /v1/models, GET /health.");
        foreach (var option in new Option[] { Checkpoint, Host, Port, ModelName, MaxPromptTokens, MaxTokens, MaxSequences,
                                              MaxQueue, MaxBodyBytes, Timeout, ShutdownGrace })
            command.Options.Add(option);
        command.SetAction(r => CliErrors.Run(() =>
        {
            string dir = r.GetValue(Checkpoint)!;
            var options = new ServeOptions
            {
                Host = r.GetValue(Host)!, Port = r.GetValue(Port),
                ModelName = r.GetValue(ModelName) ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))),
                MaxPromptTokens = r.GetValue(MaxPromptTokens), MaxTokens = r.GetValue(MaxTokens),
                MaxSequences = r.GetValue(MaxSequences), MaxQueue = r.GetValue(MaxQueue),
                MaxBodyBytes = r.GetValue(MaxBodyBytes),
                Timeout = Seconds(r.GetValue(Timeout), "--timeout"),
                ShutdownGrace = Seconds(r.GetValue(ShutdownGrace), "--shutdown-grace"),
            };
            var (model, tokenizer) = GptCheckpoint.LoadForInference(dir);
            options.Validate(model.Config.ContextLength);
            return Serve(dir, model, tokenizer, options).GetAwaiter().GetResult();
        }));
        return command;
    }

    static async Task<int> Serve(string dir, Models.Gpt model, Data.ITokenizer tokenizer, ServeOptions options)
    {
        await using var server = await CompletionServer.StartAsync(model, tokenizer, options);
        Console.WriteLine($"Serving {dir} on {server.Url} (model '{options.ModelName}', context "
                          + $"{model.Config.ContextLength}); Ctrl-C stops.");
        Console.Out.Flush();
        await server.WaitForShutdownAsync();
        Console.WriteLine("Stopped: every request in flight was answered.");
        return 0;
    }

    static TimeSpan Seconds(double seconds, string option) =>
        double.IsFinite(seconds) && seconds >= 0 && seconds <= TimeSpan.MaxValue.TotalSeconds / 2
            ? TimeSpan.FromSeconds(seconds)
            : throw new ArgumentException($"{option} must be a number of seconds ≥ 0; got {seconds}.");
}
