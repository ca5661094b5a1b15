using System.Text.Json;

namespace AttentionSharp.Data;

/// <summary>
/// The tokenizer of a Hugging Face model directory, from the files transformers' <c>save_pretrained</c> writes beside
/// the weights: GPT-2's vocab.json and merges.txt (<see cref="Gpt2BpeTokenizer"/>), BERT's vocab.txt with
/// tokenizer_config.json's do_lower_case (<see cref="WordPieceTokenizer"/>). Where those are absent, the "model" of a
/// tokenizers-library tokenizer.json (a BPE's vocab and merges, a WordPiece's vocab) serves instead.
/// </summary>
public static class HuggingFaceTokenizer
{
    public const string VocabJsonFile = "vocab.json";
    public const string MergesFile = "merges.txt";
    public const string VocabTextFile = "vocab.txt";
    public const string ConfigFile = "tokenizer_config.json";
    public const string TokenizerJsonFile = "tokenizer.json";

    /// <summary>The tokenizer for a model of <paramref name="modelType"/> (config.json's "gpt2" or "bert").</summary>
    public static ITokenizer Load(string directory, string modelType) => modelType switch
    {
        "gpt2" => LoadGpt2(directory),
        "bert" => LoadBert(directory),
        _ => throw new ArgumentException($"Tokenizers are read for model types gpt2 and bert, not '{modelType}'.", nameof(modelType)),
    };

    /// <summary>GPT-2's byte-level BPE from vocab.json and merges.txt, or from tokenizer.json when both are absent.</summary>
    public static Gpt2BpeTokenizer LoadGpt2(string directory)
    {
        string vocab = Path.Combine(directory, VocabJsonFile), merges = Path.Combine(directory, MergesFile);
        if (File.Exists(vocab) && File.Exists(merges)) return Gpt2BpeTokenizer.FromFiles(vocab, merges);
        if (!File.Exists(vocab) && !File.Exists(merges) && FromTokenizerJson(directory, "BPE", model => new Gpt2BpeTokenizer(
                model.GetProperty("vocab").EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())),
                // tokenizers writes each merge as "left right", or since 0.20 as ["left", "right"].
                model.GetProperty("merges").EnumerateArray()
                    .Select(m => m.ValueKind == JsonValueKind.Array ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString()!))) is { } fromJson)
            return fromJson;
        string missing = File.Exists(vocab) ? MergesFile : VocabJsonFile;
        throw new DataSourceException($"'{directory}' has no {missing}: GPT-2's tokenizer is read from {VocabJsonFile} and {MergesFile} (or {TokenizerJsonFile}).");
    }

    /// <summary>BERT's WordPiece from vocab.txt (or tokenizer.json), lowercasing as tokenizer_config.json's do_lower_case says (default true).</summary>
    public static WordPieceTokenizer LoadBert(string directory)
    {
        bool lower = LowerCase(directory);
        string vocab = Path.Combine(directory, VocabTextFile);
        if (File.Exists(vocab)) return WordPieceTokenizer.FromFile(vocab, lower);
        if (FromTokenizerJson(directory, "WordPiece", model => new WordPieceTokenizer(
                model.GetProperty("vocab").EnumerateObject().OrderBy(p => p.Value.GetInt32()).Select(p => p.Name), lower)) is { } fromJson)
            return fromJson;
        throw new DataSourceException($"'{directory}' has no {VocabTextFile}: BERT's tokenizer is read from {VocabTextFile} (or {TokenizerJsonFile}).");
    }

    static bool LowerCase(string directory)
    {
        var path = Path.Combine(directory, ConfigFile);
        if (!File.Exists(path)) return true;
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            if (json.RootElement.ValueKind != JsonValueKind.Object || !json.RootElement.TryGetProperty("do_lower_case", out var value)) return true;
            return value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean()
                : throw new DataSourceException($"{path}: 'do_lower_case' should be true or false; it is {value.GetRawText()}.");
        }
        catch (JsonException e) { throw new DataSourceException($"{path} is not valid JSON: {e.Message}", e); }
    }

    /// <summary>
    /// The tokenizer <paramref name="build"/> makes from tokenizer.json's "model", which must be of
    /// <paramref name="type"/>; null when there is no tokenizer.json. Every malformed part is an error naming the file.
    /// </summary>
    static T? FromTokenizerJson<T>(string directory, string type, Func<JsonElement, T> build) where T : class
    {
        var path = Path.Combine(directory, TokenizerJsonFile);
        if (!File.Exists(path)) return null;
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            if (json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("model", out var model) &&
                model.ValueKind == JsonValueKind.Object && model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String &&
                t.GetString() == type && model.TryGetProperty("vocab", out var v) && v.ValueKind == JsonValueKind.Object &&
                (type != "BPE" || model.TryGetProperty("merges", out var m) && m.ValueKind == JsonValueKind.Array))
                return build(model);
            throw new DataSourceException($"{path}: the \"model\" should be a {type} with its \"vocab\"{(type == "BPE" ? " and \"merges\"" : "")}.");
        }
        catch (JsonException e) { throw new DataSourceException($"{path} is not valid JSON: {e.Message}", e); }
        catch (ArgumentException e) { throw new DataSourceException($"{path}: {e.Message}", e); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or IndexOutOfRangeException)
        {
            throw new DataSourceException($"{path}: the model's vocab should map tokens to integer ids and its merges be pairs of tokens: {e.Message}", e);
        }
    }
}
