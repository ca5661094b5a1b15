using System.Text.Json.Nodes;

namespace AttentionSharp.Models;

/// <summary>Reads the fields of a model configuration's JSON; every error names the field and what was expected.</summary>
internal readonly struct ConfigJson
{
    readonly JsonObject _json;
    readonly string _modelType;

    /// <summary>Checks that <paramref name="json"/> describes a <paramref name="modelType"/> model.</summary>
    public ConfigJson(JsonObject json, string modelType)
    {
        ArgumentNullException.ThrowIfNull(json);
        if (!(json["model_type"] is JsonValue t && t.TryGetValue<string>(out var found) && found == modelType))
            throw new ArgumentException($"The configuration is for model_type '{json["model_type"]}', not {modelType}.");
        _json = json;
        _modelType = modelType;
    }

    /// <summary>A required integer field.</summary>
    public int Int(string name) => _json[name] is JsonValue v && v.TryGetValue<int>(out var i)
        ? i : throw new ArgumentException($"The {_modelType} configuration's '{name}' is missing or not an integer.");

    /// <summary>An optional integer field.</summary>
    public int Int(string name, int fallback) => _json[name] is null ? fallback : Int(name);

    /// <summary>A required number field.</summary>
    public float Float(string name) => _json[name] is JsonValue v && v.TryGetValue<double>(out var d)
        ? (float)d : throw new ArgumentException($"The {_modelType} configuration's '{name}' is missing or not a number.");

    /// <summary>An optional number field.</summary>
    public float Float(string name, float fallback) => _json[name] is null ? fallback : Float(name);

    /// <summary>An optional true/false field.</summary>
    public bool Bool(string name, bool fallback) => _json[name] switch
    {
        null => fallback,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        _ => throw new ArgumentException($"The {_modelType} configuration's '{name}' is not true or false."),
    };

    /// <summary>An optional enumeration field, written as the member's name.</summary>
    public T Enum<T>(string name, T fallback) where T : struct, System.Enum => _json[name] switch
    {
        null => fallback,
        JsonValue v when v.TryGetValue<string>(out var s) && System.Enum.TryParse<T>(s, ignoreCase: true, out var e) && System.Enum.IsDefined(e) => e,
        var other => throw new ArgumentException($"The {_modelType} configuration's '{name}' is '{other}'; expected one of {string.Join(", ", System.Enum.GetNames<T>())}."),
    };
}
