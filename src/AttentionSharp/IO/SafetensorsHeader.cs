using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace AttentionSharp.IO;

/// <summary>One header entry as written, before its offsets are checked against the data section.</summary>
internal readonly record struct HeaderEntry(string Name, SafetensorsDType DType, int[] Shape, ulong Begin, ulong End);

/// <summary>
/// Parses the JSON header of a safetensors file token by token with <see cref="Utf8JsonReader"/>, so that duplicate
/// names (which a DOM or serializer would silently collapse to the last one), unknown fields and wrong JSON types are
/// all seen and reported. Layout checks (offsets against the data section) live in <see cref="SafetensorsFile"/>.
/// </summary>
internal ref struct SafetensorsHeader
{
    /// <summary>The key that holds string→string metadata instead of a tensor.</summary>
    public const string MetadataKey = "__metadata__";

    const string EntryFields = "an entry holds exactly dtype, shape and data_offsets";

    Utf8JsonReader _reader;
    readonly string? _path;

    SafetensorsHeader(ReadOnlySpan<byte> json, string? path)
    {
        _reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        _path = path;
    }

    /// <summary>
    /// Reads the header's entries in the order written and fills <paramref name="metadata"/>.
    /// Throws <see cref="SafetensorsException"/> for anything but a well-formed header.
    /// </summary>
    public static List<HeaderEntry> Parse(ReadOnlySpan<byte> json, string? path, Dictionary<string, string> metadata)
    {
        if (!Utf8.IsValid(json))
            throw new SafetensorsException(path, null, null, $"the header is not valid UTF-8 (first invalid byte at header offset {FirstInvalidUtf8(json)})");
        // The reference implementation insists on '{' first; leading whitespace or any other JSON value is refused.
        if (json.IsEmpty || json[0] != (byte)'{')
        {
            string found = json.IsEmpty ? "an empty header" : $"'{(char)json[0]}' (0x{json[0]:X2})";
            throw new SafetensorsException(path, null, null, $"the header must be a JSON object beginning with '{{', found {found}");
        }
        var parser = new SafetensorsHeader(json, path);
        try
        {
            return parser.ParseRoot(metadata);
        }
        catch (JsonException e)
        {
            throw new SafetensorsException(path, null, null, $"the header is not valid JSON: {e.Message}", e);
        }
    }

    List<HeaderEntry> ParseRoot(Dictionary<string, string> metadata)
    {
        Next(null, null);
        if (_reader.TokenType != JsonTokenType.StartObject)
            throw Fail(null, null, $"the header must be a JSON object, found {Describe()}");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var entries = new List<HeaderEntry>();
        while (true)
        {
            Next(null, null);
            if (_reader.TokenType == JsonTokenType.EndObject) break;
            string name = GetString(null, null);
            if (!seen.Add(name))
                throw Fail(name, null, "the name appears twice in the header; each tensor name must be unique");
            Next(name, null);
            if (name == MetadataKey) ParseMetadata(metadata);
            else entries.Add(ParseEntry(name));
        }
        // Anything after the object other than whitespace makes Read throw; whitespace (the padding) ends the input.
        if (_reader.Read()) throw Fail(null, null, $"the header holds more after its object: {Describe()}");
        return entries;
    }

    void ParseMetadata(Dictionary<string, string> metadata)
    {
        // The reference implementation reads "__metadata__" as an optional map, so null means none.
        if (_reader.TokenType == JsonTokenType.Null) return;
        if (_reader.TokenType != JsonTokenType.StartObject)
            throw Fail(null, MetadataKey, $"expected an object of string keys and string values, found {Describe()}");
        while (true)
        {
            Next(null, MetadataKey);
            if (_reader.TokenType == JsonTokenType.EndObject) return;
            string key = GetString(null, MetadataKey);
            if (metadata.ContainsKey(key))
                throw Fail(null, MetadataKey, $"the key '{SafetensorsException.Shorten(key)}' appears twice");
            Next(null, MetadataKey);
            if (_reader.TokenType != JsonTokenType.String)
                throw Fail(null, MetadataKey, $"the value of key '{SafetensorsException.Shorten(key)}' must be a string, found {Describe()}");
            metadata.Add(key, GetString(null, MetadataKey));
        }
    }

    HeaderEntry ParseEntry(string name)
    {
        if (_reader.TokenType != JsonTokenType.StartObject)
            throw Fail(name, null, $"expected an object with dtype, shape and data_offsets, found {Describe()}");
        SafetensorsDType? dtype = null;
        int[]? shape = null;
        (ulong Begin, ulong End)? offsets = null;
        while (true)
        {
            Next(name, null);
            if (_reader.TokenType == JsonTokenType.EndObject) break;
            string field = GetString(name, null);
            bool repeated = field switch
            {
                "dtype" => dtype is not null,
                "shape" => shape is not null,
                "data_offsets" => offsets is not null,
                _ => throw Fail(name, SafetensorsException.Shorten(field, 60), $"unknown field; {EntryFields}"),
            };
            if (repeated) throw Fail(name, field, "the field appears twice");
            Next(name, field);
            switch (field)
            {
                case "dtype": dtype = ParseDType(name); break;
                case "shape": shape = ParseShape(name); break;
                default: offsets = ParseOffsets(name); break;
            }
        }
        if (dtype is null) throw Fail(name, "dtype", $"missing; {EntryFields}");
        if (shape is null) throw Fail(name, "shape", $"missing; {EntryFields}");
        if (offsets is null) throw Fail(name, "data_offsets", $"missing; {EntryFields}");
        return new HeaderEntry(name, dtype.Value, shape, offsets.Value.Begin, offsets.Value.End);
    }

    SafetensorsDType ParseDType(string name)
    {
        if (_reader.TokenType != JsonTokenType.String)
            throw Fail(name, "dtype", $"expected a string such as \"F32\", found {Describe()}");
        string text = GetString(name, "dtype");
        return SafetensorsDTypes.TryParse(text, out var dtype)
            ? dtype
            : throw Fail(name, "dtype", $"unknown dtype \"{SafetensorsException.Shorten(text, 40)}\"; expected one of {SafetensorsDTypes.KnownNames}");
    }

    int[] ParseShape(string name)
    {
        if (_reader.TokenType != JsonTokenType.StartArray)
            throw Fail(name, "shape", $"expected an array of non-negative integers, found {Describe()}");
        var dims = new List<int>();
        while (true)
        {
            Next(name, "shape");
            if (_reader.TokenType == JsonTokenType.EndArray) return [.. dims];
            // Dimensions are ints throughout the library; a file needing larger ones could not be loaded anyway.
            if (_reader.TokenType != JsonTokenType.Number || !_reader.TryGetInt64(out long dim) || dim < 0 || dim > int.MaxValue)
                throw Fail(name, "shape", $"dimension {dims.Count} must be an integer in [0, {int.MaxValue}], found {Describe()}");
            dims.Add((int)dim);
        }
    }

    (ulong Begin, ulong End) ParseOffsets(string name)
    {
        const string Expected = "expected [begin, end], two non-negative integers";
        if (_reader.TokenType != JsonTokenType.StartArray)
            throw Fail(name, "data_offsets", $"{Expected}, found {Describe()}");
        Span<ulong> values = stackalloc ulong[2];
        for (int i = 0; ; i++)
        {
            Next(name, "data_offsets");
            if (_reader.TokenType == JsonTokenType.EndArray)
            {
                if (i != 2) throw Fail(name, "data_offsets", $"{Expected}, found an array of {i}");
                return (values[0], values[1]);
            }
            if (i == 2) throw Fail(name, "data_offsets", $"{Expected}, found an array of more than two values");
            if (_reader.TokenType != JsonTokenType.Number || !_reader.TryGetUInt64(out values[i]))
                throw Fail(name, "data_offsets", $"{Expected}; value {i} is {Describe()}");
        }
    }

    /// <summary>Advances one token; the header ending mid-value is reported rather than left to the caller.</summary>
    void Next(string? tensor, string? field)
    {
        if (!_reader.Read()) throw Fail(tensor, field, "the header JSON ends before its object is closed");
    }

    string GetString(string? tensor, string? field)
    {
        try
        {
            return _reader.GetString() ?? "";
        }
        catch (InvalidOperationException e)
        {
            // Only an escape such as "\ud800" (a lone surrogate) gets here: the bytes were checked as UTF-8 up front.
            throw new SafetensorsException(_path, tensor, field, $"a string holds an escape that is not valid Unicode: {e.Message}", e);
        }
    }

    /// <summary>The current token for an error message: its kind, and its text for scalars.</summary>
    readonly string Describe()
    {
        // The reader runs over one span, so ValueSpan always holds the token (never a ValueSequence).
        string text = SafetensorsException.Shorten(Encoding.UTF8.GetString(_reader.ValueSpan), 60);
        return _reader.TokenType switch
        {
            JsonTokenType.StartObject => "an object",
            JsonTokenType.StartArray => "an array",
            JsonTokenType.String => $"the string \"{text}\"",
            JsonTokenType.Number => $"the number {text}",
            JsonTokenType.True => "true",
            JsonTokenType.False => "false",
            JsonTokenType.Null => "null",
            JsonTokenType.EndArray => "the end of the array",
            JsonTokenType.EndObject => "the end of the object",
            var other => other.ToString(),
        };
    }

    readonly SafetensorsException Fail(string? tensor, string? field, string problem) => new(_path, tensor, field, problem);

    static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        int at = 0;
        while (at < bytes.Length && Rune.DecodeFromUtf8(bytes[at..], out _, out int consumed) == OperationStatus.Done) at += consumed;
        return at;
    }
}
