using AttentionSharp.Nn;

namespace AttentionSharp.IO;

/// <summary>
/// A module's state dict as one safetensors file (fp32, one tensor per parameter name), as torch's
/// <c>safetensors.torch.save_file(model.state_dict())</c> writes it; an int8 weight (<see cref="Tensor.Quantized"/>)
/// as I8 values with its scales beside it.
/// </summary>
public static class StateDictFile
{
    /// <summary>Writes every parameter of <paramref name="model"/> under its dotted name (atomically: written aside, then renamed).</summary>
    public static void Save(Module model, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var writer = new SafetensorsWriter();
        bool int8 = false;
        foreach (var (name, p) in model.NamedParameters())
        {
            if (p.Quantized is not { } q) { writer.Add(name, p.Shape, p.ToArray()); continue; }
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(q.ToStored().AsSpan());
            writer.Add(name, SafetensorsDType.I8, p.Shape, bytes);
            writer.Add(name + ScaleSuffix, [q.Rows], q.Scales);
            int8 = true;
        }
        writer.SetMetadata("format", "pt");
        if (int8) writer.SetMetadata("quantization", "int8");
        if (metadata is not null) foreach (var (k, v) in metadata) writer.SetMetadata(k, v);
        writer.Save(path);
    }

    /// <summary>
    /// Loads a file written by <see cref="Save"/> (or by PyTorch) into <paramref name="model"/>: with
    /// <paramref name="strict"/>, names must match exactly; shapes always must. Nothing changes unless all of it fits.
    /// </summary>
    public static void Load(Module model, string path, bool strict = true) => Load(model, SafetensorsFile.Read(path), strict);

    /// <summary>
    /// The name of an int8 weight's scales beside it: "NAME_scale", one F32 per output channel; the weight itself is
    /// stored as I8 (out, in). See docs/quantization.md.
    /// </summary>
    public const string ScaleSuffix = "_scale";

    static QuantizedWeight ReadInt8(SafetensorsFile file, SafetensorsEntry e)
    {
        if (e.Shape.Count != 2)
            throw new ArgumentException($"The int8 tensor '{e.Name}' is {e.ShapeText}; int8 weights are matrices (out, in).");
        if (!file.TryGetEntry(e.Name + ScaleSuffix, out var scales) || scales.DType != SafetensorsDType.F32)
            throw new ArgumentException($"The int8 weight '{e.Name}' has no F32 scales '{e.Name}{ScaleSuffix}' beside it.");
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(e.Data.Span);
        return QuantizedWeight.FromStored(values, scales.ToFloat32(), e.Shape[0], e.Shape[1], $"The int8 weight '{e.Name}'");
    }

    /// <summary>Loads an already-read safetensors file into <paramref name="model"/> (see <see cref="Load(Module, string, bool)"/>).</summary>
    public static void Load(Module model, SafetensorsFile file, bool strict = true)
    {
        var state = new Dictionary<string, Tensor>();
        var quantized = new Dictionary<string, QuantizedWeight>();
        try
        {
            foreach (var e in file.Entries)
            {
                if (e.DType == SafetensorsDType.I8) quantized[e.Name] = ReadInt8(file, e);
                else if (e.Name.EndsWith(ScaleSuffix, StringComparison.Ordinal)
                         && file.TryGetEntry(e.Name[..^ScaleSuffix.Length], out var of)
                         && of.DType == SafetensorsDType.I8) continue;                         // read with its weight
                else state[e.Name] = Tensor.FromArray(e.ToFloat32(), e.ShapeToArray());
            }
            foreach (var (name, q) in quantized)
            {
                var values = new float[(long)q.Rows * q.Columns];
                q.Dequantize(values);
                state[name] = Tensor.FromArray(values, q.Rows, q.Columns);
            }
            model.LoadStateDict(state, strict);
            var own = model.StateDict();
            foreach (var (name, q) in quantized)
                if (own.TryGetValue(name, out var target)) target.AttachQuantized(q);   // its elements were loaded as q·scale
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
    }
}
