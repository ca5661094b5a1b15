using System.Runtime.InteropServices;
using TorchSharp;

namespace AttentionSharp.Benchmarks;

/// <summary>
/// TorchSharp (libtorch) as the peer in side-by-side runs. <see cref="TryLoad"/> makes its native bindings loadable on
/// this system first (see <see cref="ElfVersionPatcher"/>), so it must run before anything else touches TorchSharp.
/// </summary>
public static class TorchPeer
{
    const string BindingsFile = "libLibTorchSharp.so";
    const string MissingVersion = "GLIBCXX_3.4.32";
    static readonly Lock Gate = new();
    static string? _failure;
    static bool _loaded;

    /// <summary>
    /// Loads TorchSharp and sets its thread count. On failure returns false and says why in <paramref name="reason"/>.
    /// </summary>
    public static bool TryLoad(int threads, out string? reason)
    {
        lock (Gate)
        {
            if (!_loaded && _failure == null)
            {
                try
                {
                    PrepareBindings();
                    torch.set_num_threads(threads);
                    _loaded = true;
                }
                catch (Exception e)
                {
                    // The peer is optional: whatever stops it from loading is reported, not thrown.
                    _failure = $"TorchSharp could not be loaded: {Innermost(e).Message}";
                }
            }
            if (_loaded) torch.set_num_threads(threads);
            reason = _failure;
            return _loaded;
        }
    }

    /// <summary>A description of the peer for reports.</summary>
    public static string Description =>
        $"TorchSharp {typeof(torch).Assembly.GetName().Version?.ToString(3)} (libtorch, {torch.get_num_threads()} threads)";

    /// <summary>
    /// Marks the GLIBCXX_3.4.32 requirement of the bindings weak. The file is patched where the runtime will look for
    /// it; if that file cannot be written, a patched copy is loaded instead and TorchSharp's imports are pointed at it.
    /// </summary>
    static void PrepareBindings()
    {
        if (!OperatingSystem.IsLinux()) return;
        string? path = FindBindings();
        if (path == null) return; // TorchSharp reports what it cannot find.
        try
        {
            ElfVersionPatcher.MarkVersionWeak(path, MissingVersion);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            LoadPatchedCopy(path);
        }
    }

    static string? FindBindings()
    {
        string rid = $"linux-{RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}";
        var directories = new List<string>
        {
            Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native"),
            AppContext.BaseDirectory,
        };
        // The host's probing list (from the deps file) covers layouts other than the build output.
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string probing)
            directories.AddRange(probing.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        return directories.Select(d => Path.Combine(d, BindingsFile)).FirstOrDefault(File.Exists);
    }

    /// <summary>
    /// Copies the bindings to a private folder, patches the copy and loads it. Its libtorch dependencies are loaded
    /// first from the original folder, so the loader finds them already present by name.
    /// </summary>
    static void LoadPatchedCopy(string original)
    {
        string folder = Path.GetDirectoryName(original)!;
        string copyFolder = Path.Combine(Path.GetTempPath(), $"attentionsharp-torch-{Environment.UserName}-{new FileInfo(original).Length}");
        Directory.CreateDirectory(copyFolder);
        string copy = Path.Combine(copyFolder, BindingsFile);
        File.Copy(original, copy, overwrite: true);
        ElfVersionPatcher.MarkVersionWeak(copy, MissingVersion);
        foreach (var dependency in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
        {
            string dependencyPath = Path.Combine(folder, dependency);
            if (File.Exists(dependencyPath)) NativeLibrary.Load(dependencyPath);
        }
        nint handle = NativeLibrary.Load(copy);
        NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, (name, _, _) =>
            name is "LibTorchSharp" or "libLibTorchSharp" or BindingsFile ? handle : 0);
    }

    static Exception Innermost(Exception e)
    {
        while (e.InnerException != null) e = e.InnerException;
        return e;
    }
}
