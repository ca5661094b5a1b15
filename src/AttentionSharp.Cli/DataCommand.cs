using System.CommandLine;
using AttentionSharp.Data;

namespace AttentionSharp.Cli;

/// <summary>`attn data`: what is cached, and fetching it ahead of time.</summary>
static class DataCommand
{
    public static Command Create()
    {
        var cache = new Option<string?>("--cache") { Description = $"Cache directory (default: ${DataCache.EnvironmentVariable}, else ~/.cache/attentionsharp)." };
        var list = new Command("list", "List the cached data sets.") { cache };
        list.SetAction(r => CliErrors.Run(() => List(DataCache.Resolve(r.GetValue(cache)))));
        var name = new Argument<string>("name") { Description = "The data set to fetch: brown." };
        var fetch = new Command("fetch", "Fetch a data set into the cache now.") { name, cache };
        fetch.SetAction(r => CliErrors.Run(() =>
        {
            var what = r.GetValue(name);
            if (what != "brown") throw new ArgumentException($"Unknown data set '{what}'; available: brown.");
            var corpus = BrownCorpus.Fetch(DataCache.Resolve(r.GetValue(cache)), Console.Out);
            Console.WriteLine($"The Brown corpus is ready: {corpus.Documents.Count} documents.");
            return 0;
        }));
        var command = new Command("data", "Show what is cached, or fetch a data set.") { list, fetch, cache };
        command.SetAction(r => CliErrors.Run(() => List(DataCache.Resolve(r.GetValue(cache)))));
        return command;
    }

    static int List(DataCache cache)
    {
        Console.WriteLine($"Cache: {cache.Directory}");
        if (!Directory.Exists(cache.Directory) || !Directory.EnumerateDirectories(cache.Directory).Any())
        {
            Console.WriteLine("  (empty: data is fetched on first use, or with `attn data fetch brown`)");
            return 0;
        }
        foreach (var dir in Directory.EnumerateDirectories(cache.Directory).Order())
        {
            var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Select(f => new FileInfo(f)).ToList();
            Console.WriteLine($"  {Path.GetFileName(dir),-32} {files.Count,6} files {files.Sum(f => f.Length) / 1e6,9:F1} MB");
        }
        return 0;
    }
}
