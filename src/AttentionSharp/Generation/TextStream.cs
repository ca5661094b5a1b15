using System.Runtime.InteropServices;

namespace AttentionSharp.Generation;

/// <summary>
/// The text of one row as it grows: decodes the whole continuation after each token (so a character made of several
/// tokens appears once complete), finds the first stop string, and says which new text is safe to show — text that
/// could still turn out to be the beginning of a stop string is held back until the next token settles it.
/// </summary>
public sealed class TextStream
{
    readonly TokenDecoder _decode;
    readonly IReadOnlyList<string> _stops;
    readonly List<int> _ids = [];
    string _text = "";
    string _shown = "";

    public TextStream(TokenDecoder decode, IReadOnlyList<string>? stops = null)
    {
        _decode = decode ?? throw new ArgumentNullException(nameof(decode));
        _stops = stops ?? [];
    }

    /// <summary>The stop string found in the text; null while none is.</summary>
    public string? Stop { get; private set; }

    /// <summary>The text so far, cut before the stop string once one is found.</summary>
    public string Text => _text;

    /// <summary>Adds a token and returns the text that may now be shown ("" when none); after a stop, nothing.</summary>
    public string Push(int id)
    {
        if (Stop is not null) return "";
        _ids.Add(id);
        var now = _decode(CollectionsMarshal.AsSpan(_ids));
        int cut = -1;
        foreach (var stop in _stops)
        {
            int at = now.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) { cut = at; Stop = stop; }
        }
        _text = cut >= 0 ? now[..cut] : now;
        return Show(cut >= 0 ? _text : now[..(now.Length - HeldBack(now))]);
    }

    /// <summary>The row has ended: returns whatever was held back and not shown yet.</summary>
    public string Finish() => Show(_text);

    /// <summary>
    /// Shows what extends the text already shown. A decoder may rewrite the end of earlier text (a partial character
    /// becoming whole); then nothing is shown for this step, as the stream cannot take text back.
    /// </summary>
    string Show(string visible)
    {
        string added = visible.StartsWith(_shown, StringComparison.Ordinal) ? visible[_shown.Length..] : "";
        _shown = visible;
        return added;
    }

    /// <summary>The length of the longest end of <paramref name="text"/> that begins some stop string.</summary>
    int HeldBack(string text)
    {
        int held = 0;
        foreach (var stop in _stops)
            for (int k = Math.Min(stop.Length - 1, text.Length); k > held; k--)
                if (text.AsSpan(text.Length - k).SequenceEqual(stop.AsSpan(0, k))) { held = k; break; }
        return held;
    }
}
