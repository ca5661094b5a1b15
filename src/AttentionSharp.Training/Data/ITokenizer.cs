using System.Text.Json;

namespace AttentionSharp.Data;

/// <summary>
/// Text ↔ token ids. A tokenizer saves itself as a small JSON object whose "type" field says which kind it is
/// ("char", "byte-bpe", "tiktoken", "gpt2-bpe", "wordpiece"), so a checkpoint can hold it next to the weights and <see cref="Load"/> rebuilds it.
/// </summary>
public interface ITokenizer
{
    /// <summary>The number of ids (V): every id <see cref="Encode"/> returns lies in [0, V).</summary>
    int VocabSize { get; }

    /// <summary>The token ids of <paramref name="text"/>.</summary>
    int[] Encode(string text);

    /// <summary>The text of <paramref name="ids"/>; throws <see cref="ArgumentOutOfRangeException"/> for an id outside [0, V).</summary>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>The tokenizer as a JSON object with a "type" field.</summary>
    string ToJson();

    /// <summary>Writes <see cref="ToJson"/> to <paramref name="path"/>, atomically (a temporary file renamed into place).</summary>
    void Save(string path);

    /// <summary>Reads a tokenizer saved by <see cref="Save"/>.</summary>
    static ITokenizer Load(string path) => FromJson(TextFile.Read(path), path);

    /// <summary>Rebuilds a tokenizer from <see cref="ToJson"/>'s output; <paramref name="source"/> names it in errors.</summary>
    static ITokenizer FromJson(string json, string source = "the tokenizer JSON")
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = new TokenizerJson(document.RootElement, source);
            string type = root.String("type");
            return type switch
            {
                CharTokenizer.TypeName => CharTokenizer.FromJson(root),
                ByteBpeTokenizer.TypeName => ByteBpeTokenizer.FromJson(root),
                TiktokenTokenizer.TypeName => TiktokenTokenizer.FromJson(root),
                Gpt2BpeTokenizer.TypeName => Gpt2BpeTokenizer.FromJson(root),
                WordPieceTokenizer.TypeName => WordPieceTokenizer.FromJson(root),
                _ => throw root.Error("type", $"one of {CharTokenizer.TypeName}, {ByteBpeTokenizer.TypeName}, {TiktokenTokenizer.TypeName}, " +
                                              $"{Gpt2BpeTokenizer.TypeName}, {WordPieceTokenizer.TypeName}", $"'{type}'"),
            };
        }
        catch (JsonException e)
        {
            throw new DataSourceException($"{source} is not valid JSON: {e.Message}", e);
        }
    }
}
