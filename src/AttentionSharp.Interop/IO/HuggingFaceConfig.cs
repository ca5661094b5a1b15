using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttentionSharp.IO;

/// <summary>
/// A Hugging Face config.json read strictly: a field that is absent (or null, as HF writes unset optional fields) takes
/// the default it has in the transformers config class; a field that is present but of the wrong JSON type or out of
/// range is an error naming the file, the field and the value — never a silent fallback to the default. Integers must
/// be written as integers ("n_layer": 12, not 12.5, 12.0 or "12").
/// </summary>
internal sealed class HuggingFaceConfig
{
    readonly JsonObject _json;

    HuggingFaceConfig(JsonObject json, string path)
    {
        _json = json;
        Path = path;
    }

    /// <summary>The file the fields come from, named in every error.</summary>
    public string Path { get; }

    /// <summary>Parses <paramref name="path"/>, which must hold one JSON object.</summary>
    public static HuggingFaceConfig Read(string path)
    {
        try
        {
            return new HuggingFaceConfig(JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw new CheckpointException($"{path} is not a JSON object."), path);
        }
        catch (JsonException e) { throw new CheckpointException($"{path} is not valid JSON: {e.Message}"); }
    }

    /// <summary>The field's value, or null when it is absent or JSON null.</summary>
    JsonNode? Get(string key) => _json[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Null ? null : _json[key];

    /// <summary>Whether the field is present with a value other than null.</summary>
    public bool Has(string key) => Get(key) is not null;

    CheckpointException Wrong(string key, string expected, JsonNode value) =>
        new($"{Path}: '{key}' should be {expected}; it is {value.ToJsonString()}.");

    /// <summary>An integer field ≥ <paramref name="min"/>; <paramref name="fallback"/> when absent, an error when absent and no fallback is given.</summary>
    public int Int(string key, int? fallback, int min)
    {
        var node = Get(key);
        if (node is null) return fallback ?? throw new CheckpointException($"{Path}: '{key}' is missing; it should be an integer ≥ {min}.");
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out int i) && i >= min) return i;
        throw Wrong(key, $"an integer ≥ {min}", node);
    }

    /// <summary>An optional integer field ≥ <paramref name="min"/>: null when absent.</summary>
    public int? OptionalInt(string key, int min) => Has(key) ? Int(key, null, min) : null;

    /// <summary>A number in [<paramref name="min"/>, <paramref name="max"/>] (or (min, max] when <paramref name="minExclusive"/>); <paramref name="fallback"/> when absent.</summary>
    public double Number(string key, double fallback, double min, double max, bool minExclusive = false)
    {
        var node = Get(key);
        if (node is null) return fallback;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out double d) && double.IsFinite(d)
            && (minExclusive ? d > min : d >= min) && d <= max) return d;
        string range = double.IsPositiveInfinity(max)
            ? (minExclusive ? "> " : "≥ ") + min.ToString(CultureInfo.InvariantCulture)
            : $"in {(minExclusive ? "(" : "[")}{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}]";
        throw Wrong(key, $"a number {range}", node);
    }

    /// <summary>A true/false field; <paramref name="fallback"/> when absent.</summary>
    public bool Bool(string key, bool fallback)
    {
        var node = Get(key);
        if (node is null) return fallback;
        if (node is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return v.GetValue<bool>();
        throw Wrong(key, "true or false", node);
    }

    /// <summary>A string field; <paramref name="fallback"/> when absent, an error when absent and no fallback is given.</summary>
    public string Text(string key, string? fallback)
    {
        var node = Get(key);
        if (node is null) return fallback ?? throw new CheckpointException($"{Path}: '{key}' is missing; it should be a string.");
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        throw Wrong(key, "a string", node);
    }

    /// <summary>Checks that the field, when present, is one of <paramref name="allowed"/>; <paramref name="why"/> ends the error.</summary>
    public string OneOf(string key, string fallback, string[] allowed, string why)
    {
        var value = Text(key, fallback);
        if (!allowed.Contains(value, StringComparer.Ordinal))
            throw new CheckpointException($"{Path}: {key} '{value}' is not supported; {why}");
        return value;
    }

    /// <summary>model_type, which must be <paramref name="expected"/>.</summary>
    public void RequireModelType(string expected)
    {
        var type = Has("model_type") ? Text("model_type", null) : null;
        if (type != expected) throw new CheckpointException($"{Path}: model_type is '{type ?? "missing"}'; only {expected} can be imported here.");
    }

    /// <summary>model_type as written, or null when absent or not a string (for dispatching on it).</summary>
    public static string? ModelTypeOf(string path)
    {
        var config = Read(path);
        return config.Get("model_type") is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
    }
}
