using AttentionSharp.Nn;

namespace AttentionSharp.IO;

/// <summary>
/// A module's state dict as one safetensors file (fp32, one tensor per parameter name), as torch's
/// <c>safetensors.torch.save_file(model.state_dict())</c> writes it.
/// </summary>
public static class StateDictFile
{
    /// <summary>Writes every parameter of <paramref name="model"/> under its dotted name (atomically: written aside, then renamed).</summary>
    public static void Save(Module model, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var writer = new SafetensorsWriter();
        foreach (var (name, p) in model.NamedParameters()) writer.Add(name, p.Shape, p.ToArray());
        writer.SetMetadata("format", "pt");
        if (metadata is not null) foreach (var (k, v) in metadata) writer.SetMetadata(k, v);
        writer.Save(path);
    }

    /// <summary>
    /// Loads a file written by <see cref="Save"/> (or by PyTorch) into <paramref name="model"/>: with
    /// <paramref name="strict"/>, names must match exactly; shapes always must. Nothing changes unless all of it fits.
    /// </summary>
    public static void Load(Module model, string path, bool strict = true) => Load(model, SafetensorsFile.Read(path), strict);

    /// <summary>Loads an already-read safetensors file into <paramref name="model"/> (see <see cref="Load(Module, string, bool)"/>).</summary>
    public static void Load(Module model, SafetensorsFile file, bool strict = true)
    {
        var state = new Dictionary<string, Tensor>();
        try
        {
            foreach (var e in file.Entries) state[e.Name] = Tensor.FromArray(e.ToFloat32(), e.ShapeToArray());
            model.LoadStateDict(state, strict);
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
    }
}
