namespace AttentionSharp.IO;

/// <summary>
/// A safetensors file (or buffer) breaks a promise of the format, or a tensor is asked for in a way it cannot serve.
/// The message names the file, the tensor and the field where known, what was expected and what arrived; the same
/// parts are available as properties. It is a <see cref="FormatException"/> (InvalidDataException is sealed). I/O failures (missing file, permissions) surface as <see cref="IOException"/>.
/// </summary>
public sealed class SafetensorsException : FormatException
{
    /// <summary>The file path, or null when reading from a buffer or stream.</summary>
    public string? FilePath { get; }

    /// <summary>The tensor concerned, or null when the problem is not about one tensor.</summary>
    public string? TensorName { get; }

    /// <summary>The header field concerned ("dtype", "shape", "data_offsets", "__metadata__"), or null.</summary>
    public string? Field { get; }

    /// <summary>The problem alone, without the file/tensor/field prefix that <see cref="Exception.Message"/> carries.</summary>
    public string Problem { get; }

    /// <summary>Creates the exception; the message becomes "FILE: tensor 'NAME': field 'FIELD': PROBLEM".</summary>
    public SafetensorsException(string? filePath, string? tensorName, string? field, string problem, Exception? inner = null)
        : base(Compose(filePath, tensorName, field, problem), inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
        Field = field;
        Problem = problem;
    }

    static string Compose(string? filePath, string? tensorName, string? field, string problem)
    {
        var parts = new List<string>(4) { filePath is null ? "safetensors data" : $"safetensors file '{filePath}'" };
        if (tensorName is not null) parts.Add($"tensor '{Shorten(tensorName)}'");
        if (field is not null) parts.Add($"field '{field}'");
        parts.Add(problem);
        return string.Join(": ", parts);
    }

    /// <summary>Keeps messages readable when a hostile header carries megabyte-long names.</summary>
    internal static string Shorten(string text, int max = 200) => text.Length <= max ? text : string.Concat(text.AsSpan(0, max), "…");
}
