using MlTiktoken = Microsoft.ML.Tokenizers.TiktokenTokenizer;

namespace AttentionSharp.Data;

/// <summary>
/// OpenAI's tiktoken encodings through Microsoft.ML.Tokenizers: byte-level BPE with a fixed, pre-trained vocabulary, so text
/// of any language round-trips exactly. The vocabularies ship in NuGet data packages; this library references those for
/// <c>cl100k_base</c> (GPT-3.5/GPT-4) and <c>o200k_base</c> (GPT-4o). A saved tokenizer holds only the encoding's name.
/// </summary>
public sealed class TiktokenTokenizer : ITokenizer
{
    internal const string TypeName = "tiktoken";

    /// <summary>The encodings whose vocabulary data this library carries.</summary>
    public static IReadOnlyList<string> SupportedEncodings { get; } = ["cl100k_base", "o200k_base"];

    readonly MlTiktoken _tokenizer;

    /// <summary>The tokenizer for <paramref name="encoding"/>, one of <see cref="SupportedEncodings"/>.</summary>
    public TiktokenTokenizer(string encoding)
    {
        ArgumentNullException.ThrowIfNull(encoding);
        if (!SupportedEncodings.Contains(encoding, StringComparer.Ordinal))
            throw new ArgumentException(
                $"The tiktoken encoding '{encoding}' is not available; expected one of {string.Join(", ", SupportedEncodings)}.", nameof(encoding));
        Encoding = encoding;
        _tokenizer = MlTiktoken.CreateForEncoding(encoding);
        // Both encodings place their special tokens above every ordinary token (tiktoken's n_vocab: 100277 and 200019).
        VocabSize = (_tokenizer.SpecialTokens?.Values.Max() ?? throw new InvalidOperationException($"The tiktoken encoding {encoding} has no special tokens.")) + 1;
    }

    /// <summary>The encoding's name, e.g. <c>cl100k_base</c>.</summary>
    public string Encoding { get; }

    /// <summary>One more than the largest id, special tokens included (the id range has a few unused gaps).
    /// Text that spells a special token, such as <c>&lt;|endoftext|&gt;</c>, encodes as that token.</summary>
    public int VocabSize { get; }

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. _tokenizer.EncodeToIds(text)];
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        TokenIds.CheckRange(ids, VocabSize);
        return _tokenizer.Decode(ids.ToArray()) ?? "";
    }

    public string ToJson() => TokenizerJson.Write(TypeName, json => json.WriteString("encoding", Encoding));

    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    internal static TiktokenTokenizer FromJson(TokenizerJson json)
    {
        string encoding = json.String("encoding");
        if (!SupportedEncodings.Contains(encoding, StringComparer.Ordinal))
            throw json.Error("encoding", $"one of {string.Join(", ", SupportedEncodings)}", $"'{encoding}'");
        return new TiktokenTokenizer(encoding);
    }
}
