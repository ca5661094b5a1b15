using System.Text.Json;

namespace AttentionSharp.Data;

/// <summary>Reads fields of a saved tokenizer, turning every missing or mistyped field into one clear error.</summary>
internal readonly struct TokenizerJson(JsonElement root, string source)
{
    public JsonElement Root => root;

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

/// <summary>Writes a file so that readers see the old content or the new, never half of the new.</summary>
internal static class AtomicFile
{
    public static void WriteAllText(string path, string contents)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        string temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllText(temporary, contents);
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }
}
