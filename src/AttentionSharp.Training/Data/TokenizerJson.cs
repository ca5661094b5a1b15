using System.Text.Json;

namespace AttentionSharp.Data;

/// <summary>Reads fields of a saved tokenizer, turning every missing or mistyped field into one clear error.</summary>
internal readonly struct TokenizerJson(JsonElement root, string source)
{
    public JsonElement Root => root;

    /// <summary>A saved tokenizer: one object, "type" first, then what <paramref name="fields"/> writes.</summary>
    public static string Write(string type, Action<Utf8JsonWriter> fields)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteString("type", type);
            fields(json);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    public DataSourceException Error(string field, string expected, string got) =>
        new($"{source}: the field '{field}' should be {expected}, got {got}.");

    public JsonElement Field(string name, JsonValueKind kind)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new DataSourceException($"{source}: expected a JSON object, got {root.ValueKind}.");
        if (!root.TryGetProperty(name, out var value))
            throw new DataSourceException($"{source}: the field '{name}' is missing.");
        if (value.ValueKind != kind)
            throw Error(name, $"a JSON {kind.ToString().ToLowerInvariant()}", value.ValueKind.ToString().ToLowerInvariant());
        return value;
    }

    public string String(string name) => Field(name, JsonValueKind.String).GetString()!;

    /// <summary>A field holding true or false.</summary>
    public bool Bool(string name)
    {
        bool isFalse = root.ValueKind == JsonValueKind.Object && root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.False;
        return Field(name, isFalse ? JsonValueKind.False : JsonValueKind.True).GetBoolean();
    }

    public int Int(string name)
    {
        var value = Field(name, JsonValueKind.Number);
        return value.TryGetInt32(out int result) ? result : throw Error(name, "a 32-bit integer", value.GetRawText());
    }

    /// <summary>A field holding an array of integers, or of integer pairs flattened (<paramref name="width"/> = 2).</summary>
    public int[] Ints(string name, int width = 1)
    {
        var array = Field(name, JsonValueKind.Array);
        var result = new int[array.GetArrayLength() * width];
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (width == 1)
            {
                result[i++] = item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out int v) ? v
                    : throw Error(name, "an array of integers", $"the element {item.GetRawText()}");
                continue;
            }
            if (item.ValueKind != JsonValueKind.Array || item.GetArrayLength() != width)
                throw Error(name, $"an array of {width}-element integer arrays", $"the element {item.GetRawText()}");
            foreach (var inner in item.EnumerateArray())
                result[i++] = inner.ValueKind == JsonValueKind.Number && inner.TryGetInt32(out int v) ? v
                    : throw Error(name, $"an array of {width}-element integer arrays", $"the element {item.GetRawText()}");
        }
        return result;
    }
}
