using AttentionSharp.Data;

namespace AttentionSharp.Cli;

/// <summary>
/// The prompts of `attn sample`: one from --prompt, or one per non-blank line of --prompt-file or standard input.
/// </summary>
static class SamplePrompts
{
    /// <summary>A prompt's text, its token ids, and where it came from (for messages).</summary>
    public sealed record Prompt(string Text, int[] Ids, string Source);

    /// <summary>The prompts of <paramref name="text"/>'s lines, blank lines skipped; <paramref name="source"/> names them
    /// in errors.</summary>
    public static List<Prompt> FromLines(string text, string source, ITokenizer tokenizer, int context)
    {
        var prompts = new List<Prompt>();
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(line)) continue;
            prompts.Add(Encode(line, $"line {i + 1} of {source}", tokenizer, context));
        }
        if (prompts.Count == 0)
            throw new ArgumentException($"{Capitalised(source)} holds no prompt: every line is blank.");
        return prompts;
    }

    /// <summary>The prompt <paramref name="text"/>, checked to be non-empty and to fit the model's context.</summary>
    public static Prompt Encode(string text, string source, ITokenizer tokenizer, int context)
    {
        var ids = tokenizer.Encode(text);
        if (ids.Length == 0)
            throw new ArgumentException($"{Capitalised(source)} is empty; give at least one character.");
        if (ids.Length > context)
            throw new ArgumentException(
                $"{Capitalised(source)} is {ids.Length} tokens long but the model's context is {context}; shorten it.");
        return new Prompt(text, ids, source);
    }

    static string Capitalised(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
